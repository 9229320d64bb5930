//! Temporary credentials, and how a run gets them: from the cache, or with an MFA code and STS.
//!
//! The shapes, in aws-vault's terms: a *session* provider (GetSessionToken with the MFA code),
//! a *role* provider that assumes the role with that session's keys and no second code, and a
//! caching decorator around each, keyed by what decides the credentials. One code then serves
//! every role with the same source and device for the session's lifetime, chains of roles
//! (`target -> hub -> keys`) included. A role asked for longer than STS's 1-hour cap on chained
//! roles (or with `--no-session`) is assumed directly with the code, as in AWS's samples. A
//! source that is not an IAM user's long-term keys (the instance, SSO, web identity…) cannot
//! call GetSessionToken: its chain is assumed step by step, the code going with the role whose
//! profile has `mfa_serial`, as the AWS SDKs do.

pub(crate) mod cache;
pub(crate) mod codes;
pub(crate) mod prompt;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Result};
use tokio::runtime::Runtime;

use crate::aws::failure::{AwsFailure, FailureKind};
use crate::aws::sts::Sts;
use crate::aws::{new_runtime, Signer};
use crate::history::Got;
use crate::secrets::Credentials;
use crate::settings::duration::{human_duration, CHAINED_ROLE_MAX};
use crate::settings::scope::Scope;
use crate::settings::{RoleSettings, Settings, TokenSource};
use cache::{Cache, EntryKey, FirstBlock, Kind, Label};
use codes::CodeSource;
use prompt::PROMPT_TRIES;

/// What the credentials handed to the command are, for the environment and for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Obtained {
    /// GetSessionToken: an MFA session of the source's user.
    Session,
    /// AssumeRole.
    Role,
}

/// Whether this process fetched credentials from STS, and whether STS accepted an MFA code:
/// what the history records of a run (`code`, `sts` or `cache`), known without a call.
static FETCHED: AtomicBool = AtomicBool::new(false);
static CODE_SPENT: AtomicBool = AtomicBool::new(false);

/// Where this process's credentials came from so far: a code STS accepted, a call to STS
/// without one (a role from the cached MFA session), or the cache alone.
pub(crate) fn how_obtained() -> Got {
    if CODE_SPENT.load(Ordering::Relaxed) {
        Got::Code
    } else if FETCHED.load(Ordering::Relaxed) {
        Got::Sts
    } else {
        Got::Cache
    }
}

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
        codes: CodeSource::new(token),
        rt: None,
        base: None,
    };
    let policy = Policy::of(settings, token, refresh);
    match &settings.role {
        // A web identity profile on its own: the SDK's AssumeRoleWithWebIdentity, no code.
        None if settings.serial.is_none() => {
            let key = base_key(settings);
            let creds = cached(cache, policy, &key, || fetcher.base_credentials())?;
            Ok((creds, Obtained::Role))
        }
        None => {
            let duration = settings.duration.unwrap_or(settings.session_duration);
            let key = session_key(settings, duration);
            let creds = cached(cache, policy, &key, || fetcher.session(duration))?;
            Ok((creds, Obtained::Session))
        }
        Some(_) => {
            let key = role_key(settings);
            let creds = cached(cache, policy, &key, || fetcher.roles(policy))?;
            Ok((creds, Obtained::Role))
        }
    }
}

/// After `keys rotate` replaced the access key `old_id` by `new_id` of the same IAM user: the
/// cache entries a run of `settings` (a profile whose source is that key) would use, copied
/// from the old key's names to the new key's. Entries are keyed by the source's access key id,
/// which a run knows without a network call and which never lets two users (or a profile
/// whose keys were replaced by hand with another user's) share an entry; only a rotation knows
/// that the new key is the same user, and the temporary credentials obtained with the old key
/// stay valid at AWS until they expire, so the day's MFA session keeps serving without a new
/// code. Returns how many entries were copied; an entry already under the new name stays.
/// `drop_old`: once the old key is gone, its entries serve nobody: they are removed (after
/// being copied when that was still to be done), so `cache list` shows each entry once.
pub(crate) fn carry_over(
    settings: &Settings,
    cache: &Cache,
    old_id: &str,
    new_id: &str,
    drop_old: bool,
) -> usize {
    let mut pairs = vec![(
        session_key_of(settings, old_id, settings.session_duration),
        session_key_of(settings, new_id, settings.session_duration),
    )];
    match &settings.role {
        Some(_) => pairs.push((
            role_key_of(settings, old_id.to_string(), None),
            role_key_of(settings, new_id.to_string(), None),
        )),
        None => {
            if let Some(d) = settings
                .duration
                .filter(|d| *d != settings.session_duration)
            {
                pairs.push((
                    session_key_of(settings, old_id, d),
                    session_key_of(settings, new_id, d),
                ));
            }
        }
    }
    let mut copied = 0;
    for (old, new) in pairs {
        if let (Some(creds), None) = (cache.read(&old), cache.read(&new)) {
            cache.write(&new, &creds);
            copied += 1;
        }
        if drop_old {
            cache.remove(&old);
        }
    }
    copied
}

/// The credentials a long-lived run keeps handing on (`--server` serves them, `--proxy` signs
/// with them), renewed through the cache when they near expiry.
pub(crate) struct Renewing {
    settings: Settings,
    cache: Option<Cache>,
    creds: Credentials,
}

impl Renewing {
    pub(crate) fn new(settings: &Settings, cache: Option<Cache>, creds: Credentials) -> Renewing {
        Renewing {
            settings: settings.clone(),
            cache,
            creds,
        }
    }

    /// The current credentials, renewed first when they have less than `min_remaining` left.
    pub(crate) fn fresh(&mut self) -> Result<Credentials> {
        if !self.creds.fresh_for(self.settings.cache.min_remaining) {
            // Through the cache: role credentials come from the cached MFA session without a
            // prompt; a new code is asked for only when that session has ended. `--refresh`
            // applied to the first fetch only.
            let (creds, _) = renew(&self.settings, self.cache.as_ref())?;
            self.creds = creds;
        }
        Ok(self.creds.clone())
    }
}

/// What `list` works out once for thousands of profiles: the MFA sessions it has looked up, by
/// what decides one (the source, the device and the duration), since role profiles share the
/// few sessions of their source users; and the start of the last role key's hash.
#[derive(Default)]
pub(crate) struct ListMemo {
    sessions: HashMap<(String, String, u64), Option<u64>>,
    first_block: FirstBlock,
}

/// What the cache holds for a run with these settings, for `list`: the expiration of the
/// credentials the command would get, and of the MFA session its roles would be assumed from.
/// Reads entries only: never writes, never a secret out.
pub(crate) fn cached_expirations(
    settings: &Settings,
    cache: &Cache,
    memo: &mut ListMemo,
) -> (Option<u64>, Option<u64>) {
    let expiration = |key: &EntryKey| cache.read(key).map(|c| c.expiration);
    let mut session = |duration: u64| {
        let decides = (
            settings.source.identity(),
            settings.serial.clone().unwrap_or_default(),
            duration,
        );
        *memo
            .sessions
            .entry(decides)
            .or_insert_with(|| expiration(&session_key(settings, duration)))
    };
    match &settings.role {
        None if settings.serial.is_none() => (expiration(&base_key(settings)), None),
        None => (
            session(settings.duration.unwrap_or(settings.session_duration)),
            None,
        ),
        Some(_) => {
            let role = role_key_of(
                settings,
                settings.source.identity(),
                Some(&mut memo.first_block),
            );
            (expiration(&role), session(settings.session_duration))
        }
    }
}

/// The MFA session of a source and device. Every role profile with the same source and serial
/// shares it; `cache list` shows it as the source's profile, since it is no one role's.
fn session_key(settings: &Settings, duration: u64) -> EntryKey {
    session_key_of(settings, &settings.source.identity(), duration)
}

/// [`session_key`] for the source identified by `identity`.
fn session_key_of(settings: &Settings, identity: &str, duration: u64) -> EntryKey {
    let source_profile = settings.source.profile().map(String::from);
    EntryKey::new(
        Kind::Session,
        Label {
            profile: source_profile
                .clone()
                .unwrap_or_else(|| settings.profile.clone()),
            source_profile,
            role_arn: None,
            scope: None,
        },
        &[
            "session",
            identity,
            settings.serial.as_deref().unwrap_or_default(),
            &duration.to_string(),
        ],
    )
}

/// Role credentials. A generated session name is not part of the key; a configured one is,
/// and so is every role of a chain (a profile reached another way is other credentials).
fn role_key(settings: &Settings) -> EntryKey {
    role_key_of(settings, settings.source.identity(), None)
}

/// [`role_key`] for the source identified by `identity`; `first`, for one of many keys made in a
/// row (see [`FirstBlock`]).
fn role_key_of(settings: &Settings, identity: String, first: Option<&mut FirstBlock>) -> EntryKey {
    let role = settings.role.as_ref().expect("a role");
    let duration = settings.duration.map(|d| d.to_string()).unwrap_or_default();
    // What a scoped or tagged session is, only when it is one: an unscoped run keeps the key
    // it always had, and never meets a scoped entry (nor a scoped run an unscoped one).
    let mut scoped: Vec<String> = Vec::new();
    for (i, tagging) in settings
        .chain
        .iter()
        .map(|h| &h.role.tagging)
        .chain([&role.tagging])
        .enumerate()
    {
        if !tagging.is_empty() {
            scoped.push(format!("tagging {i}"));
            scoped.extend(tagging.key_parts());
        }
    }
    if let Some(scope) = &settings.scope {
        scoped.extend(scope.key_parts());
    }
    // Borrowed, not copied: `list` makes a key for each of thousands of profiles.
    fn or_empty(value: &Option<String>) -> &str {
        value.as_deref().unwrap_or_default()
    }
    let mut parts: Vec<&str> = vec![
        "role",
        &identity,
        or_empty(&settings.serial),
        &role.arn,
        or_empty(&role.external_id),
        or_empty(&role.session_name),
        &duration,
    ];
    for hop in &settings.chain {
        parts.extend([
            "via",
            &hop.role.arn,
            or_empty(&hop.role.external_id),
            or_empty(&hop.role.session_name),
        ]);
    }
    parts.extend(scoped.iter().map(String::as_str));
    let label = Label {
        profile: settings.profile.clone(),
        source_profile: settings.source.profile().map(String::from),
        role_arn: Some(role.arn.clone()),
        scope: describe_scope(settings),
    };
    EntryKey::new_sharing(Kind::Role, label, &parts, first)
}

/// How `cache list` and `list` name a role session's scope and tags: `read-only; tags
/// team=platform`; None for a session as the role allows it.
pub(crate) fn describe_scope(settings: &Settings) -> Option<String> {
    let role = settings.role.as_ref()?;
    let parts: Vec<String> = settings
        .scope
        .iter()
        .map(|s| s.describe())
        .chain((!role.tagging.is_empty()).then(|| role.tagging.describe()))
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The credentials of a source taken as they are (a web identity profile's role).
fn base_key(settings: &Settings) -> EntryKey {
    EntryKey::new(
        Kind::Role,
        Label {
            profile: settings.profile.clone(),
            source_profile: settings.source.profile().map(String::from),
            role_arn: None,
            scope: None,
        },
        &["source", &settings.source.identity()],
    )
}

/// The MFA device of a call that takes a code. The settings refuse a run that needs a code
/// and has no device, so this is reached only by a bug: said in one line, not a panic.
fn device(settings: &Settings) -> Result<&str> {
    settings.serial.as_deref().ok_or_else(|| {
        anyhow::anyhow!(
            "no MFA device for profile '{}': add mfa_serial to it, or pass --serial-number",
            settings.profile
        )
    })
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
        FETCHED.store(true, Ordering::Relaxed);
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
    FETCHED.store(true, Ordering::Relaxed);
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
    /// The source's credentials once loaded, and whether they are long-term keys.
    base: Option<(Signer, bool)>,
}

/// A step of a chain that failed: which one (0 = the first role), and why.
struct HopFailure {
    hop: usize,
    error: anyhow::Error,
}

impl Fetcher<'_> {
    fn runtime(&mut self) -> Result<&Runtime> {
        if self.rt.is_none() {
            self.rt = Some(new_runtime()?);
        }
        Ok(self.rt.as_ref().expect("just built"))
    }

    /// The source's credentials, loaded once and before any code is asked for: a
    /// credential_process, SSO or the instance that fails costs no code.
    fn base(&mut self) -> Result<(Signer, bool)> {
        if let Some(base) = &self.base {
            return Ok(base.clone());
        }
        let signer = Signer::source(&self.settings.source, self.settings.region.as_deref())?;
        let loaded = self.runtime()?.block_on(signer.load())?;
        self.base = Some(loaded.clone());
        Ok(loaded)
    }

    /// The source's credentials as they are (a web identity profile's role).
    fn base_credentials(&mut self) -> Result<Credentials> {
        let (signer, _) = self.base()?;
        Ok(self.runtime()?.block_on(signer.credentials())?)
    }

    /// GetSessionToken with an MFA code, signed by an IAM user's long-term keys (STS refuses
    /// any other, so other keys are refused here, before a code is spent).
    fn session(&mut self, duration: u64) -> Result<Credentials> {
        let (signer, long_term) = self.base()?;
        if !long_term {
            bail!(
                "the source credentials of profile '{}' ({}) are temporary, and GetSessionToken takes only an IAM user's long-term keys: add `role_arn` (a role to assume with the code) to the profile, or use keys as its source",
                self.settings.profile,
                self.settings.source.describe()
            );
        }
        let sts = Sts::with(self.settings, signer);
        let serial = device(self.settings)?;
        self.with_code(|rt, code| rt.block_on(sts.get_session_token(serial, code, Some(duration))))
    }

    /// The roles of the profile, in order. From an IAM user's long-term keys: one MFA session
    /// (cached, shared by every role and chain of that user) and every role assumed from it,
    /// without a code. From any other source: no GetSessionToken (STS refuses it to temporary
    /// keys); each AssumeRole is signed by the step before, and the code goes with the role
    /// whose profile has `mfa_serial`.
    fn roles(&mut self, policy: Policy) -> Result<Credentials> {
        let settings = self.settings;
        let session_key = session_key(settings, settings.session_duration);
        let long_term = match settings.source.long_term() {
            Some(known) => known,
            // Only running it tells; a cached MFA session of it says it gave long-term keys.
            None => {
                (settings.via_session
                    && !policy.refresh
                    && self.cache.is_some_and(|c| {
                        c.read(&session_key)
                            .is_some_and(|s| s.fresh_for(policy.min_remaining))
                    }))
                    || self.base()?.1
            }
        };
        if !(settings.via_session && long_term) {
            let (signer, long_term) = self.base()?;
            return self
                .assume_all(signer, !long_term, Some(settings.code_hop))
                .map_err(|f| f.error);
        }
        let mut policy = policy;
        loop {
            let session = cached(self.cache, policy, &session_key, || {
                self.session(settings.session_duration)
            })?;
            match self.assume_all(Signer::session(&session), true, None) {
                // A cached session STS no longer accepts (revoked, or its keys damaged on
                // disk): get a new one, once.
                Err(f)
                    if f.hop == 0
                        && f.error
                            .downcast_ref::<AwsFailure>()
                            .is_some_and(|e| e.kind == FailureKind::BadSigner)
                        && self.cache.is_some()
                        && !policy.refresh =>
                {
                    crate::terminal::say("STS refused the cached MFA session; getting a new one");
                    policy.refresh = true;
                }
                result => return result.map_err(|f| f.error),
            }
        }
    }

    /// Assumes every role of the chain in order, the first signed by `signer` (`temporary`:
    /// its keys are temporary, so STS caps the role at 1 h), each next by the one before;
    /// `code_hop`: the role whose AssumeRole carries the MFA code.
    fn assume_all(
        &mut self,
        signer: Signer,
        temporary: bool,
        code_hop: Option<usize>,
    ) -> Result<Credentials, HopFailure> {
        let settings = self.settings;
        let role = settings.role.as_ref().expect("a role");
        // The session policies narrow the session being made: the selected role's, last.
        let hops: Vec<(&RoleSettings, Option<u64>, Option<&Scope>)> = settings
            .chain
            .iter()
            .map(|h| (&h.role, None, None))
            .chain([(role, settings.duration, settings.scope.as_ref())])
            .collect();
        let (mut signer, mut temporary) = (signer, temporary);
        let mut last = None;
        for (i, (role, asked, scope)) in hops.into_iter().enumerate() {
            let failed = |error| HopFailure { hop: i, error };
            let duration = chained_duration(role, asked, temporary);
            let sts = Sts::with(settings, signer);
            let creds = if code_hop == Some(i) {
                let serial = device(settings).map_err(failed)?;
                self.with_code(|rt, code| {
                    rt.block_on(sts.assume_role(role, duration, Some((serial, code)), scope))
                })
                .map_err(failed)?
            } else {
                let rt = self.runtime().map_err(failed)?;
                rt.block_on(sts.assume_role(role, duration, None, scope))
                    .map_err(|e| failed(e.into()))?
            };
            signer = Signer::role(&creds, &role.arn);
            temporary = true;
            last = Some(creds);
        }
        Ok(last.expect("a chain has a role"))
    }

    /// Runs an MFA call with a code, asking for the next code when STS refuses one and a
    /// person is there to type it. STS accepts a code once, so a code this machine already
    /// spent is refused here, before the network.
    fn with_code(
        &mut self,
        call: impl Fn(&Runtime, &str) -> Result<Credentials, AwsFailure>,
    ) -> Result<Credentials> {
        let serial = device(self.settings)?;
        let mut note: Option<&str> = None;
        for attempt in 1..=PROMPT_TRIES {
            let code = self.codes.next(serial, note)?;
            let can_retry = self.codes.interactive && attempt < PROMPT_TRIES;
            let spent = self.cache.is_some_and(|c| c.code_was_used(serial, &code));
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
                    CODE_SPENT.store(true, Ordering::Relaxed);
                    if let Some(c) = self.cache {
                        c.record_code(serial, &code);
                    }
                    return Ok(creds);
                }
                Err(f) if f.kind == FailureKind::InvalidCode => {
                    // Accepted a moment ago by a parallel run for another entry?
                    let reused = self.cache.is_some_and(|c| c.code_was_used(serial, &code));
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

/// STS caps a role assumed with temporary credentials (role chaining) at 1 hour and refuses
/// more: a longer duration is asked down to the hour, with one warning, instead of failing.
fn chained_duration(role: &RoleSettings, asked: Option<u64>, temporary: bool) -> Option<u64> {
    match asked {
        Some(d) if temporary && d > CHAINED_ROLE_MAX => {
            crate::terminal::warn(&format!(
                "{} is assumed with temporary credentials (role chaining), which STS limits to {}: asking for {} instead of {}",
                role.arn,
                human_duration(CHAINED_ROLE_MAX),
                human_duration(CHAINED_ROLE_MAX),
                human_duration(d)
            ));
            Some(CHAINED_ROLE_MAX)
        }
        other => other,
    }
}
