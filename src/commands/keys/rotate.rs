//! `mfa-exec keys rotate`: a profile's access key replaced by a new one of the same IAM user,
//! with nothing lost at any kill.
//!
//! IAM's self-management policy allows key management only with MFA, so every IAM call here
//! is signed by the user's MFA session (the cached one, else a code). The order is aws-vault's
//! and the IAM user guide's: create the new key, store it where the old one was, wait until IAM
//! accepts it (it is eventually consistent: a new key can be refused for seconds), and only
//! then delete (or, with `--keep-old`, deactivate) the old one. Each step is first recorded in
//! the [journal](super::journal), and a journal found at the start is finished (or undone)
//! before anything else.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use tokio::runtime::Runtime;

use super::journal::{Journal, Step, Store};
use crate::aws::failure::FailureKind;
use crate::aws::iam::{user_of_arn, Iam};
use crate::aws::{new_runtime, Signer};
use crate::credentials::{self, cache::Cache};
use crate::files;
use crate::profile::edit::{self, Swapped};
use crate::settings::device::DeviceSettings;
use crate::settings::duration::{human_duration, parse_duration};
use crate::settings::endpoints::Place;
use crate::settings::env::Env;
use crate::settings::key_dates::KeyDates;
use crate::settings::keyring::{store, Keyring, Record, Stored};
use crate::settings::request::{CodeRequest, Purpose, Request};
use crate::settings::source::{chain_memoised, KeysOrigin, Source, Sources};
use crate::settings::validate::validate_code;
use crate::settings::Settings;
use crate::terminal::say;

/// How long to wait for IAM to accept a new key (`MFA_EXEC_KEY_WAIT` changes it).
const DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// An undo deletes only a key whose CreateDate is within this of the journal's start: IAM's
/// clock against ours, and a CreateAccessKey retried by the SDK (20 s an attempt). A key made
/// later (by a person, in the console, days after a rotation was killed) is not the rotation's.
const ORPHAN_WINDOW: u64 = 5 * 60;

/// What `keys rotate` was asked.
pub(crate) struct RotateArgs {
    pub(crate) request: Request,
    pub(crate) keep_old: bool,
    pub(crate) code: CodeRequest,
}

/// Where the profile's keys are, as `keys rotate` may rewrite them.
struct Holder {
    /// The profile that holds the keys (the selected one, or its chain's source).
    profile: String,
    store: Store,
    /// The access key id the store holds now.
    key_id: String,
}

/// The MFA session's IAM client and the user it acts for.
struct Session {
    rt: Runtime,
    iam: Iam,
    place: Place,
    user: String,
    user_arn: String,
}

pub(crate) fn rotate(args: RotateArgs, env: &Env) -> Result<()> {
    if let Some(code) = &args.code.given {
        validate_code(code)?;
    }
    let wait = key_wait(env)?;
    // Everything that can be checked here is, before any network call.
    let dev = DeviceSettings::resolve(&args.request, env)?;
    let holder = holder(&dev.source, &dev.profile, env)?;
    let Some((serial, _)) = dev.serial.clone() else {
        bail!(
            "no MFA device for profile '{}': IAM's self-management policy lets a user manage their access keys only with MFA; add mfa_serial to the profile (or register a device with `mfa-exec device add -p {}`)",
            dev.profile, dev.profile
        );
    };
    let cache = Cache::open(env).ok_or_else(|| {
        anyhow!("keys rotate carries the MFA session over in the private cache directory, which cannot be used (see the warning above); fix it and try again")
    })?;
    // The journal's directory: the state directory, which cleaners leave alone.
    let state = Cache::state(env)?;
    // One rotation of the profile at a time, from before its journal is read to the end.
    let _lock = super::journal::lock(state.dir(), &holder.profile)?;
    let journal = Journal::read(&state, Some(&cache), &holder.profile)?;

    // The MFA session, as a run gets it: the cached one, else a code (or one line and no call).
    let session_request = Request {
        profile: args.request.profile.clone(),
        serial: Some(serial),
        code: args.code.clone(),
        purpose: Purpose::MfaSession,
        ..Request::default()
    };
    let settings = Settings::resolve(&session_request, env, &env.profile_files()?)?;
    let (mfa, _) = credentials::obtain(&settings, Some(&cache))?;
    let rt = new_runtime()?;
    let iam = Iam::new(Signer::session(&mfa), &dev.place);
    let user_arn = rt.block_on(iam.caller_arn())?;
    let user = user_of_arn(&user_arn, "the MFA session")
        .map_err(|_| {
            anyhow!(
                "the keys of profile '{}' sign as {user_arn}, not as an IAM user: only an IAM user's access keys can be rotated",
                holder.profile
            )
        })?
        .name;
    let session = Session {
        rt,
        iam,
        place: dev.place.clone(),
        user,
        user_arn,
    };

    if let Some(journal) = journal {
        if journal.user_arn != session.user_arn {
            bail!(
                "an interrupted rotation of profile '{}' was for {}, but its keys now sign as {}: check that user's keys with `aws iam list-access-keys --user-name {}`, then remove the journal in {}",
                holder.profile,
                journal.user_arn,
                session.user_arn,
                journal.user,
                state.dir().display()
            );
        }
        say(&format!(
            "finishing the rotation of profile {}'s access key that was interrupted (it had {})",
            holder.profile,
            match journal.step {
                Step::Intent => "not created a key yet".to_string(),
                Step::Created => format!("created {}", journal.new_key.as_deref().unwrap_or("?")),
                Step::Stored => format!("stored {}", journal.new_key.as_deref().unwrap_or("?")),
                Step::Verified => format!(
                    "checked that {} works",
                    journal.new_key.as_deref().unwrap_or("?")
                ),
            }
        ));
        if journal.step == Step::Intent {
            undo(&session, env, &state, journal)?;
            // Undone: the rotation asked for now starts afresh.
        } else {
            return finish(&session, &cache, &state, env, journal, wait, &dev.profile);
        }
    }
    // The store may have changed while the session was being had (it never should): read it
    // again, so the key deleted at the end is the one the store held.
    let holder = {
        let dev = DeviceSettings::resolve(&args.request, env)?;
        self::holder(&dev.source, &dev.profile, env)?
    };
    start(
        &session,
        &cache,
        &state,
        env,
        &holder,
        args.keep_old,
        wait,
        &dev.profile,
    )
}

/// `MFA_EXEC_KEY_WAIT`: how long to wait for IAM to accept a new key.
fn key_wait(env: &Env) -> Result<Duration> {
    match env.get("MFA_EXEC_KEY_WAIT") {
        None => Ok(DEFAULT_WAIT),
        Some(text) => Ok(Duration::from_secs(parse_duration(
            text,
            "MFA_EXEC_KEY_WAIT",
        )?)),
    }
}

/// Where the keys of the profile's source are kept, if mfa-exec can rewrite them there.
fn holder(source: &Source, selected: &str, env: &Env) -> Result<Holder> {
    match source {
        Source::Keyring(k) => Ok(Holder {
            profile: k.profile.clone(),
            store: Store::Keyring,
            key_id: k.access_key_id.clone(),
        }),
        Source::Keys {
            origin: KeysOrigin::Profile(p),
            keys,
        } => {
            let files = env.profile_files()?;
            if keys.temporary() {
                bail!(
                    "profile '{p}' holds temporary keys (aws_session_token), which expire by themselves: only an IAM user's long-term keys are rotated"
                );
            }
            if files
                .profile(p)
                .get_in_credentials_file("aws_access_key_id")
                != Some(keys.access_key_id.as_str())
            {
                bail!(
                    "the keys of profile '{p}' are in {}, which keys rotate does not rewrite: move them to {} (or to the OS keyring with `mfa-exec keys add -p {p}`) first",
                    files.config_path.display(),
                    files.credentials_path.display()
                );
            }
            Ok(Holder {
                profile: p.clone(),
                store: Store::CredentialsFile,
                key_id: keys.access_key_id.clone(),
            })
        }
        Source::Keys {
            origin: KeysOrigin::Environment,
            ..
        } => bail!(
            "the keys of profile '{selected}' come from the environment (AWS_ACCESS_KEY_ID), which mfa-exec cannot rewrite: rotate the keys where they are kept, or pass the profile that holds them with -p"
        ),
        Source::Process { profile, .. } => bail!(
            "the keys of profile '{selected}' come from the credential_process of profile {profile}, which mfa-exec cannot rewrite: rotate them in the tool that keeps them"
        ),
        other => bail!(
            "profile '{selected}' gets {}, not an IAM user's access keys: there is no key to rotate",
            other.describe()
        ),
    }
}

/// The key id the store holds now.
fn stored_id(env: &Env, journal: &Journal) -> Result<Option<String>> {
    match journal.store {
        Store::Keyring => Ok(Keyring::new(env)?
            .get(&journal.profile)?
            .map(|s| s.access_key_id)),
        Store::CredentialsFile => Ok(env
            .profile_files()?
            .profile(&journal.profile)
            .get_in_credentials_file("aws_access_key_id")
            .map(String::from)),
    }
}

/// A fresh rotation.
#[allow(clippy::too_many_arguments)]
fn start(
    session: &Session,
    cache: &Cache,
    state: &Cache,
    env: &Env,
    holder: &Holder,
    keep_old: bool,
    wait: Duration,
    selected: &str,
) -> Result<()> {
    let keys = session
        .rt
        .block_on(session.iam.access_keys(&session.user))?;
    // IAM has just said when each key was made: `keys list` and `list` can show their ages.
    let dates: Vec<(String, u64)> = keys.iter().map(|k| (k.id.clone(), k.created)).collect();
    if let Err(e) = KeyDates::record_all(env, &dates) {
        crate::terminal::warn(&format!("{e:#} (only the keys' ages are not shown)"));
    }
    if !keys.iter().any(|k| k.id == holder.key_id) {
        bail!(
            "access key {} of profile '{}' is not one of IAM user {}'s keys ({}): it was deleted, or the profile's mfa_serial is another user's; fix the profile's keys first",
            holder.key_id,
            holder.profile,
            session.user,
            keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>().join(", ")
        );
    }
    if let Some(other) = keys.iter().find(|k| k.id != holder.key_id) {
        if keys.len() >= 2 {
            bail!(
                "IAM user {} already has two access keys, IAM's limit: {} ({}, created {}) besides {} of profile {}; delete the one no longer used (aws iam delete-access-key --user-name {} --access-key-id {}) and run `mfa-exec keys rotate -p {}` again",
                session.user,
                other.id,
                if other.active { "active" } else { "inactive" },
                crate::clock::rfc3339(other.created),
                holder.key_id,
                holder.profile,
                session.user,
                other.id,
                holder.profile
            );
        }
    }
    let mut journal = Journal::begin(
        &holder.profile,
        holder.store,
        &session.user,
        &session.user_arn,
        &holder.key_id,
        keys.into_iter().map(|k| k.id).collect(),
        keep_old,
    );
    journal.write(state)?;
    let created = match session
        .rt
        .block_on(session.iam.create_access_key(&session.user))
    {
        Ok(created) => created,
        Err(e) if e.refused => {
            // IAM answered with an error (AccessDenied, LimitExceeded, Throttling): it made no
            // key, and a key that appeared meanwhile is someone else's.
            journal.remove(state)?;
            return Err(anyhow!("{e}; nothing was changed"));
        }
        Err(e) => {
            // A failure after IAM made the key (a lost answer) would leave one behind: look.
            return match undo_quietly(session, env, state, &journal) {
                Ok(()) => Err(anyhow!("{e}; nothing was changed")),
                Err(_) => Err(anyhow!(
                    "{e}; the next `mfa-exec keys rotate -p {}` checks whether IAM made a key anyway and deletes it",
                    holder.profile
                )),
            };
        }
    };
    journal.step = Step::Created;
    journal.new_key = Some(created.id.clone());
    journal.new_secret = Some(created.secret);
    journal.new_created = Some(created.created);
    journal.write(state)?;
    finish(session, cache, state, env, journal, wait, selected)
}

/// Deletes the keys a rotation interrupted before it stored anything may have made (their
/// secrets were never written anywhere), and its journal.
fn undo(session: &Session, env: &Env, state: &Cache, journal: Journal) -> Result<()> {
    let deleted = orphans_deleted(session, env, &journal)?;
    journal.remove(state)?;
    if deleted.is_empty() {
        say("the interrupted rotation had created no key; nothing to undo");
    } else {
        say(&format!(
            "deleted access key {} that the interrupted rotation created but never stored",
            deleted.join(", ")
        ));
    }
    Ok(())
}

fn undo_quietly(session: &Session, env: &Env, state: &Cache, journal: &Journal) -> Result<()> {
    orphans_deleted(session, env, journal)?;
    journal.remove(state)
}

/// Deletes the keys the rotation of `journal` may have made: not in its list of keys before,
/// created within [`ORPHAN_WINDOW`] of its start, and not the key the store holds.
fn orphans_deleted(session: &Session, env: &Env, journal: &Journal) -> Result<Vec<String>> {
    let keys = session
        .rt
        .block_on(session.iam.access_keys(&session.user))?;
    let stored = stored_id(env, journal)?;
    let mut deleted = Vec::new();
    for key in keys.iter().filter(|k| {
        !journal.keys_before.contains(&k.id)
            && stored.as_deref() != Some(k.id.as_str())
            && k.created.abs_diff(journal.started) <= ORPHAN_WINDOW
    }) {
        match session
            .rt
            .block_on(session.iam.delete_access_key(&session.user, &key.id))
        {
            Ok(()) => deleted.push(key.id.clone()),
            Err(e) if e.kind == FailureKind::NoSuchEntity => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(deleted)
}

/// From `created` on: store, wait until the new key works, delete the old one.
fn finish(
    session: &Session,
    cache: &Cache,
    state: &Cache,
    env: &Env,
    mut journal: Journal,
    wait: Duration,
    selected: &str,
) -> Result<()> {
    let new_key = journal
        .new_key
        .clone()
        .ok_or_else(|| anyhow!("the rotation journal of profile '{}' names no new key; remove it from {} and check the keys with `aws iam list-access-keys`", journal.profile, state.dir().display()))?;
    let store_name = match journal.store {
        Store::Keyring => "the OS keyring".to_string(),
        Store::CredentialsFile => env.profile_files()?.credentials_path.display().to_string(),
    };
    if journal.step == Step::Created {
        let now = stored_id(env, &journal)?;
        if now.as_deref() != Some(journal.old_key.as_str()) && now.as_deref() != Some(&new_key) {
            // Someone changed the profile's keys meanwhile: never overwrite them. The new key,
            // which nobody else holds, is deleted again.
            match session
                .rt
                .block_on(session.iam.delete_access_key(&session.user, &new_key))
            {
                Err(e) if e.kind != FailureKind::NoSuchEntity => bail!(
                    "the keys of profile '{}' in {store_name} changed during the rotation (they are now {}), and deleting the new key {new_key} failed ({e}); the next `mfa-exec keys rotate -p {}` tries again",
                    journal.profile,
                    now.as_deref().unwrap_or("gone"),
                    journal.profile
                ),
                _ => {}
            }
            journal.remove(state)?;
            bail!(
                "the keys of profile '{}' in {store_name} changed during the rotation (they are now {}): they were left as they are, and the new key {new_key} was deleted; run `mfa-exec keys rotate -p {}` again to rotate the keys the profile holds now",
                journal.profile,
                now.as_deref().unwrap_or("gone"),
                journal.profile
            );
        }
        let secret = journal.new_secret.clone().unwrap_or_default();
        // The day's MFA session, and the roles from it, keep serving under the new key.
        carry_over(env, cache, &journal.old_key, &new_key, false);
        if let Err(e) = store_new(env, &journal, &new_key, &secret) {
            return Err(e.context(format!(
                "the new access key {new_key} is kept in the rotation journal; the next `mfa-exec keys rotate -p {}` {}",
                journal.profile,
                Step::Created.next()
            )));
        }
        if let Some(created) = journal.new_created {
            if let Err(e) = KeyDates::record(env, &new_key, created) {
                crate::terminal::warn(&format!("{e:#} (only the key's age is not shown)"));
            }
        }
        // The store holds it: the journal keeps no copy of the secret any longer.
        journal.step = Step::Stored;
        journal.new_secret = None;
        journal.write(state)?;
    }
    if journal.step == Step::Stored {
        wait_until_it_works(session, env, &journal, &new_key, wait, selected)?;
        journal.step = Step::Verified;
        journal.write(state)?;
    }
    let old = &journal.old_key;
    let gone = if journal.keep_old {
        session
            .rt
            .block_on(session.iam.deactivate_access_key(&session.user, old))
            .map(|()| "deactivated")
    } else {
        session
            .rt
            .block_on(session.iam.delete_access_key(&session.user, old))
            .map(|()| "deleted")
    };
    let gone = match gone {
        Ok(word) => word,
        // Already gone: a run killed after IAM deleted it, or someone else.
        Err(e) if e.kind == FailureKind::NoSuchEntity => "already gone",
        Err(e) => {
            bail!(
                "{e}; the new key {new_key} is stored and works, and the next `mfa-exec keys rotate -p {}` {}",
                journal.profile,
                Step::Verified.next()
            )
        }
    };
    // The old key's cache entries (copied above, or by the run that was killed) serve nobody
    // now; nor does its date.
    carry_over(env, cache, old, &new_key, true);
    if let Err(e) = KeyDates::forget(env, old) {
        crate::terminal::warn(&format!("{e:#} (only a key's age is kept for nothing)"));
    }
    journal.remove(state)?;
    tidy(env, cache, state);
    say(&format!(
        "rotated the access key of profile {} (IAM user {}): {new_key} is in {store_name} and works; the old key {old} was {gone}",
        journal.profile, journal.user
    ));
    Ok(())
}

/// Puts the new key where the old one was; a store that already holds it is left as it is.
fn store_new(env: &Env, journal: &Journal, new_key: &str, secret: &str) -> Result<()> {
    match journal.store {
        Store::Keyring => {
            if stored_id(env, journal)?.as_deref() == Some(new_key) {
                // Stored before a kill; the record may still name the old key.
                return store(
                    &Keyring::new(env)?,
                    env,
                    &journal.profile,
                    &Keyring::new(env)?
                        .get(&journal.profile)?
                        .ok_or_else(|| anyhow!("the OS keyring lost the new key"))?,
                );
            }
            let stored = Stored {
                access_key_id: new_key.to_string(),
                secret_access_key: secret.to_string(),
            };
            store(&Keyring::new(env)?, env, &journal.profile, &stored)
        }
        Store::CredentialsFile => {
            let path = env.profile_files()?.credentials_path.clone();
            match edit::replace_access_key(&path, &journal.profile, &journal.old_key, new_key, secret)? {
                Swapped::Done {
                    was_mode: Some(mode),
                } => {
                    say(&format!(
                        "{} was readable by others (mode {mode:04o}); it now holds the new secret, and is 0600",
                        path.display()
                    ));
                    Ok(())
                }
                Swapped::Done { was_mode: None } | Swapped::Already => Ok(()),
                Swapped::Other(now) => bail!(
                    "[{}] in {} no longer holds the old key {} (it holds {}): it was changed during the rotation",
                    journal.profile,
                    path.display(),
                    journal.old_key,
                    now.as_deref().unwrap_or("no key")
                ),
            }
        }
    }
}

/// GetCallerIdentity signed by the key as the store now holds it, with backoff, until IAM
/// accepts it and it signs as the same user.
fn wait_until_it_works(
    session: &Session,
    env: &Env,
    journal: &Journal,
    new_key: &str,
    wait: Duration,
    selected: &str,
) -> Result<()> {
    let request = Request::for_profile(selected);
    let dev = DeviceSettings::resolve(&request, env)?;
    let signer = Signer::source(&dev.source, session.place.region.as_deref())?;
    let iam = Iam::new(signer, &session.place);
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_millis(500);
    let mut said = false;
    loop {
        match session.rt.block_on(iam.caller_arn()) {
            Ok(arn) if arn == journal.user_arn => return Ok(()),
            Ok(arn) => bail!(
                "the new key {new_key} signs as {arn}, not as {}; nothing more was changed: check the keys of profile '{}'",
                journal.user_arn,
                journal.profile
            ),
            Err(e) if e.kind == FailureKind::BadSigner && Instant::now() + pause <= deadline => {
                if !said {
                    say(&format!(
                        "waiting for IAM to accept the new key {new_key} (up to {})…",
                        human_duration(wait.as_secs())
                    ));
                    said = true;
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(8));
            }
            Err(e) if e.kind == FailureKind::BadSigner => bail!(
                "IAM has not accepted the new key {new_key} after {} (STS still refuses it): it is stored and the old key {} still works; the next `mfa-exec keys rotate -p {}` {}",
                human_duration(wait.as_secs()),
                journal.old_key,
                journal.profile,
                Step::Stored.next()
            ),
            Err(e) => bail!(
                "{e}; the new key {new_key} is stored and the old key {} still works; the next `mfa-exec keys rotate -p {}` {}",
                journal.old_key,
                journal.profile,
                Step::Stored.next()
            ),
        }
    }
}

/// The cache entries of every profile whose source is the old key, copied under the new key
/// (`drop_old`: and the old key's removed). Every profile is walked, since any role may take
/// its keys from the rotated profile.
fn carry_over(env: &Env, cache: &Cache, old: &str, new: &str, drop_old: bool) {
    let Ok(files) = env.profile_files() else {
        return;
    };
    let mut names = files.profile_names();
    if let Ok(record) = Record::load(env) {
        for p in record.profiles.keys() {
            if !names.contains(p) {
                names.push(p.clone());
            }
        }
    }
    let sources = Sources::default();
    for name in &names {
        let profile = files.profile(name);
        let Ok(walked) = chain_memoised(&files, profile, env, true, &sources) else {
            continue;
        };
        // The store holds the old key before the store write, the new one after it.
        if walked.source.identity() != old && walked.source.identity() != new {
            continue;
        }
        if let Ok(settings) =
            Settings::from_chain(&Request::for_profile(name), env, &files, profile, walked)
        {
            credentials::carry_over(&settings, cache, old, new, drop_old);
        }
    }
}

/// What killed writes may have left beside the files a rotation writes.
fn tidy(env: &Env, cache: &Cache, state: &Cache) {
    cache.tidy();
    state.tidy();
    let mut paths = Vec::new();
    if let Ok(files) = env.profile_files() {
        paths.push(files.credentials_path.clone());
    }
    if let Ok(record) = Record::load(env) {
        paths.push(record.path);
    }
    if let Ok(p) = crate::settings::key_dates::path(env) {
        paths.push(p);
    }
    for path in paths {
        // Best effort: the rotation is done; a leftover goes with the file's next edit.
        let _ = files::locked::tidy(&path);
    }
}
