//! One cached set of credentials: its JSON form, and reading and writing it.
//!
//! The cache is there to save a code, never to cost a run: an entry that is missing,
//! damaged, from another version or refused as unsafe is a miss (with one warning) and gets
//! replaced by the next write, and a write that fails (a full or read-only disk) is a warning
//! while the command runs anyway. Whether credentials are still fresh enough is the caller's
//! call (`--min-remaining`, half their lifetime), so an entry is returned as it is, expired or
//! not; its `expires` line is for people reading the file.

use serde::{Deserialize, Serialize};

use super::{Cache, EntryKey, Kind};
use crate::clock::rfc3339;
use crate::secrets::Credentials;

/// Bumped when the format changes: an entry of another version is a miss, not a misreading.
const ENTRY_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
pub(super) struct Entry {
    version: u32,
    pub(super) kind: Kind,
    pub(super) profile: String,
    pub(super) source_profile: Option<String>,
    pub(super) role_arn: Option<String>,
    /// The session policies and tags of a scoped role session (absent otherwise, so entries
    /// of unscoped sessions read and write as before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) scope: Option<String>,
    /// For people reading the file; `credentials.expiration` is what counts.
    expires: String,
    pub(super) credentials: Credentials,
}

impl Cache {
    /// The entry's credentials; None on a miss. A damaged entry is a miss with a warning.
    pub(crate) fn read(&self, key: &EntryKey) -> Option<Credentials> {
        if let Some(memory) = &self.memory {
            return memory.lock().ok()?.entries.get(&key.file_stem).cloned();
        }
        if let Some(read) = &self.read_once {
            if self
                .listed
                .as_ref()
                .is_some_and(|l| !l.contains(&key.file_stem))
            {
                return None;
            }
            if let Some(found) = read.lock().ok()?.get(&key.file_stem) {
                return found.clone();
            }
            let found = self.read_from_disk(key);
            read.lock()
                .ok()?
                .insert(key.file_stem.clone(), found.clone());
            return found;
        }
        self.read_from_disk(key)
    }

    fn read_from_disk(&self, key: &EntryKey) -> Option<Credentials> {
        let path = self.dir.join(key.entry_file());
        let bytes = match self.read_private(&path) {
            Ok(Some(b)) => b,
            Ok(None) => return None,
            Err(problem) => {
                self.warn_once_about(
                    &path.display().to_string(),
                    &format!("ignoring cache entry: {problem}"),
                );
                return None;
            }
        };
        let parsed = serde_json::from_slice::<Entry>(&bytes)
            .ok()
            .filter(|e| e.version == ENTRY_VERSION && e.kind == key.kind);
        match parsed {
            Some(entry) => Some(entry.credentials),
            None => {
                self.warn_once_about(
                    &path.display().to_string(),
                    &format!(
                        "cache entry {} is damaged; it will be replaced",
                        path.display()
                    ),
                );
                None
            }
        }
    }

    /// Removes the entry and its lock file (a rotated key's, once the key is gone); a
    /// failure is only a warning, as for a write.
    pub(crate) fn remove(&self, key: &EntryKey) {
        if let Some(memory) = &self.memory {
            if let Ok(mut m) = memory.lock() {
                m.entries.remove(&key.file_stem);
            }
            return;
        }
        for name in [key.entry_file(), key.lock_file()] {
            let path = self.dir.join(name);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => self.warn_once(&format!(
                    "cannot remove {}: {}",
                    path.display(),
                    crate::files::io_reason(&e)
                )),
                _ => {}
            }
        }
    }

    /// Writes the entry atomically; a failure (read-only or full disk) is only a warning.
    pub(crate) fn write(&self, key: &EntryKey, creds: &Credentials) {
        if let Some(memory) = &self.memory {
            if let Ok(mut m) = memory.lock() {
                m.entries.insert(key.file_stem.clone(), creds.clone());
            }
            return;
        }
        let entry = Entry {
            version: ENTRY_VERSION,
            kind: key.kind,
            profile: key.profile.clone(),
            source_profile: key.source_profile.clone(),
            role_arn: key.role_arn.clone(),
            scope: key.scope.clone(),
            expires: rfc3339(creds.expiration),
            credentials: creds.clone(),
        };
        let path = self.dir.join(key.entry_file());
        let text = match serde_json::to_vec_pretty(&entry) {
            Ok(t) => t,
            Err(_) => return,
        };
        if let Err(e) = self.write_atomic(&path, &text) {
            self.warn_once(&format!("{e:#}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::super::testing::*;
    use super::super::Label;
    use super::*;

    fn alice_session() -> EntryKey {
        EntryKey::new(
            Kind::Session,
            Label {
                profile: "alice".into(),
                source_profile: Some("alice".into()),
                role_arn: None,
                scope: None,
            },
            &["session", "AKIAALICE", "arn:aws:iam::1:mfa/alice", "43200"],
        )
    }

    #[test]
    fn a_reader_of_each_entry_once_finds_what_the_directory_held_and_nothing_else() {
        let (_tmp, cache) = private_cache();
        let key = alice_session();
        let written = creds(3600);
        cache.write(&key, &written);
        let bob = EntryKey::new(
            Kind::Session,
            Label {
                profile: "bob".into(),
                source_profile: Some("bob".into()),
                role_arn: None,
                scope: None,
            },
            &["session", "AKIABOB", "arn:aws:iam::1:mfa/bob", "43200"],
        );
        let list = cache.reading_each_entry_once();
        assert!(list.listed.as_ref().is_some_and(|l| l.len() == 1));
        let read = list.read(&key).expect("the listed entry is read");
        assert_eq!(read.access_key_id, written.access_key_id);
        // Asked again, from memory; an entry the listing lacks is a miss without a read.
        assert!(list.read(&key).is_some());
        assert!(list.read(&bob).is_none());
    }

    #[test]
    fn what_one_run_writes_the_next_reads_back_from_a_private_file() {
        let (_tmp, cache) = private_cache();
        let key = alice_session();
        assert!(cache.read(&key).is_none(), "nothing cached yet");
        let written = creds(3600);
        cache.write(&key, &written);

        let read = cache.read(&key).expect("a hit");
        assert_eq!(read.access_key_id, written.access_key_id);
        assert_eq!(read.secret_access_key, written.secret_access_key);
        assert_eq!(read.session_token, written.session_token);
        assert_eq!(read.expiration, written.expiration);
        assert_eq!(read.issued, written.issued);
        assert_eq!(mode(&cache.dir().join(key.entry_file())), 0o600);
    }

    #[test]
    fn the_file_says_whose_entry_it_is_and_when_it_expires_in_words() {
        let (_tmp, cache) = private_cache();
        let key = alice_session();
        let written = creds(3600);
        cache.write(&key, &written);
        let json: serde_json::Value =
            serde_json::from_slice(&fs::read(cache.dir().join(key.entry_file())).unwrap()).unwrap();
        assert_eq!(json["version"], 1);
        assert_eq!(json["kind"], "session");
        assert_eq!(json["profile"], "alice");
        assert_eq!(json["source_profile"], "alice");
        assert_eq!(json["role_arn"], serde_json::Value::Null);
        assert_eq!(json["expires"], rfc3339(written.expiration));
        assert_eq!(json["credentials"]["expiration"], written.expiration);
    }

    #[test]
    fn expired_credentials_are_returned_as_they_are_for_the_caller_to_judge() {
        let (_tmp, cache) = private_cache();
        let key = alice_session();
        cache.write(&key, &creds(-60));
        let read = cache.read(&key).expect("still an entry");
        assert_eq!(read.seconds_left(), 0);
        assert!(!read.fresh_for(0), "the caller sees they are spent");
    }

    #[test]
    fn a_damaged_entry_is_a_miss_and_the_next_write_replaces_it() {
        let (_tmp, cache) = private_cache();
        let key = alice_session();
        let path = cache.dir().join(key.entry_file());
        let good = creds(3600);
        cache.write(&key, &good);
        let text = fs::read_to_string(&path).unwrap();
        for damaged in [
            text[..text.len() / 2].to_string(),
            String::new(),
            text.replace("\"version\": 1", "\"version\": 2"),
            text.replace("\"kind\": \"session\"", "\"kind\": \"role\""),
        ] {
            fs::write(&path, &damaged).unwrap();
            assert!(cache.read(&key).is_none(), "{damaged}");
        }
        cache.write(&key, &good);
        assert!(cache.read(&key).is_some());
    }

    #[test]
    fn an_unsafe_entry_is_a_miss_not_an_error() {
        let (_tmp, cache) = private_cache();
        let key = alice_session();
        cache.write(&key, &creds(3600));
        let path = cache.dir().join(key.entry_file());
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
        assert!(cache.read(&key).is_none());
        assert!(warned_about(&cache, &path.display().to_string()));
    }

    #[test]
    fn a_write_that_fails_is_one_warning_and_the_run_goes_on() {
        let tmp = tempfile::tempdir().unwrap();
        // A file where the directory should be: no write can succeed.
        let blocked = tmp.path().join("mfa-exec");
        fs::write(&blocked, "").unwrap();
        let cache = Cache::at(blocked);
        let key = alice_session();
        cache.write(&key, &creds(3600));
        cache.write(&key, &creds(3600));
        assert!(warned_about(&cache, "write"));
        assert!(cache.read(&key).is_none());
    }

    #[test]
    fn entries_are_kept_apart_by_key() {
        let (_tmp, cache) = private_cache();
        let alice = alice_session();
        let bob = EntryKey::new(
            Kind::Session,
            Label {
                profile: "bob".into(),
                source_profile: None,
                role_arn: None,
                scope: None,
            },
            &["session", "AKIABOB", "arn:aws:iam::1:mfa/bob", "43200"],
        );
        let mut bobs = creds(3600);
        bobs.access_key_id = "ASIABOB".into();
        cache.write(&alice, &creds(3600));
        cache.write(&bob, &bobs);
        assert_eq!(cache.read(&alice).unwrap().access_key_id, "ASIATESTKEYID");
        assert_eq!(cache.read(&bob).unwrap().access_key_id, "ASIABOB");
    }

    #[test]
    fn an_in_memory_cache_holds_entries_for_the_life_of_the_process() {
        let cache = Cache::in_memory();
        let key = alice_session();
        assert!(cache.read(&key).is_none());
        cache.write(&key, &creds(3600));
        assert_eq!(
            cache.read(&key).unwrap().secret_access_key,
            creds(0).secret_access_key
        );
    }
}
