//! Temporary credentials, and how a run gets them: from the cache, or with an MFA code and STS.
//!
//! The shapes, in aws-vault's terms: a *session* provider (GetSessionToken with the MFA code),
//! a *role* provider that assumes the role with that session's keys and no second code, and a
//! caching decorator around each, keyed by what decides the credentials. One code then serves
//! every role with the same source and device for the session's lifetime. A role asked for
//! longer than STS's 1-hour cap on chained roles (or with `--no-session`) is assumed directly
//! with the code, as in AWS's samples.

pub(crate) mod cache;
pub(crate) mod codes;
pub(crate) mod keyring;
pub(crate) mod types;

use anyhow::{bail, Result};
use tokio::runtime::Runtime;

use crate::aws::failure::{AwsFailure, FailureKind};
use crate::aws::new_runtime;
use crate::aws::sts::Sts;
use crate::settings::{Settings, TokenSource};
use cache::{Cache, EntryKey, Kind, Label};
use codes::{CodeSource, PROMPT_TRIES};
use types::{Credentials, Obtained};

/// Gets the credentials the settings ask for: the first fetch of a run (a code from `-t`,
/// `--refresh` honoured).
pub(crate) fn obtain(
    settings: &Settings,
    cache: Option<&Cache>,
) -> Result<(Credentials, Obtained)> {
    obtain_with(settings, cache, &settings.token, settings.cache.refresh)
}

/// Gets them again for a long-lived run (`--server`): through the cache, so role credentials
/// come from the cached MFA session without a prompt; a new code (from the token command or
/// the prompt, never the spent `-t`) only once that session has ended.
pub(crate) fn renew(settings: &Settings, cache: Option<&Cache>) -> Result<(Credentials, Obtained)> {
    obtain_with(settings, cache, &settings.later_token, false)
}

fn obtain_with(
    settings: &Settings,
    cache: Option<&Cache>,
    token: &TokenSource,
    refresh: bool,
) -> Result<(Credentials, Obtained)> {
    let mut fetcher = Fetcher {
        settings,
        cache,
        codes: CodeSource::new(token, &settings.serial),
        rt: None,
    };
    let policy = Policy::of(settings, token, refresh);
    match &settings.role {
        None => {
            let duration = settings.duration.unwrap_or(settings.session_duration);
            let key = session_key(settings, duration);
            let creds = cached(cache, policy, &key, || fetcher.session(duration))?;
            Ok((creds, Obtained::Session))
        }
        Some(_) => {
            let key = role_key(settings);
            let creds = if settings.via_session {
                cached(cache, policy, &key, || fetcher.role_via_session(policy))?
            } else {
                cached(cache, policy, &key, || fetcher.role_direct())?
            };
            Ok((creds, Obtained::Role))
        }
    }
}

/// The MFA session of a source and device. Every role profile with the same source and serial
/// shares it; `cache list` shows it as the source's profile, since it is no one role's.
fn session_key(settings: &Settings, duration: u64) -> EntryKey {
    let source_profile = settings.source.profile().map(String::from);
    EntryKey::new(
        Kind::Session,
        Label {
            profile: source_profile
                .clone()
                .unwrap_or_else(|| settings.profile.clone()),
            source_profile,
            role_arn: None,
        },
        &[
            "session",
            &settings.source.identity(),
            &settings.serial,
            &duration.to_string(),
        ],
    )
}

/// Role credentials. A generated session name is not part of the key; a configured one is.
fn role_key(settings: &Settings) -> EntryKey {
    let role = settings.role.as_ref().expect("a role");
    EntryKey::new(
        Kind::Role,
        Label {
            profile: settings.profile.clone(),
            source_profile: settings.source.profile().map(String::from),
            role_arn: Some(role.arn.clone()),
        },
        &[
            "role",
            &settings.source.identity(),
            &settings.serial,
            &role.arn,
            role.external_id.as_deref().unwrap_or(""),
            role.session_name.as_deref().unwrap_or(""),
            &settings.duration.map(|d| d.to_string()).unwrap_or_default(),
        ],
    )
}

/// When a cache entry may be used, and how long to wait for another run's lock.
#[derive(Clone, Copy)]
struct Policy {
    /// Ignore fresh entries: fetch anew.
    refresh: bool,
    min_remaining: u64,
    /// A run that cannot prompt waits a little, not for someone else's prompt.
    max_wait: Option<std::time::Duration>,
}

impl Policy {
    fn of(settings: &Settings, token: &TokenSource, refresh: bool) -> Policy {
        Policy {
            refresh,
            min_remaining: settings.cache.min_remaining,
            max_wait: matches!(token, TokenSource::Unavailable)
                .then_some(std::time::Duration::from_secs(5)),
        }
    }
}

/// The caching decorator: a fresh entry is used as it is; otherwise the entry's lock is taken
/// (so parallel runs make one STS call and show one prompt), the entry read again (another
/// run may have just written it) and only then fetched.
fn cached(
    cache: Option<&Cache>,
    policy: Policy,
    key: &EntryKey,
    fetch: impl FnOnce() -> Result<Credentials>,
) -> Result<Credentials> {
    let Some(cache) = cache else {
        return fetch();
    };
    let fresh = |c: &Credentials| c.fresh_for(policy.min_remaining);
    if !policy.refresh {
        if let Some(c) = cache.read(key).filter(fresh) {
            return Ok(c);
        }
    }
    let _lock = cache.lock(key, policy.max_wait)?;
    if !policy.refresh {
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

impl Fetcher<'_> {
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
    fn role_via_session(&mut self, role_policy: Policy) -> Result<Credentials> {
        let settings = self.settings;
        let key = session_key(settings, settings.session_duration);
        let mut policy = role_policy;
        loop {
            let session = cached(self.cache, policy, &key, || {
                self.session(settings.session_duration)
            })?;
            let sts = Sts::for_session(settings, &session);
            match self.runtime()?.block_on(sts.assume_role(settings, None)) {
                // A cached session STS no longer accepts (revoked, or its keys damaged on
                // disk): get a new one, once.
                Err(f)
                    if f.kind == FailureKind::BadSigner
                        && self.cache.is_some()
                        && !policy.refresh =>
                {
                    crate::terminal::say("STS refused the cached MFA session; getting a new one");
                    policy.refresh = true;
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
        call: impl Fn(&Runtime, &str) -> Result<Credentials, AwsFailure>,
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
