//! What an authenticator app does with a QR code, for the tests and the demo: read the code
//! `mfa-exec device add` draws on the terminal (or IAM's PNG), take the seed out of its
//! `otpauth://` URI and compute TOTP codes from it.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::totp_code;

/// The colours mfa-exec draws the QR code in (black on bright white); a line of the drawing
/// starts with them.
const INK_ON_PAPER: &str = "\x1b[30;107m";
const RESET: &str = "\x1b[0m";
/// Pixels per module when the drawing is turned into an image for the decoder, in the order
/// tried: rqrr's sampling misreads some codes at one scale and reads them at another (a code
/// drawn in CI failed with DataEcc at 4 and decoded at 3 and 5), as a phone's camera gets
/// another frame.
const SCALES: [usize; 5] = [4, 3, 5, 6, 2];

/// Decodes the QR code drawn on a terminal (`▀ ▄ █` half blocks, two modules a cell): the text
/// it holds, or None when the screen shows no readable QR code.
pub fn decode_terminal_qr(screen: &str) -> Option<String> {
    let rows: Vec<Vec<char>> = screen
        .split('\n')
        .filter_map(|line| {
            let start = line.find(INK_ON_PAPER)? + INK_ON_PAPER.len();
            let end = start + line[start..].find(RESET)?;
            Some(line[start..end].chars().collect())
        })
        .collect();
    let width = rows.iter().map(Vec::len).max()?;
    let mut modules: Vec<Vec<bool>> = Vec::new();
    for row in &rows {
        let (mut top, mut bottom) = (vec![false; width], vec![false; width]);
        for (x, c) in row.iter().enumerate() {
            let (t, b) = match c {
                '█' => (true, true),
                '▀' => (true, false),
                '▄' => (false, true),
                _ => (false, false),
            };
            top[x] = t;
            bottom[x] = b;
        }
        modules.push(top);
        modules.push(bottom);
    }
    decode_modules(&modules)
}

/// Decodes a greyscale 8-bit PNG (IAM's `QRCodePNG`).
pub fn decode_png_qr(png_bytes: &[u8]) -> Option<String> {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().ok()?;
    let mut buf = vec![0; reader.output_buffer_size()?];
    let info = reader.next_frame(&mut buf).ok()?;
    if info.color_type != png::ColorType::Grayscale || info.bit_depth != png::BitDepth::Eight {
        return None;
    }
    let (w, h) = (info.width as usize, info.height as usize);
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[y * w + x]);
    let grids = image.detect_grids();
    grids.first()?.decode().ok().map(|(_, text)| text)
}

fn decode_modules(modules: &[Vec<bool>]) -> Option<String> {
    SCALES
        .iter()
        .find_map(|&scale| decode_modules_at(modules, scale))
}

fn decode_modules_at(modules: &[Vec<bool>], scale: usize) -> Option<String> {
    let h = modules.len() * scale;
    let w = modules.first()?.len() * scale;
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        if modules[y / scale][x / scale] {
            0
        } else {
            255
        }
    });
    let grids = image.detect_grids();
    grids.first()?.decode().ok().map(|(_, text)| text)
}

/// A query parameter of an `otpauth://` URI (`secret`, `issuer`), percent-decoded.
pub fn uri_param(uri: &str, name: &str) -> Option<String> {
    let (_, query) = uri.split_once('?')?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The label of an `otpauth://totp/LABEL?…` URI, percent-decoded.
pub fn uri_label(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("otpauth://totp/")?;
    let label = rest.split('?').next()?;
    let decoded: String = form_urlencoded::parse(format!("l={label}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())?;
    Some(decoded)
}

fn now_step() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
        / 30
}

/// Two consecutive codes as an app shows them one after the other: the previous 30-second
/// step's and the current one's.
pub fn consecutive_codes(seed: &str) -> (String, String) {
    let step = now_step();
    (totp_code(seed, (step - 1) * 30), totp_code(seed, step * 30))
}

/// A code the enrolment did not use: the next step's (STS accepts one step ahead).
pub fn next_code(seed: &str) -> String {
    totp_code(seed, (now_step() + 1) * 30)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The drawing `mfa-exec device add` makes: half blocks, black on bright white, a
    /// margin of four modules.
    fn drawn(text: &str) -> String {
        let code = qrcode::QrCode::new(text.as_bytes()).unwrap();
        let width = code.width();
        let colors = code.to_colors();
        let margin = 4;
        let size = width + 2 * margin;
        let dark = |x: usize, y: usize| {
            (margin..margin + width).contains(&x)
                && (margin..margin + width).contains(&y)
                && colors[(y - margin) * width + (x - margin)] == qrcode::Color::Dark
        };
        let mut screen = String::new();
        for y in (0..size).step_by(2) {
            screen.push_str(INK_ON_PAPER);
            for x in 0..size {
                screen.push(match (dark(x, y), dark(x, y + 1)) {
                    (true, true) => '█',
                    (true, false) => '▀',
                    (false, true) => '▄',
                    (false, false) => ' ',
                });
            }
            screen.push_str(RESET);
            screen.push_str("\r\n");
        }
        screen
    }

    /// The code of the CI run that failed: rqrr misreads it at 4 pixels a module.
    #[test]
    fn a_code_the_decoder_misreads_at_one_scale_is_read_at_another() {
        let uri = "otpauth://totp/Amazon%20Web%20Services:carol@123456789012?secret=HVXXPIKHGQHFVLRKSVSQEX3FFBO2IHDLL56PHGG33PB7IXJYLRZWIUPNSVWUA4LB&issuer=Amazon%20Web%20Services";
        let screen = drawn(uri);
        assert_eq!(decode_terminal_qr(&screen).as_deref(), Some(uri));
    }
}
