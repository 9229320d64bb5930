//! Text from outside (profile names, ARNs, regions, paths, STS messages, a command's name) made
//! safe to show on a terminal, and the one way mfa-exec prints a diagnostic.
//!
//! A profile named `x\e[2Jy` would otherwise clear the screen of whoever runs `mfa-exec -p`,
//! and escape sequences can retitle a window, rewrite what was printed above, or (on some
//! terminals) answer back into the input. So every control character is shown escaped
//! instead: C0 and DEL, the C1 controls (U+0080–U+009F, which some terminals treat like ESC),
//! and the Unicode bidirectional overrides that make text read differently than it is.

pub(crate) mod qr;
pub(crate) mod tty;

use std::borrow::Cow;
use std::fmt::Write;

/// Characters a terminal may act on rather than show.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

/// `text` with every unsafe character written as an escape (`\n`, `\t`, `\x1b`, `\u{9b}`);
/// text without any comes back as it is.
pub(crate) fn safe(text: &str) -> Cow<'_, str> {
    // Printable ASCII, nearly every name and ARN: a byte test (`list` makes thousands).
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) || !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 && is_unsafe(c) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Prints `mfa-exec: MESSAGE` on stderr, on one line and safe for the terminal.
pub(crate) fn say(message: &str) {
    eprintln!("mfa-exec: {}", safe(&without_error_numbers(message)));
}

/// Prints `mfa-exec: warning: MESSAGE` on stderr, on one line and safe for the terminal.
pub(crate) fn warn(message: &str) {
    eprintln!(
        "mfa-exec: warning: {}",
        safe(&without_error_numbers(message))
    );
}

/// The text without Rust's ` (os error 13)` after an OS reason: "Permission denied" is for
/// the user, the number is not. (Every I/O error that reaches a message, whichever module
/// it came through, is shown without it.)
fn without_error_numbers(text: &str) -> Cow<'_, str> {
    const MARK: &str = " (os error ";
    if !text.contains(MARK) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(MARK) {
        let after = &rest[at + MARK.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        out.push_str(&rest[..at]);
        if digits > 0 && after[digits..].starts_with(')') {
            rest = &after[digits + 1..];
        } else {
            out.push_str(MARK);
            rest = after;
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn os_error_numbers_are_left_out() {
        assert_eq!(
            without_error_numbers("cannot write x: Permission denied (os error 13); add it"),
            "cannot write x: Permission denied; add it"
        );
        assert_eq!(
            without_error_numbers("a (os error 2) b (os error 30)"),
            "a b"
        );
        assert_eq!(
            without_error_numbers("profile (os error x)"),
            "profile (os error x)"
        );
        assert!(matches!(without_error_numbers("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn escapes_are_shown_not_sent() {
        assert_eq!(safe("x\x1b[2Jy"), "x\\x1b[2Jy");
        assert_eq!(safe("a\nb\tc\r"), "a\\nb\\tc\\r");
        assert_eq!(safe("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(safe("abc\u{202E}fed"), "abc\\u{202e}fed");
        assert_eq!(safe("\x7f\x00"), "\\x7f\\x00");
        assert!(matches!(safe("prod-eu ünï ☃"), Cow::Borrowed(_)));
    }

    proptest! {
        #[test]
        fn any_string_comes_out_without_control_characters(text in any::<String>()) {
            let shown = safe(&text);
            prop_assert!(!shown.chars().any(is_unsafe), "{:?}", shown);
            // Nothing safe is lost or reordered: removing the escapes' characters leaves the
            // safe characters of the input in order.
            let kept: String = text.chars().filter(|c| !is_unsafe(*c)).collect();
            prop_assert!(is_subsequence(&kept, &shown));
        }

        #[test]
        fn safe_text_is_left_alone(text in "[^\\p{Cc}\u{200E}\u{200F}\u{202A}-\u{202E}\u{2066}-\u{2069}]*") {
            prop_assert_eq!(safe(&text), text.as_str());
        }

        #[test]
        fn hostile_terminal_sequences_never_survive(
            before in "[a-z]{0,5}",
            seq in prop::sample::select(vec!["\x1b[2J", "\x1b]0;title\x07", "\u{9b}6n", "\x1bP+q\x1b\\", "\r\x1b[K"]),
            after in "[a-z]{0,5}",
        ) {
            let text = format!("{before}{seq}{after}");
            let shown = safe(&text);
            let replayable = ['\x1b', '\u{9b}', '\r', '\x07'];
            prop_assert!(!shown.contains(replayable), "{:?}", shown);
            prop_assert!(shown.starts_with(before.as_str()) && shown.ends_with(after.as_str()));
        }
    }

    fn is_subsequence(needle: &str, haystack: &str) -> bool {
        let mut hay = haystack.chars();
        needle.chars().all(|c| hay.any(|h| h == c))
    }
}
