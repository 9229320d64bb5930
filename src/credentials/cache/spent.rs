//! The codes this machine has already spent.
//!
//! STS accepts a TOTP code once: a second GetSessionToken or AssumeRole with the same code
//! fails with AccessDenied, which reads like a wrong code. A code stays on the device's screen
//! for its 30-second step, so a person who starts a second command (another role, another
//! entry) within it, or a token command that prints the same code twice, would hit this. So a
//! code STS accepted is remembered, and a run handed it again asks for the next code (or says
//! to wait for it) instead of sending it, and a refusal can be explained as a code another run
//! just spent. Only a hash of device and code is kept — the code is spent anyway, but the file
//! should not say which devices this user has — and only for as long as the code could still
//! be accepted.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use sha2::{Digest, Sha256};

use super::store::no_follow_no_block;
use super::Cache;
use crate::clock::now;

/// A TOTP code is valid for its 30-second step ±1; remember spent codes a little longer.
const CODE_MEMORY_SECS: u64 = 120;
/// The record of spent codes in the cache directory: `FINGERPRINT UNIX-TIME` per line.
pub(super) const USED_CODES: &str = "used-codes";
/// Past this size the record is rewritten with its recent lines only.
const KEEP_UNDER: u64 = 4096;

impl Cache {
    /// Whether this machine already spent this code (STS refuses a code used once).
    pub(crate) fn code_was_used(&self, serial: &str, code: &str) -> bool {
        let needle = code_fingerprint(serial, code);
        self.recent_codes().iter().any(|(fp, _)| *fp == needle)
    }

    /// The spent codes still worth remembering: `(fingerprint, unix time)`.
    fn recent_codes(&self) -> Vec<(String, u64)> {
        let horizon = now().saturating_sub(CODE_MEMORY_SECS);
        if let Some(memory) = &self.memory {
            return memory.lock().map_or_else(
                |_| Vec::new(),
                |m| m.codes.iter().filter(|c| c.1 >= horizon).cloned().collect(),
            );
        }
        let Ok(Some(bytes)) = self.read_private(&self.dir.join(USED_CODES)) else {
            return Vec::new();
        };
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|line| {
                let (fp, time) = line.split_once(' ')?;
                let time = time.parse::<u64>().ok()?;
                (time >= horizon).then(|| (fp.to_string(), time))
            })
            .collect()
    }

    /// Remembers a code STS accepted, as a hash (never the code itself; it is spent anyway).
    pub(crate) fn record_code(&self, serial: &str, code: &str) {
        if let Some(memory) = &self.memory {
            if let Ok(mut m) = memory.lock() {
                m.codes.push((code_fingerprint(serial, code), now()));
            }
            return;
        }
        let path = self.dir.join(USED_CODES);
        let line = format!("{} {}\n", code_fingerprint(serial, code), now());
        // Keep the file small: past a few KB, rewrite it with the recent lines only.
        if fs::symlink_metadata(&path).is_ok_and(|m| m.len() > KEEP_UNDER) {
            let kept: String = self
                .recent_codes()
                .iter()
                .map(|(fp, time)| format!("{fp} {time}\n"))
                .collect();
            let _ = self.write_atomic(&path, format!("{kept}{line}").as_bytes());
            return;
        }
        let appended = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(no_follow_no_block())
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = appended {
            self.warn_once(&format!("{}: {e}", path.display()));
        }
    }
}

/// The device and code, hashed: what the record holds instead of either.
fn code_fingerprint(serial: &str, code: &str) -> String {
    let digest = Sha256::digest(format!("mfa-exec-used-code\0{serial}\0{code}").as_bytes());
    digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::super::testing::*;
    use super::*;

    const ALICE_MFA: &str = "arn:aws:iam::123456789012:mfa/alice";
    const BOB_MFA: &str = "arn:aws:iam::123456789012:mfa/bob";

    #[test]
    fn a_code_sts_accepted_is_not_sent_again() {
        let (_tmp, cache) = private_cache();
        assert!(!cache.code_was_used(ALICE_MFA, "123456"));
        cache.record_code(ALICE_MFA, "123456");
        assert!(cache.code_was_used(ALICE_MFA, "123456"));
    }

    #[test]
    fn the_next_code_or_the_same_digits_on_another_device_are_still_good() {
        let (_tmp, cache) = private_cache();
        cache.record_code(ALICE_MFA, "123456");
        assert!(!cache.code_was_used(ALICE_MFA, "654321"));
        assert!(!cache.code_was_used(BOB_MFA, "123456"));
    }

    #[test]
    fn a_later_run_sees_what_an_earlier_one_spent() {
        let (tmp, cache) = private_cache();
        cache.record_code(ALICE_MFA, "123456");
        let later = Cache::at(cache.dir().to_path_buf());
        assert!(later.code_was_used(ALICE_MFA, "123456"));
        drop(tmp);
    }

    #[test]
    fn the_record_is_private_and_names_neither_code_nor_device() {
        let (_tmp, cache) = private_cache();
        cache.record_code(ALICE_MFA, "123456");
        cache.record_code(BOB_MFA, "987654");
        let path = cache.dir().join(USED_CODES);
        assert_eq!(mode(&path), 0o600);
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        for secret in ["123456", "987654", "alice", "bob", "123456789012"] {
            assert!(!text.contains(secret), "{text}");
        }
    }

    #[test]
    fn a_code_is_forgotten_once_it_could_no_longer_be_typed() {
        let (_tmp, cache) = private_cache();
        let path = cache.dir().join(USED_CODES);
        let fp = code_fingerprint(ALICE_MFA, "123456");
        let recent = format!("{fp} {}\n", now() - (CODE_MEMORY_SECS - 10));
        let forgotten = format!("{fp} {}\n", now() - (CODE_MEMORY_SECS + 10));
        cache.write_atomic(&path, recent.as_bytes()).unwrap();
        assert!(cache.code_was_used(ALICE_MFA, "123456"));
        cache.write_atomic(&path, forgotten.as_bytes()).unwrap();
        assert!(!cache.code_was_used(ALICE_MFA, "123456"));
    }

    #[test]
    fn a_long_record_is_cut_back_to_the_codes_still_worth_remembering() {
        let (_tmp, cache) = private_cache();
        let path = cache.dir().join(USED_CODES);
        let old = now() - CODE_MEMORY_SECS - 60;
        let mut text = format!("{} {}\n", code_fingerprint(BOB_MFA, "111111"), now());
        while text.len() as u64 <= KEEP_UNDER {
            text.push_str(&format!(
                "{} {old}\n",
                code_fingerprint(ALICE_MFA, "000000")
            ));
        }
        cache.write_atomic(&path, text.as_bytes()).unwrap();

        cache.record_code(ALICE_MFA, "123456");
        let kept = fs::read_to_string(&path).unwrap();
        assert_eq!(kept.lines().count(), 2, "{kept}");
        assert!(cache.code_was_used(BOB_MFA, "111111"));
        assert!(cache.code_was_used(ALICE_MFA, "123456"));
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn damaged_lines_are_skipped_not_fatal() {
        let (_tmp, cache) = private_cache();
        let path = cache.dir().join(USED_CODES);
        let fp = code_fingerprint(ALICE_MFA, "123456");
        let text = format!("garbage\n{fp}\n{fp} soon\n{fp} {}\n", now());
        cache.write_atomic(&path, text.as_bytes()).unwrap();
        assert!(cache.code_was_used(ALICE_MFA, "123456"));
    }

    #[test]
    fn a_record_others_could_have_written_is_not_believed() {
        let (_tmp, cache) = private_cache();
        cache.record_code(ALICE_MFA, "123456");
        let path = cache.dir().join(USED_CODES);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        assert!(!cache.code_was_used(ALICE_MFA, "123456"));
    }

    #[test]
    fn a_planted_symlink_does_not_redirect_the_record() {
        let (tmp, cache) = private_cache();
        let target = tmp.path().join("bashrc");
        fs::write(&target, "# mine\n").unwrap();
        std::os::unix::fs::symlink(&target, cache.dir().join(USED_CODES)).unwrap();
        cache.record_code(ALICE_MFA, "123456");
        assert_eq!(fs::read_to_string(&target).unwrap(), "# mine\n");
        assert!(warned_about(&cache, "write"));
    }

    #[test]
    fn an_in_memory_cache_remembers_codes_for_as_long_as_the_disk_one() {
        let cache = Cache::in_memory();
        cache.record_code(ALICE_MFA, "123456");
        assert!(cache.code_was_used(ALICE_MFA, "123456"));
        assert!(!cache.code_was_used(BOB_MFA, "123456"));
        cache.memory.as_ref().unwrap().lock().unwrap().codes.push((
            code_fingerprint(BOB_MFA, "999999"),
            now() - CODE_MEMORY_SECS - 1,
        ));
        assert!(!cache.code_was_used(BOB_MFA, "999999"));
    }
}
