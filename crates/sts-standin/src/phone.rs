//! What an authenticator app does with a QR code, for the tests and the demo: read the code
//! `mfa-exec device add` draws on the terminal (or IAM's PNG), take the seed out of its
//! `otpauth://` URI and compute TOTP codes from it.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::totp_code;

/// The colours mfa-exec draws the QR code in (black on bright white); a line of the drawing
/// starts with them.
const INK_ON_PAPER: &str = "\x1b[30;107m";
const RESET: &str = "\x1b[0m";
/// Pixels per module when the drawing is turned into an image for the decoder.
const SCALE: usize = 4;

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
    let h = modules.len() * SCALE;
    let w = modules.first()?.len() * SCALE;
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        if modules[y / SCALE][x / SCALE] {
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
