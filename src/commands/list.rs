//! `mfa-exec list`: every profile of the config and credentials files, how it resolves (the
//! whole chain, `role target <- role hub <- keys of bob`), its MFA device and what the cache
//! holds for it. Never a secret: names, ARNs, serials and times. `--json` for scripts. A
//! long-term key older than 90 days (by the date `keys rotate` recorded; no network call) is
//! marked, with the command that rotates it.

use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use super::print_stdout;
use crate::clock::{now, rfc3339};
use crate::credentials::{self, cache::Cache, ListMemo};
use crate::settings::duration::human_duration;
use crate::settings::env::Env;
use crate::settings::key_dates::{age_days, KeyDates, MAX_AGE_DAYS};
use crate::settings::request::Request;
use crate::settings::source::{chain_memoised, Sources};
use crate::settings::Settings;
use crate::terminal::{safe, say};

/// One line of the list.
#[derive(Serialize)]
struct Line {
    profile: String,
    /// `role target <- role hub <- keys of bob`; None when it does not resolve (see `error`).
    resolves: Option<String>,
    /// The profiles whose roles are assumed, the selected one first.
    roles: Vec<String>,
    /// Where the first credentials come from (`keys of bob`, `SSO of dev`).
    source: Option<String>,
    /// Why the profile cannot be used as it is, in mfa-exec's words.
    error: Option<String>,
    /// What narrows its role session and what it carries (`read-only; tags team=x`), from
    /// its mfa_exec_policy*, mfa_exec_read_only, session_tags and source_identity keys.
    scope: Option<String>,
    mfa_serial: Option<String>,
    /// Expiration (RFC 3339) of the cached credentials the command would get, if any.
    credentials_expire: Option<String>,
    /// Expiration of the cached MFA session its roles would be assumed from, if any.
    session_expires: Option<String>,
    /// Age in days of the source's long-term access key, when mfa-exec knows its creation
    /// date (it made the key with `keys rotate`).
    key_age_days: Option<u64>,
    #[serde(skip)]
    credentials_at: Option<u64>,
    #[serde(skip)]
    session_at: Option<u64>,
}

pub(super) fn run(json: bool, env: &Env) -> Result<ExitCode> {
    // Never freed: freeing a hundred thousand profiles' maps one by one would be the last
    // thing the command does, for nothing, as the process ends.
    let files = std::mem::ManuallyDrop::new(env.profile_files()?);
    let names = files.profile_names();
    let cache = Cache::existing(env)
        .ok()
        .flatten()
        .map(Cache::reading_each_entry_once);
    let sources = Sources::default();
    let mut memo = ListMemo::default();
    let dates = KeyDates::load(env);
    let mut times = Written::default();
    // Never freed either, as the files above.
    let lines = std::mem::ManuallyDrop::new(
        names
            .iter()
            .map(|name| {
                line(
                    &files,
                    name,
                    env,
                    cache.as_ref(),
                    &sources,
                    &mut memo,
                    &dates,
                    &mut times,
                )
            })
            .collect::<Vec<Line>>(),
    );
    if json {
        print_stdout(&format!("{}\n", serde_json::to_string_pretty(&*lines)?))?;
        return Ok(ExitCode::SUCCESS);
    }
    if lines.is_empty() {
        say(&format!(
            "no profiles yet: neither {} nor {} has one; create one with `aws configure --profile NAME`",
            files.config_path.display(),
            files.credentials_path.display()
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let width = lines
        .iter()
        .map(|l| l.profile.len())
        .max()
        .unwrap_or(7)
        .max(7);
    let mut lefts = Written::default();
    let mut out = format!(
        "{:<width$}  {:<40}  {:<38}  {:<11}  MFA SESSION\n",
        "PROFILE", "RESOLVES AS", "MFA DEVICE", "CREDENTIALS"
    );
    for l in lines.iter() {
        // Names and ARNs come from files: shown, never replayed.
        cell(&mut out, &safe(&l.profile), width);
        let Some(resolves) = &l.resolves else {
            let error = l.error.as_deref().unwrap_or_default();
            out.push_str("error: ");
            out.push_str(&safe(error));
            out.push('\n');
            continue;
        };
        cell(&mut out, &safe(resolves), 40);
        cell(&mut out, &safe(l.mfa_serial.as_deref().unwrap_or("-")), 38);
        cell(&mut out, &lefts.left(l.credentials_at), 11);
        out.push_str(&lefts.left(l.session_at));
        out.push('\n');
    }
    print_stdout(&out)?;
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::too_many_arguments)]
fn line(
    files: &crate::profile::ProfileFiles,
    name: &str,
    env: &Env,
    cache: Option<&Cache>,
    sources: &Sources,
    memo: &mut ListMemo,
    dates: &KeyDates,
    times: &mut Written,
) -> Line {
    let mut line = Line {
        profile: name.to_string(),
        resolves: None,
        roles: Vec::new(),
        source: None,
        error: None,
        scope: None,
        mfa_serial: None,
        credentials_expire: None,
        session_expires: None,
        key_age_days: None,
        credentials_at: None,
        session_at: None,
    };
    let walked = match chain_memoised(files, files.profile(name), env, true, sources) {
        Ok(walked) => walked,
        Err(e) => {
            line.error = Some(format!("{e:#}"));
            return line;
        }
    };
    line.roles = walked
        .roles
        .iter()
        .rev()
        .map(|p| p.name.to_string())
        .collect();
    line.mfa_serial = walked
        .profiles
        .iter()
        .find_map(|p| p.get("mfa_serial"))
        .map(String::from);
    let mut source = walked.source.describe_for(Some(name));
    if walked.source.long_term() == Some(true) {
        line.key_age_days = dates
            .created(&walked.source.identity())
            .map(|created| age_days(created, now()));
        if let Some(days) = line.key_age_days.filter(|d| *d > MAX_AGE_DAYS) {
            let holder = walked.source.profile().unwrap_or(name);
            source.push_str(&format!(
                " [key {days} days old: mfa-exec keys rotate -p {holder}]"
            ));
        }
    }
    let mut parts: Vec<String> = line.roles.iter().map(|r| format!("role {r}")).collect();
    parts.push(source.clone());
    line.resolves = Some(parts.join(" <- "));
    line.source = Some(source);

    // What a run of this profile would find in the cache: the same keys as a run computes,
    // from the chain walked above (once a profile).
    let request = Request::for_profile(name);
    match Settings::from_chain(&request, env, files, files.profile(name), walked) {
        Ok(settings) => {
            line.scope = credentials::describe_scope(&settings);
            if let (Some(scope), Some(resolves)) = (&line.scope, &mut line.resolves) {
                // `role target [read-only] <- keys of bob`: the scope is the first role's.
                match resolves.split_once(" <- ") {
                    Some((first, rest)) => *resolves = format!("{first} [{scope}] <- {rest}"),
                    None => resolves.push_str(&format!(" [{scope}]")),
                }
            }
            if let Some(cache) = cache {
                let (own, session) = credentials::cached_expirations(&settings, cache, memo);
                line.credentials_at = own.filter(|&e| e > now());
                line.session_at = session.filter(|&e| e > now());
                line.credentials_expire = line.credentials_at.map(|at| times.rfc3339(at));
                line.session_expires = line.session_at.map(|at| times.rfc3339(at));
            }
        }
        Err(e) => line.error = Some(format!("{e:#}")),
    }
    line
}

/// Appends `text` left-aligned in `width` characters and the two spaces between columns, as
/// `{:<width$}  ` would, without a format for each of thousands of lines.
fn cell(out: &mut String, text: &str, width: usize) {
    out.push_str(text);
    let pad = width.saturating_sub(text.chars().count()) + 2;
    out.extend(std::iter::repeat_n(' ', pad));
}

/// Texts already written for a time: the roles of one source share its MFA session's
/// expiration, written once, not once a profile.
#[derive(Default)]
struct Written(Vec<(Option<u64>, String)>);

impl Written {
    /// The expiration `at` in RFC 3339.
    fn rfc3339(&mut self, at: u64) -> String {
        self.get(Some(at), |at| rfc3339(at.unwrap_or_default()))
    }

    /// The time left until `at`, `-` for none.
    fn left(&mut self, at: Option<u64>) -> String {
        self.get(at, left)
    }

    /// `write(at)`, or what it wrote for the same time before (of the last few).
    fn get(&mut self, at: Option<u64>, write: fn(Option<u64>) -> String) -> String {
        if let Some((_, text)) = self.0.iter().find(|(k, _)| *k == at) {
            return text.clone();
        }
        let text = write(at);
        if self.0.len() == 16 {
            self.0.clear();
        }
        self.0.push((at, text.clone()));
        text
    }
}

/// Time left until an expiration (unix seconds), `-` for none.
fn left(expires: Option<u64>) -> String {
    match expires {
        Some(at) => format!(
            "{} left",
            human_duration(at.saturating_sub(now()) / 60 * 60)
        ),
        None => "-".into(),
    }
}
