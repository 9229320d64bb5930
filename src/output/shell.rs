//! Shell text for `--print-env`: one quoting function per shell, so that eval can never run
//! anything from a value (quotes, `$(…)`, backticks, newlines, non-ASCII), and never a
//! `format!("export {k}={v}")` (the AWS CLI's and aws-vault's unquoted output is the
//! cautionary example).

use crate::output::environment::EnvChanges;
use crate::settings::request::ShellKind;

/// POSIX single quotes: nothing is special inside them but `'` itself, which is closed,
/// escaped and reopened.
pub(crate) fn quote_sh(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// fish single quotes: only `\\` and `\'` are escapes inside them.
pub(crate) fn quote_fish(value: &str) -> String {
    format!("'{}'", value.replace('\\', r"\\").replace('\'', r"\'"))
}

/// PowerShell single quotes: `'` is doubled, and PowerShell also treats the typographic
/// single quotes U+2018–U+201B as quote characters, so those are doubled too.
pub(crate) fn quote_powershell(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}') {
            out.push(c);
        }
        out.push(c);
    }
    out.push('\'');
    out
}

/// Names are ours, but check anyway: a name is never quoted, so it must be plain.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// The whole eval text for one shell.
pub(crate) fn render(changes: &EnvChanges, shell: ShellKind) -> String {
    let mut out = String::new();
    for (name, value) in &changes.0 {
        assert!(valid_name(name), "environment variable name {name:?}");
        let line = match (shell, value) {
            (ShellKind::Sh | ShellKind::Bash | ShellKind::Zsh, Some(v)) => {
                format!("export {name}={}", quote_sh(v))
            }
            (ShellKind::Sh | ShellKind::Bash | ShellKind::Zsh, None) => format!("unset {name}"),
            (ShellKind::Fish, Some(v)) => format!("set -gx {name} {}", quote_fish(v)),
            // `set -e` of an unset variable fails; keep the status clean for `and` chains.
            (ShellKind::Fish, None) => format!("set -e -g {name} 2>/dev/null; or true"),
            (ShellKind::Powershell, Some(v)) => format!("$Env:{name} = {}", quote_powershell(v)),
            (ShellKind::Powershell, None) => {
                format!("Remove-Item -Path Env:{name} -ErrorAction SilentlyContinue")
            }
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &[&str] = &[
        "plain",
        "it's",
        "'",
        "''",
        "\\",
        "\\'",
        "$(touch /tmp/pwned)",
        "`id`",
        "a\nb\r\nc",
        "$HOME ${HOME} %PATH%",
        "tab\there; echo hi",
        "ünïcødé ☃ 😀",
        "\u{2018}smart\u{2019} \u{201A}quotes\u{201B}",
        "end\\",
        "",
    ];

    #[test]
    fn sh_quoting_closes_and_reopens_around_single_quotes() {
        assert_eq!(quote_sh("it's"), r"'it'\''s'");
        assert_eq!(quote_sh("$(x)"), "'$(x)'");
        for v in HOSTILE {
            let q = quote_sh(v);
            // Between the quote breaks, no single quote survives unescaped.
            let inner = &q[1..q.len() - 1];
            assert_eq!(inner.replace(r"'\''", ""), v.replace('\'', ""));
        }
    }

    #[test]
    fn fish_quoting_escapes_backslash_and_quote() {
        assert_eq!(quote_fish(r"a\b'c"), r"'a\\b\'c'");
        assert_eq!(quote_fish("end\\"), r"'end\\'");
    }

    #[test]
    fn powershell_quoting_doubles_every_kind_of_single_quote() {
        assert_eq!(quote_powershell("it's"), "'it''s'");
        assert_eq!(
            quote_powershell("\u{2018}x\u{2019}"),
            "'\u{2018}\u{2018}x\u{2019}\u{2019}'"
        );
        for v in HOSTILE {
            assert_eq!(
                unquote_powershell(&quote_powershell(v)).as_deref(),
                Some(*v),
                "{v:?}"
            );
        }
    }

    // What PowerShell's parser does with a single-quoted string: a doubled quote
    // character (any of the four) is one literal; a lone one ends the string.
    fn unquote_powershell(q: &str) -> Option<String> {
        let is_q = |c: char| matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}');
        let mut chars = q.chars().peekable();
        if !chars.next().is_some_and(is_q) {
            return None;
        }
        let mut out = String::new();
        while let Some(c) = chars.next() {
            if is_q(c) {
                match chars.peek() {
                    Some(&n) if is_q(n) => {
                        out.push(c);
                        chars.next();
                    }
                    None => return Some(out),
                    Some(_) => return None, // the string ended early: injection
                }
            } else {
                out.push(c);
            }
        }
        None
    }

    /// What a POSIX shell makes of one word made of single-quoted runs and `\'`: None if
    /// anything in it would be read as syntax (an unquoted character).
    fn unquote_sh(word: &str) -> Option<String> {
        let mut out = String::new();
        let mut chars = word.chars();
        while let Some(c) = chars.next() {
            match c {
                '\'' => loop {
                    match chars.next()? {
                        '\'' => break,
                        c => out.push(c),
                    }
                },
                '\\' => out.push(chars.next()?),
                _ => return None,
            }
        }
        Some(out)
    }

    /// What fish makes of a single-quoted word: only `\\` and `\'` are escapes.
    fn unquote_fish(word: &str) -> Option<String> {
        let inner = word.strip_prefix('\'')?.strip_suffix('\'')?;
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(n @ ('\\' | '\'')) => out.push(n),
                    Some(n) => {
                        out.push('\\');
                        out.push(n);
                    }
                    None => return None, // would escape the closing quote
                },
                '\'' => return None, // the string ended early
                c => out.push(c),
            }
        }
        Some(out)
    }

    proptest::proptest! {
        #[test]
        fn quoting_round_trips_any_string(value in proptest::prelude::any::<String>()) {
            proptest::prop_assert_eq!(unquote_sh(&quote_sh(&value)), Some(value.clone()));
            proptest::prop_assert_eq!(unquote_fish(&quote_fish(&value)), Some(value.clone()));
            proptest::prop_assert_eq!(unquote_powershell(&quote_powershell(&value)), Some(value.clone()));
        }

        #[test]
        fn quoting_round_trips_hostile_strings(
            value in "([\\\\'\"`$(){};&|<>*?~#!%\n\r\t ]|\u{2018}|\u{2019}|[a-z]|\u{1b}\\[2J){0,24}"
        ) {
            proptest::prop_assert_eq!(unquote_sh(&quote_sh(&value)), Some(value.clone()));
            proptest::prop_assert_eq!(unquote_fish(&quote_fish(&value)), Some(value.clone()));
            proptest::prop_assert_eq!(unquote_powershell(&quote_powershell(&value)), Some(value.clone()));
        }
    }

    /// The real shells agree with the models: each prints back exactly what was quoted.
    #[test]
    fn real_shells_read_back_what_was_quoted() {
        use proptest::strategy::{Strategy, ValueTree};
        use proptest::test_runner::TestRunner;
        // No NUL (no shell word can hold one), and not fish's private-use range U+F600–F7FF,
        // which fish uses internally to carry raw bytes.
        let strategy = proptest::collection::vec(
            "[^\u{0}\u{F600}-\u{F7FF}]{0,30}|[\\\\'\"`$(){}\n\u{1b}\u{2018}\u{2019} ]{0,12}",
            64,
        );
        let mut runner = TestRunner::deterministic();
        for round in 0..4 {
            let values = strategy.new_tree(&mut runner).unwrap().current();
            for (shell, quote) in [
                ("sh", quote_sh as fn(&str) -> String),
                ("bash", quote_sh),
                ("zsh", quote_sh),
                ("fish", quote_fish),
            ] {
                let words: Vec<String> = values.iter().map(|v| quote(v)).collect();
                let script = format!("printf '%s\\0' {}", words.join(" "));
                let out = match std::process::Command::new(shell)
                    .arg("-c")
                    .arg(&script)
                    .output()
                {
                    Ok(out) => out,
                    Err(_) if std::env::var_os("CI").is_none() => {
                        eprintln!("skipped {shell}: not installed");
                        continue;
                    }
                    Err(e) => panic!("{shell} is required in CI: {e}"),
                };
                assert!(
                    out.status.success(),
                    "{shell} round {round}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let printed: Vec<String> = String::from_utf8(out.stdout)
                    .unwrap()
                    .split('\0')
                    .map(String::from)
                    .collect();
                assert_eq!(
                    &printed[..values.len()],
                    &values[..],
                    "{shell} round {round}"
                );
            }
        }
    }

    #[test]
    fn render_sets_and_unsets_per_shell() {
        let mut env = EnvChanges::default();
        env.set("AWS_SESSION_TOKEN", "to'ken");
        env.remove("AWS_PROFILE");
        assert_eq!(
            render(&env, ShellKind::Sh),
            "export AWS_SESSION_TOKEN='to'\\''ken'\nunset AWS_PROFILE\n"
        );
        assert_eq!(
            render(&env, ShellKind::Fish),
            "set -gx AWS_SESSION_TOKEN 'to\\'ken'\nset -e -g AWS_PROFILE 2>/dev/null; or true\n"
        );
        assert_eq!(
            render(&env, ShellKind::Powershell),
            "$Env:AWS_SESSION_TOKEN = 'to''ken'\nRemove-Item -Path Env:AWS_PROFILE -ErrorAction SilentlyContinue\n"
        );
    }
}
