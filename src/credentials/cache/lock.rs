//! One run at a time on an entry's miss path.
//!
//! Sixteen parallel `terraform` or `make -j` jobs starting with an empty cache would each ask
//! for a code and call STS; a TOTP code is accepted once, so all but one would fail, and the
//! user would be prompted sixteen times. With a per-entry `flock`, the first run prompts and
//! writes the entry while the others wait, then find it. The kernel drops a `flock` when its
//! holder dies, so a run killed at the prompt never wedges the next one. A run that cannot
//! prompt (`--no-prompt`, a credential_process) waits only a little: it must not hang behind
//! someone else's prompt.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use anyhow::Result;
use nix::fcntl::{Flock, FlockArg};

use super::store::no_follow_no_block;
use super::{Cache, EntryKey};

impl Cache {
    /// Takes the entry's lock, waiting while another run holds it (at most `max_wait`, when
    /// given: a run that may not prompt must not hang behind one that is prompting). Ok(None),
    /// with a warning, when the lock cannot be made (a read-only disk): the run goes on
    /// unlocked. Err when `max_wait` passed.
    pub(crate) fn lock(
        &self,
        key: &EntryKey,
        max_wait: Option<Duration>,
    ) -> Result<Option<Flock<File>>> {
        if self.memory.is_some() {
            return Ok(None); // one process: its callers serialise themselves
        }
        let path = self.dir.join(key.lock_file());
        let file = match OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(no_follow_no_block())
            .open(&path)
        {
            Ok(f) => f,
            Err(e) => {
                self.warn_once(&format!("cannot lock {}: {e}", path.display()));
                return Ok(None);
            }
        };
        let mut file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(Some(lock)),
            Err((file, _)) => file,
        };
        let Some(max_wait) = max_wait else {
            crate::terminal::say(&format!(
                "waiting for another mfa-exec run to get credentials for profile {}…",
                key.profile
            ));
            return Ok(Flock::lock(file, FlockArg::LockExclusive).ok());
        };
        let deadline = Instant::now() + max_wait;
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => return Ok(Some(lock)),
                Err((f, _)) => file = f,
            }
        }
        anyhow::bail!(
            "another mfa-exec run is getting credentials for profile {} (perhaps waiting for an MFA code); with --no-prompt this run does not wait: try again once it is done",
            key.profile
        )
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Barrier};

    use super::super::testing::*;
    use super::super::{Kind, Label};
    use super::*;

    fn key(profile: &str) -> EntryKey {
        EntryKey::new(
            Kind::Session,
            Label {
                profile: profile.into(),
                source_profile: None,
                role_arn: None,
                scope: None,
            },
            &["session", profile],
        )
    }

    /// Two runs (threads with their own open file, as separate processes have) want the same
    /// entry; `max_wait` is the second one's patience. Returns whether they ever overlapped.
    fn two_runs_overlap(max_wait: Option<Duration>) -> bool {
        let (_tmp, cache) = private_cache();
        let cache = Arc::new(cache);
        let inside = Arc::new(AtomicBool::new(false));
        let overlapped = Arc::new(AtomicBool::new(false));
        let first_holds = Arc::new(Barrier::new(2));
        let run = |wait: Option<Duration>, hold: Duration, before: Option<Arc<Barrier>>| {
            let (cache, inside, overlapped) = (cache.clone(), inside.clone(), overlapped.clone());
            let first_holds = first_holds.clone();
            std::thread::spawn(move || {
                if let Some(b) = &before {
                    b.wait(); // the second run starts once the first holds the lock
                }
                let lock = cache.lock(&key("alice"), wait).unwrap();
                assert!(lock.is_some(), "a lock in a private directory can be made");
                if inside.swap(true, Ordering::SeqCst) {
                    overlapped.store(true, Ordering::SeqCst);
                }
                if before.is_none() {
                    first_holds.wait();
                }
                std::thread::sleep(hold); // prompting, calling STS, writing the entry
                inside.store(false, Ordering::SeqCst);
                drop(lock);
            })
        };
        let first = run(None, Duration::from_millis(300), None);
        let second = run(max_wait, Duration::ZERO, Some(first_holds.clone()));
        first.join().unwrap();
        second.join().unwrap();
        overlapped.load(Ordering::SeqCst)
    }

    #[test]
    fn a_second_run_waits_for_the_first_to_finish_its_miss() {
        assert!(!two_runs_overlap(None));
    }

    #[test]
    fn a_run_that_cannot_prompt_waits_for_a_quick_first_run_too() {
        assert!(!two_runs_overlap(Some(Duration::from_secs(10))));
    }

    #[test]
    fn a_run_that_cannot_prompt_gives_up_behind_one_that_is_prompting() {
        let (_tmp, cache) = private_cache();
        let _prompting = cache.lock(&key("alice"), None).unwrap().unwrap();
        let started = Instant::now();
        let err = cache
            .lock(&key("alice"), Some(Duration::from_millis(200)))
            .unwrap_err()
            .to_string();
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(err.contains("for profile alice"), "{err}");
        assert!(err.contains("--no-prompt"), "{err}");
    }

    #[test]
    fn runs_for_different_entries_do_not_wait_for_each_other() {
        let (_tmp, cache) = private_cache();
        let _alice = cache.lock(&key("alice"), None).unwrap().unwrap();
        let bob = cache.lock(&key("bob"), Some(Duration::ZERO)).unwrap();
        assert!(bob.is_some());
    }

    #[test]
    fn a_released_lock_is_free_at_once() {
        let (_tmp, cache) = private_cache();
        drop(cache.lock(&key("alice"), None).unwrap());
        assert!(cache
            .lock(&key("alice"), Some(Duration::ZERO))
            .unwrap()
            .is_some());
    }

    #[test]
    fn the_lock_file_sits_beside_the_entry_private_and_empty() {
        let (_tmp, cache) = private_cache();
        let k = key("alice");
        let _held = cache.lock(&k, None).unwrap().unwrap();
        let path = cache.dir().join(k.lock_file());
        assert_eq!(mode(&path), 0o600);
        assert_eq!(fs::metadata(&path).unwrap().len(), 0);
    }

    #[test]
    fn a_lock_that_cannot_be_made_lets_the_run_go_on_unlocked_with_a_warning() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::at(tmp.path().join("gone"));
        assert!(cache.lock(&key("alice"), None).unwrap().is_none());
        assert!(warned_about(&cache, "write"));
    }

    #[test]
    fn a_planted_symlink_is_not_followed_to_create_or_lock_a_file_elsewhere() {
        let (tmp, cache) = private_cache();
        let k = key("alice");
        let target = tmp.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, cache.dir().join(k.lock_file())).unwrap();
        assert!(cache.lock(&k, None).unwrap().is_none());
        assert!(!target.exists());
    }

    #[test]
    fn an_in_memory_cache_takes_no_lock() {
        let cache = Cache::in_memory();
        assert!(cache.lock(&key("alice"), None).unwrap().is_none());
        assert!(!warned_about(&cache, "write"));
    }
}
