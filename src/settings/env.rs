//! The process environment, read once, and the paths it decides: the AWS profile files, the
//! cache directory, the home directory. Every later step asks this snapshot, never
//! `std::env`, so one run sees one environment.

use std::path::PathBuf;

use anyhow::Result;

use crate::history::{self, History};
use crate::names::NameMap;
use crate::profile::ProfileFiles;

/// The process environment, read once.
pub(crate) struct Env {
    /// Hashed by length, head and tail, not SipHash or FNV over every byte: the names are
    /// short and the process's own, and `list` asks some fifteen of them for each of
    /// thousands of profiles.
    vars: NameMap<String>,
    /// Names of variables whose values are not UTF-8 (left out of `vars`).
    not_text: Vec<String>,
}

impl Env {
    pub(crate) fn from_process() -> Env {
        let mut vars = NameMap::default();
        let mut not_text = Vec::new();
        for (k, v) in std::env::vars_os() {
            match (k.into_string(), v.into_string()) {
                (Ok(k), Ok(v)) => {
                    vars.insert(k, v);
                }
                (Ok(k), Err(_)) => not_text.push(k),
                _ => {}
            }
        }
        Env { vars, not_text }
    }

    /// An environment of these variables alone, for unit tests.
    #[cfg(test)]
    pub(crate) fn from_pairs(pairs: &[(&str, &str)]) -> Env {
        Env {
            vars: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            not_text: Vec::new(),
        }
    }

    /// A non-empty variable.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The names of the non-empty variables that start with `prefix`.
    pub(crate) fn names_starting_with<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = &'a str> + 'a {
        self.vars
            .iter()
            .filter(move |(k, v)| k.starts_with(prefix) && !v.is_empty())
            .map(|(k, _)| k.as_str())
    }

    /// HOME, else the user's home directory from the password database (cron, some CI).
    pub(crate) fn home(&self) -> Option<PathBuf> {
        self.get("HOME").map(PathBuf::from).or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.dir)
        })
    }

    fn aws_file(&self, var: &str, default: &str) -> PathBuf {
        match self.get(var) {
            Some(p) => expand_home(p, self.home()),
            None => self
                .home()
                .unwrap_or_else(|| PathBuf::from("/"))
                .join(".aws")
                .join(default),
        }
    }

    /// Whether the variable is set to something that is not UTF-8.
    pub(crate) fn is_not_text(&self, key: &str) -> bool {
        self.not_text.iter().any(|n| n == key)
    }

    /// The credential cache's directory, whether or not it exists: `$XDG_CACHE_HOME/mfa-exec`,
    /// else `~/.cache/mfa-exec`.
    pub(crate) fn cache_dir(&self) -> Option<PathBuf> {
        self.xdg_dir("XDG_CACHE_HOME", ".cache")
    }

    /// mfa-exec's configuration directory (the keyring record, the keys' creation dates):
    /// `$XDG_CONFIG_HOME/mfa-exec`, else `~/.config/mfa-exec`.
    pub(crate) fn config_dir(&self) -> Option<PathBuf> {
        self.xdg_dir("XDG_CONFIG_HOME", ".config")
    }

    /// `$VAR/mfa-exec`, else `~/IN_HOME/mfa-exec`. XDG says a relative `$VAR` is to be
    /// ignored.
    fn xdg_dir(&self, var: &str, in_home: &str) -> Option<PathBuf> {
        let base = self
            .get(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| self.home().map(|h| h.join(in_home)))?;
        Some(base.join("mfa-exec"))
    }

    /// The directory of what mfa-exec must not lose when a cache is wiped (the run history,
    /// `keys rotate`'s journal), whether or not it exists: `$XDG_STATE_HOME/mfa-exec`, else
    /// `~/.local/state/mfa-exec`.
    pub(crate) fn state_dir(&self) -> Option<PathBuf> {
        self.xdg_dir("XDG_STATE_HOME", ".local/state")
    }

    /// The run history (`crate::history`), in [`Env::state_dir`], bounded by
    /// `MFA_EXEC_HISTORY_MAX` bytes; None when `MFA_EXEC_HISTORY` is `off` (or `0`, `false`,
    /// `no`) or there is no home to keep it in. A bound that is not a number of bytes, or
    /// below the smallest, is the default: the history never stops a run.
    pub(crate) fn history(&self) -> Option<History> {
        let off = self.get("MFA_EXEC_HISTORY").is_some_and(|v| {
            ["off", "0", "false", "no"]
                .iter()
                .any(|off| v.eq_ignore_ascii_case(off))
        });
        if off {
            return None;
        }
        self.history_kept()
    }

    /// Where the history is kept, recording on or off: what `mfa-exec history` reads.
    pub(crate) fn history_kept(&self) -> Option<History> {
        let max = self
            .get("MFA_EXEC_HISTORY_MAX")
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|&m| m >= history::MIN_MAX)
            .unwrap_or(history::DEFAULT_MAX);
        Some(History {
            dir: self.state_dir()?,
            max,
        })
    }

    /// The AWS config and credentials files (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE, else
    /// `~/.aws/config` and `~/.aws/credentials`), read and parsed.
    pub(crate) fn profile_files(&self) -> Result<ProfileFiles> {
        ProfileFiles::load(
            self.aws_file("AWS_CONFIG_FILE", "config"),
            self.aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
        )
    }

    /// The profile files of a run: answered from what an earlier run with the very same files
    /// remembered of their parse, kept in the cache directory (`profile::remembered`), so a
    /// cache hit costs the same whatever the size of the files.
    pub(crate) fn remembered_profile_files(&self) -> Result<ProfileFiles> {
        ProfileFiles::load_remembering(
            self.aws_file("AWS_CONFIG_FILE", "config"),
            self.aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
            self.cache_dir().as_deref(),
        )
    }
}

fn expand_home(path: &str, home: Option<PathBuf>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_is_kept_under_xdg_state_home_unless_turned_off() {
        let kept = |pairs: &[(&str, &str)]| Env::from_pairs(pairs).history();
        let home = [("HOME", "/home/alice")];
        let default = kept(&home).unwrap();
        assert_eq!(
            default.dir,
            PathBuf::from("/home/alice/.local/state/mfa-exec")
        );
        assert_eq!(default.max, history::DEFAULT_MAX);
        let state = kept(&[("HOME", "/home/alice"), ("XDG_STATE_HOME", "/var/state")]).unwrap();
        assert_eq!(state.dir, PathBuf::from("/var/state/mfa-exec"));
        // XDG: a relative XDG_STATE_HOME is ignored.
        let relative = kept(&[("HOME", "/home/alice"), ("XDG_STATE_HOME", "state")]).unwrap();
        assert_eq!(relative.dir, default.dir);
        for off in ["off", "OFF", "0", "false", "no"] {
            let env = Env::from_pairs(&[("HOME", "/home/alice"), ("MFA_EXEC_HISTORY", off)]);
            assert!(env.history().is_none(), "{off}");
            // `mfa-exec history` still reads what was kept.
            assert_eq!(env.history_kept().unwrap().dir, default.dir);
        }
        let bound = |v: &str| {
            kept(&[("HOME", "/h"), ("MFA_EXEC_HISTORY_MAX", v)])
                .unwrap()
                .max
        };
        assert_eq!(bound("65536"), 65536);
        // Not a number, or too small to hold a few runs: the default, never a failed run.
        assert_eq!(bound("64k"), history::DEFAULT_MAX);
        assert_eq!(bound("100"), history::DEFAULT_MAX);
    }
}
