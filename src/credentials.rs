//! Temporary credentials, and how a run gets them: from the cache, or with an MFA code and STS.
//!
//! The shapes, in aws-vault's terms: a *session* provider (GetSessionToken with the MFA code),
//! a *role* provider that assumes the role with that session's keys and no second code, and a
//! caching decorator around each, keyed by what decides the credentials. One code then serves
//! every role with the same source and device for the session's lifetime. A role asked for
//! longer than STS's 1-hour cap on chained roles (or with `--no-session`) is assumed directly
//! with the code, as in AWS's samples.

use anyhow::{bail, Result};
use tokio::runtime::Runtime;

use crate::cache::{Cache, EntryKey};
use crate::settings::{Settings, TokenSource};
use crate::sts::{FailureKind, Sts, StsFailure};
use crate::temporary::Credentials;
use crate::token::{CodeSource, PROMPT_TRIES};

/// What the credentials are, for the environment and for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Obtained {
    Session,
    Role,
}

/// Gets the credentials the settings ask for.
pub(crate) fn obtain(
    settings: &Settings,
    cache: Option<&Cache>,
) -> Result<(Credentials, Obtained)> {
    let mut fetcher = Fetcher::new(settings, cache);
    match &settings.role {
        None => {
            let duration = settings.duration.unwrap_or(settings.session_duration);
            let key = EntryKey::session(settings, duration);
            let creds = cached(cache, settings, &key, || fetcher.session(duration))?;
            Ok((creds, Obtained::Session))
        }
        Some(_) => {
            let key = EntryKey::role(settings);
            let creds = if settings.via_session {
                cached(cache, settings, &key, || fetcher.role_via_session())?
            } else {
                cached(cache, settings, &key, || fetcher.role_direct())?
            };
            Ok((creds, Obtained::Role))
        }
    }
}

/// The caching decorator: a fresh entry is used as it is; otherwise the entry's lock is taken
/// (so parallel runs make one STS call and show one prompt), the entry read again (another
/// run may have just written it) and only then fetched.
fn cached(
    cache: Option<&Cache>,
    settings: &Settings,
    key: &EntryKey,
    fetch: impl FnOnce() -> Result<Credentials>,
) -> Result<Credentials> {
    let Some(cache) = cache else {
        return fetch();
    };
    let fresh = |c: &Credentials| c.fresh_for(settings.cache.min_remaining);
    if !settings.cache.refresh {
        if let Some(c) = cache.read(key).filter(fresh) {
            return Ok(c);
        }
    }
    // A run that cannot prompt waits a little, not for someone else's prompt.
    let max_wait = matches!(settings.token, TokenSource::Unavailable)
        .then_some(std::time::Duration::from_secs(5));
    let _lock = cache.lock(key, max_wait)?;
    if !settings.cache.refresh {
        if let Some(c) = cache.read(key).filter(fresh) {
            return Ok(c);
        }
    }
    let creds = fetch()?;
    cache.write(key, &creds);
    Ok(creds)
}

/// Makes the STS calls of one run; the runtime and clients are built on first use, so a
/// cache hit never starts them.
struct Fetcher<'a> {
    settings: &'a Settings,
    cache: Option<&'a Cache>,
    codes: CodeSource,
    rt: Option<Runtime>,
}

impl<'a> Fetcher<'a> {
    fn new(settings: &'a Settings, cache: Option<&'a Cache>) -> Fetcher<'a> {
        Fetcher {
            settings,
            cache,
            codes: CodeSource::new(&settings.token, &settings.serial),
            rt: None,
        }
    }

    fn runtime(&mut self) -> Result<&Runtime> {
        if self.rt.is_none() {
            self.rt = Some(new_runtime()?);
        }
        Ok(self.rt.as_ref().expect("just built"))
    }

    /// GetSessionToken with an MFA code.
    fn session(&mut self, duration: u64) -> Result<Credentials> {
        let sts = Sts::for_source(self.settings)?;
        let serial = self.settings.serial.clone();
        self.with_code(|rt, code| rt.block_on(sts.get_session_token(&serial, code, Some(duration))))
    }

    /// AssumeRole with SerialNumber + TokenCode, signed with the source keys.
    fn role_direct(&mut self) -> Result<Credentials> {
        let sts = Sts::for_source(self.settings)?;
        let settings = self.settings;
        self.with_code(|rt, code| {
            rt.block_on(sts.assume_role(settings, Some((&settings.serial, code))))
        })
    }

    /// AssumeRole signed with the (cached or new) MFA session: no second code.
    fn role_via_session(&mut self) -> Result<Credentials> {
        let settings = self.settings;
        let key = EntryKey::session(settings, settings.session_duration);
        let mut session_settings = settings.clone();
        loop {
            let session = cached(self.cache, &session_settings, &key, || {
                self.session(settings.session_duration)
            })?;
            let sts = Sts::for_session(settings, &session);
            match self.runtime()?.block_on(sts.assume_role(settings, None)) {
                // A cached session STS no longer accepts (revoked, or its keys damaged on
                // disk): get a new one, once.
                Err(f)
                    if f.kind == FailureKind::BadSigner
                        && self.cache.is_some()
                        && !session_settings.cache.refresh =>
                {
                    crate::terminal::say("STS refused the cached MFA session; getting a new one");
                    session_settings.cache.refresh = true;
                }
                result => return Ok(result?),
            }
        }
    }

    /// Runs an MFA call with a code, asking for the next code when STS refuses one and a
    /// person is there to type it. STS accepts a code once, so a code this machine already
    /// spent is refused here, before the network.
    fn with_code(
        &mut self,
        call: impl Fn(&Runtime, &str) -> Result<Credentials, StsFailure>,
    ) -> Result<Credentials> {
        let serial = self.settings.serial.clone();
        let mut note: Option<&str> = None;
        for attempt in 1..=PROMPT_TRIES {
            let code = self.codes.next(note)?;
            let can_retry = self.codes.interactive && attempt < PROMPT_TRIES;
            let spent = self.cache.is_some_and(|c| c.code_was_used(&serial, &code));
            if spent {
                if can_retry {
                    note = Some("That code was already used (STS accepts each code once); enter the next code.");
                    continue;
                }
                bail!("this MFA code was already used by an earlier mfa-exec run and STS accepts each code only once: wait for the next code and try again");
            }
            let result = call(self.runtime()?, &code);
            match result {
                Ok(creds) => {
                    if let Some(c) = self.cache {
                        c.record_code(&serial, &code);
                    }
                    return Ok(creds);
                }
                Err(f) if f.kind == FailureKind::InvalidCode => {
                    // Accepted a moment ago by a parallel run for another entry?
                    let reused = self.cache.is_some_and(|c| c.code_was_used(&serial, &code));
                    if can_retry {
                        note = Some(if reused {
                            "That code was just used by another mfa-exec run (STS accepts each code once); enter the next code."
                        } else {
                            "STS refused that code (wrong, expired or already used); enter the next code."
                        });
                        continue;
                    }
                    if reused {
                        bail!("this MFA code was just used by another mfa-exec run and STS accepts each code only once: wait for the next code and try again");
                    }
                    if self.codes.interactive {
                        // Every code typed was refused: codes come from the device's clock,
                        // so a device (or phone) whose clock is off never gives a good one.
                        break;
                    }
                    return Err(f.into());
                }
                Err(f) => return Err(f.into()),
            }
        }
        bail!("STS refused {PROMPT_TRIES} MFA codes in a row; check the device's clock and that mfa_serial is this device")
    }
}

/// The single-threaded runtime the SDK's calls run on, started only when a call is needed
/// (never on a cache hit).
pub(crate) fn new_runtime() -> Result<Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))
}
