//! Shell text for `--print-env`: one quoting function per shell, so that eval can never run
//! anything from a value (quotes, `$(…)`, backticks, newlines, non-ASCII), and never a
//! `format!("export {k}={v}")` (the AWS CLI's and aws-vault's unquoted output is the
//! cautionary example).

use crate::cli::ShellKind;
use crate::environment::EnvChanges;

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
        // What PowerShell's parser does with a single-quoted string: a doubled quote
        // character (any of the four) is one literal; a lone one ends the string.
        fn unquote(q: &str) -> Option<String> {
            let is_q =
                |c: char| matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}');
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
        for v in HOSTILE {
            assert_eq!(unquote(&quote_powershell(v)).as_deref(), Some(*v), "{v:?}");
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
