//! `mfa-exec cache list` and `cache clear`: the cache as a person sees and manages it.
//!
//! A user needs to see which profiles have live credentials and until when — to know
//! whether the next command will ask for a code, or to check what a stolen laptop exposed —
//! without the listing itself exposing anything: it shows profile, kind, expiry and role,
//! never a key id, secret or token, and what it shows of profile names and ARNs (which come
//! from files) is made safe for the terminal. Clearing must reach everything that could
//! still be used: clearing a profile removes the MFA sessions of which it is the source as
//! well as its own roles (`device remove` relies on that: a removed device's sessions are
//! useless), and clearing everything removes locks, the spent-code record, damaged entries
//! and the temporary files of interrupted writes, which may hold credentials.

use std::fs;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::entry::Entry;
use super::spent::USED_CODES;
use super::store::is_temporary;
use super::Cache;
use crate::clock::rfc3339;
use crate::settings::duration::human_duration;
use crate::terminal::{safe, warn};

/// What `scan` found.
#[derive(Default)]
struct Scan {
    entries: Vec<(PathBuf, Entry)>,
    /// `.json` files that cannot be read.
    damaged: usize,
    /// Temporary files of writes (`.NAME.PID.RANDOM.tmp`).
    temporary: Vec<PathBuf>,
}

impl Cache {
    /// What the directory holds, for `cache list` and `cache clear`.
    fn scan(&self) -> Result<Scan> {
        let mut scan = Scan::default();
        for dirent in fs::read_dir(&self.dir)
            .with_context(|| format!("cannot list {}", self.dir.display()))?
        {
            let path = dirent?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if is_temporary(name) {
                scan.temporary.push(path);
                continue;
            }
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            let entry = self
                .read_private(&path)
                .ok()
                .flatten()
                .and_then(|bytes| serde_json::from_slice::<Entry>(&bytes).ok());
            match entry {
                Some(entry) => scan.entries.push((path, entry)),
                None => scan.damaged += 1,
            }
        }
        scan.entries.sort_by(|a, b| {
            (&a.1.profile, a.1.credentials.expiration)
                .cmp(&(&b.1.profile, b.1.credentials.expiration))
        });
        Ok(scan)
    }

    /// `mfa-exec cache list`: profile, kind, expiry, time left; never a key or secret.
    pub(crate) fn list(&self, out: &mut impl Write) -> Result<usize> {
        let scan = self.scan()?;
        if scan.damaged > 0 {
            warn(&format!(
                "{} cache entr{} in {} cannot be read; `mfa-exec cache clear` removes them",
                scan.damaged,
                if scan.damaged == 1 { "y" } else { "ies" },
                self.dir.display()
            ));
        }
        if !scan.temporary.is_empty() {
            let n = scan.temporary.len();
            warn(&format!(
                "{n} temporary file{} in {} (left by an interrupted or ongoing write; they may hold credentials); `mfa-exec cache clear` removes leftovers",
                if n == 1 { "" } else { "s" },
                self.dir.display()
            ));
        }
        if scan.entries.is_empty() {
            return Ok(0);
        }
        writeln!(
            out,
            "{:<20} {:<8} {:<21} {:<9} ROLE",
            "PROFILE", "KIND", "EXPIRES (UTC)", "LEFT"
        )?;
        for (_, e) in &scan.entries {
            let left = e.credentials.seconds_left();
            let left = if left == 0 {
                "expired".to_string()
            } else {
                human_duration(left / 60 * 60)
            };
            // Profile names and ARNs come from files: shown, never replayed.
            writeln!(
                out,
                "{:<20} {:<8} {:<21} {:<9} {}",
                safe(&e.profile),
                e.kind.name(),
                rfc3339(e.credentials.expiration),
                left,
                safe(&match (&e.role_arn, &e.scope) {
                    (Some(role), Some(scope)) => format!("{role} [{scope}]"),
                    (Some(role), None) => role.clone(),
                    (None, _) => "-".to_string(),
                })
            )?;
        }
        Ok(scan.entries.len())
    }

    /// `mfa-exec cache clear [--profile P]`: removes entries (and their locks and temporary
    /// files); returns how many entries. Leftovers of interrupted writes go either way.
    /// Without a profile, everything in the directory goes, damaged entries included.
    pub(crate) fn clear(&self, profile: Option<&str>) -> Result<usize> {
        let mut removed = 0;
        if let Some(p) = profile {
            let mut cleared = Vec::new();
            for (path, e) in self.scan()?.entries {
                if e.profile == p || e.source_profile.as_deref() == Some(p) {
                    fs::remove_file(&path)
                        .with_context(|| format!("cannot remove {}", path.display()))?;
                    let _ = fs::remove_file(path.with_extension("lock"));
                    cleared.push(path);
                    removed += 1;
                }
            }
            let stems: Vec<&str> = cleared
                .iter()
                .filter_map(|path| path.file_stem()?.to_str())
                .collect();
            self.remove_leftovers(&stems);
            return Ok(removed);
        }
        for dirent in fs::read_dir(&self.dir)
            .with_context(|| format!("cannot list {}", self.dir.display()))?
        {
            let path = dirent?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let ours = name.ends_with(".json")
                || name.ends_with(".lock")
                || is_temporary(name)
                || name == USED_CODES;
            if ours && !path.is_dir() {
                fs::remove_file(&path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
                if name.ends_with(".json") {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::{EntryKey, Kind, Label};
    use super::*;

    const ADMIN: &str = "arn:aws:iam::210987654321:role/admin";
    const READER: &str = "arn:aws:iam::210987654321:role/reader";

    /// A cache holding an entry (and its lock) per `(profile, source profile, role, seconds
    /// left)`: a session where there is no role.
    fn populated(
        entries: &[(&str, Option<&str>, Option<&str>, i64)],
    ) -> (tempfile::TempDir, Cache) {
        let (tmp, cache) = private_cache();
        for (profile, source, role, secs_left) in entries {
            let kind = if role.is_some() {
                Kind::Role
            } else {
                Kind::Session
            };
            let key = EntryKey::new(
                kind,
                Label {
                    profile: profile.to_string(),
                    source_profile: source.map(String::from),
                    role_arn: role.map(String::from),
                    scope: None,
                },
                &[profile, role.unwrap_or("")],
            );
            cache.write(&key, &creds(*secs_left));
            drop(cache.lock(&key, None).unwrap());
        }
        (tmp, cache)
    }

    /// alice's MFA session and two roles assumed from it (`prod`, `audit`: alice is their
    /// source); bob's session, expired and unrelated.
    fn alice_and_bob() -> (tempfile::TempDir, Cache) {
        populated(&[
            ("prod", Some("alice"), Some(ADMIN), 3000),
            ("alice", Some("alice"), None, 40000),
            ("audit", Some("alice"), Some(READER), 930),
            ("bob", None, None, -60),
        ])
    }

    fn listed(cache: &Cache) -> (usize, String) {
        let mut out = Vec::new();
        let n = cache.list(&mut out).unwrap();
        (n, String::from_utf8(out).unwrap())
    }

    fn names_in(cache: &Cache) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(cache.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn the_list_shows_each_profile_its_kind_expiry_time_left_and_role() {
        let (_tmp, cache) = alice_and_bob();
        let (n, text) = listed(&cache);
        assert_eq!(n, 4);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "PROFILE              KIND     EXPIRES (UTC)         LEFT      ROLE"
        );
        // By profile name: a person looks a profile up.
        let profiles: Vec<&str> = lines[1..]
            .iter()
            .map(|l| l.split_whitespace().next().unwrap())
            .collect();
        assert_eq!(profiles, ["alice", "audit", "bob", "prod"]);
        // Fixed columns: profile 20, kind 8, expiry 21, time left 9, then the role.
        let row = |line: &str| {
            (
                line[..20].trim_end().to_string(),
                line[21..29].trim_end().to_string(),
                line[30..51].trim_end().to_string(),
                line[52..61].trim_end().to_string(),
                line[62..].to_string(),
            )
        };
        let (_, kind, expires, left, role) = row(lines[2]);
        assert_eq!((kind.as_str(), role.as_str()), ("role", READER));
        assert_eq!(expires.len(), "2026-01-02T03:04:05Z".len());
        assert!(expires.ends_with('Z') && expires.contains('T'), "{expires}");
        assert_eq!(left, "15m");
        let (_, kind, _, left, role) = row(lines[3]);
        assert_eq!(
            (kind.as_str(), left.as_str(), role.as_str()),
            ("session", "expired", "-")
        );
        let (profile, _, _, _, role) = row(lines[4]);
        assert_eq!((profile.as_str(), role.as_str()), ("prod", ADMIN));
    }

    #[test]
    fn the_list_never_shows_a_key_id_secret_or_token() {
        let (_tmp, cache) = alice_and_bob();
        let (_, text) = listed(&cache);
        let c = creds(0);
        for secret in [&c.access_key_id, &c.secret_access_key, &c.session_token] {
            assert!(!text.contains(secret.as_str()), "{text}");
        }
    }

    #[test]
    fn a_hostile_profile_name_cannot_drive_the_terminal() {
        let (_tmp, cache) = populated(&[("evil\u{1b}[2J\nroot", None, None, 600)]);
        let (_, text) = listed(&cache);
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert_eq!(text.lines().count(), 2, "one header, one row: {text:?}");
    }

    #[test]
    fn an_empty_cache_lists_nothing_not_even_a_header() {
        let (_tmp, cache) = private_cache();
        assert_eq!(listed(&cache), (0, String::new()));
    }

    #[test]
    fn damaged_entries_and_temporary_files_are_not_rows() {
        let (_tmp, cache) = populated(&[("alice", None, None, 600)]);
        fs::write(cache.dir().join("role-0000.json"), "{ not json").unwrap();
        fs::write(cache.dir().join(".role-1111.json.1.ab.tmp"), "{}").unwrap();
        let (n, text) = listed(&cache);
        assert_eq!(n, 1);
        assert_eq!(text.lines().count(), 2);
    }

    #[test]
    fn clearing_a_profile_removes_its_roles_and_the_mfa_sessions_it_is_the_source_of() {
        let (_tmp, cache) = alice_and_bob();
        let live_leftover = format!(".bob-entry.json.{}.aa.tmp", std::process::id());
        fs::write(cache.dir().join(&live_leftover), "").unwrap();
        cache.record_code("arn:aws:iam::1:mfa/alice", "123456");
        assert_eq!(cache.clear(Some("alice")).unwrap(), 3);
        let (n, text) = listed(&cache);
        assert_eq!(n, 1);
        assert!(text.lines().nth(1).unwrap().starts_with("bob "), "{text}");
        // Their locks went with them; bob's entry, its lock and the spent codes stay, and so
        // does a write that may still be going on.
        let names = names_in(&cache);
        assert_eq!(names.iter().filter(|n| n.ends_with(".json")).count(), 1);
        assert_eq!(names.iter().filter(|n| n.ends_with(".lock")).count(), 1);
        assert!(names.contains(&live_leftover), "{names:?}");
        assert!(cache.code_was_used("arn:aws:iam::1:mfa/alice", "123456"));
    }

    #[test]
    fn clearing_a_role_profile_leaves_the_session_it_was_assumed_from() {
        let (_tmp, cache) = alice_and_bob();
        assert_eq!(cache.clear(Some("prod")).unwrap(), 1);
        let (n, text) = listed(&cache);
        assert_eq!(n, 3);
        assert!(!text.contains(ADMIN), "{text}");
    }

    #[test]
    fn clearing_a_profile_removes_the_leftovers_of_its_own_interrupted_writes() {
        let (_tmp, cache) = populated(&[("alice", None, None, 600)]);
        let entry = names_in(&cache)
            .into_iter()
            .find(|n| n.ends_with(".json"))
            .unwrap();
        let leftover = format!(".{entry}.{}.aa.tmp", std::process::id());
        fs::write(cache.dir().join(&leftover), "credentials").unwrap();
        assert_eq!(cache.clear(Some("alice")).unwrap(), 1);
        assert!(names_in(&cache).is_empty(), "{:?}", names_in(&cache));
    }

    #[test]
    fn clearing_a_profile_nothing_is_cached_for_removes_nothing() {
        let (_tmp, cache) = alice_and_bob();
        let before = names_in(&cache);
        assert_eq!(cache.clear(Some("carol")).unwrap(), 0);
        assert_eq!(names_in(&cache), before);
    }

    #[test]
    fn clearing_everything_removes_all_mfa_exec_wrote_and_nothing_else() {
        let (_tmp, cache) = alice_and_bob();
        cache.record_code("arn:aws:iam::1:mfa/alice", "123456");
        fs::write(cache.dir().join("role-0000.json"), "{ damaged").unwrap();
        fs::write(cache.dir().join(".role-1111.json.1.ab.tmp"), "{}").unwrap();
        fs::write(cache.dir().join("NOTES"), "the user's own").unwrap();
        fs::create_dir(cache.dir().join("keep.json")).unwrap();
        // Four entries and the damaged one.
        assert_eq!(cache.clear(None).unwrap(), 5);
        assert_eq!(names_in(&cache), ["NOTES", "keep.json"]);
        assert!(!cache.code_was_used("arn:aws:iam::1:mfa/alice", "123456"));
    }
}
