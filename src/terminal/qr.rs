//! The QR code `device add` draws on the terminal for an authenticator app to scan.
//!
//! IAM returns the new device's Base32 seed (and a PNG that a terminal cannot show). The app
//! reads an `otpauth://totp/` URI (the Key Uri Format that Google Authenticator defined and the
//! other apps follow); IAM's API reference gives its label as `DEVICE@ACCOUNT`, and the
//! `issuer` "Amazon Web Services" is what the apps show and group by.
//!
//! Drawing: two modules per character cell with the half blocks `▀ ▄ █`, 4 modules of quiet
//! zone, and explicit colours (black ink on a bright white ground) so the code reads the same
//! in a dark or a light terminal: without them a dark theme shows it inverted, which many
//! scanners do not read.

use anyhow::{Context, Result};
use qrcode::render::unicode::Dense1x2;
use qrcode::QrCode;

/// What authenticator apps show as the account's issuer.
pub(crate) const ISSUER: &str = "Amazon Web Services";

/// Black foreground on a bright white background, and back to the terminal's own colours.
const INK_ON_PAPER: &str = "\x1b[30;107m";
const RESET: &str = "\x1b[0m";

/// `otpauth://totp/Amazon%20Web%20Services:DEVICE@ACCOUNT?secret=SEED&issuer=…`
pub(crate) fn otpauth_uri(device: &str, account: &str, seed_base32: &str) -> String {
    let label = format!("{ISSUER}:{device}@{account}");
    format!(
        "otpauth://totp/{}?secret={}&issuer={}",
        percent_encode(&label),
        percent_encode(seed_base32),
        percent_encode(ISSUER)
    )
}

/// The URI as terminal text: lines of half blocks, each line coloured and reset on its own so
/// that a resize or a scroll never leaves the terminal painted.
pub(crate) fn render(uri: &str) -> Result<String> {
    let code = QrCode::new(uri.as_bytes()).context("cannot make a QR code of the device's seed")?;
    let image = code
        .render::<Dense1x2>()
        .quiet_zone(true)
        .module_dimensions(1, 1)
        .build();
    Ok(image
        .lines()
        .map(|line| format!("{INK_ON_PAPER}{line}{RESET}\n"))
        .collect())
}

/// RFC 3986 unreserved characters pass; everything else is `%XX` (a space is `%20`, which
/// every authenticator app reads, where `+` is not).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uri_names_the_issuer_device_and_account() {
        assert_eq!(
            otpauth_uri("alice", "123456789012", "JBSWY3DPEHPK3PXP"),
            "otpauth://totp/Amazon%20Web%20Services:alice@123456789012?secret=JBSWY3DPEHPK3PXP&issuer=Amazon%20Web%20Services"
        );
        assert!(otpauth_uri("a b&c", "1", "S").contains(":a%20b%26c@1?"));
    }

    #[test]
    fn the_drawing_has_a_quiet_zone_and_resets_every_line() {
        let text = render("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP").unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.len() > 10);
        for line in &lines {
            assert!(line.starts_with(INK_ON_PAPER) && line.ends_with(RESET));
        }
        let first = lines[0]
            .trim_start_matches(INK_ON_PAPER)
            .trim_end_matches(RESET);
        assert!(first.chars().all(|c| c == ' '), "quiet zone on top");
    }
}
