//! Resolved settings: flags, environment and profile files folded once into what a command
//! does, and never changed afterwards. What a renewal, an MFA session for IAM or a device
//! command needs is resolved by its own constructor from the same rules.
//!
//! Everything that can be checked without the network is checked here (code format, ARNs,
//! durations, a missing serial, a profile without source credentials), so a mistake costs no
//! STS call and, above all, no MFA code: STS accepts each code only once.
//!
//! - `request`: what a command asks for, typed (the cli's only way in);
//! - `choice`: which profile, by one rule for every command, and the one name check;
//! - `env`: the process environment and the paths it decides;
//! - `source`: which keys sign the MFA call (a chain of any length, as the SDKs walk it);
//! - `keyring`: long-term keys kept in the OS keyring, and the local record of them;
//! - `endpoints`: region and endpoint precedence, for every command;
//! - `duration`, `validate`: what users type, checked;
//! - `device`: what `device add|list|remove` need.

pub(crate) mod choice;
pub(crate) mod device;
pub(crate) mod duration;
pub(crate) mod endpoints;
pub(crate) mod env;
pub(crate) mod key_dates;
pub(crate) mod keyring;
pub(crate) mod request;
pub(crate) mod scope;
pub(crate) mod source;
pub(crate) mod validate;

use anyhow::{bail, Context, Result};

use crate::exit::{Exit, FAILURE};
use crate::profile::{FileKind, Profile, ProfileFiles};
use choice::Choice;
use duration::{
    check_range, human_duration, parse_duration, CHAINED_ROLE_MAX, DEFAULT_MIN_REMAINING,
    DEFAULT_SESSION_DURATION, MAX_MIN_REMAINING, ROLE_DURATION_RANGE, SESSION_DURATION_RANGE,
};
use env::Env;
use request::{one_of, CacheRequest, PromptKind, Purpose, Request};
use scope::{Scope, Tagging};
use source::{chain, check_named_profile, Chain, ProviderKind, Source};
use validate::{
    validate_code, validate_external_id, validate_role_arn, validate_serial, validate_session_name,
};

#[derive(Clone, Debug)]
pub(crate) struct RoleSettings {
    pub(crate) arn: String,
    /// Only a configured name: the generated default must not split the cache.
    pub(crate) session_name: Option<String>,
    pub(crate) external_id: Option<String>,
    /// The session tags and source identity sent with this role's AssumeRole: its profile's
    /// (`session_tags`, `transitive_session_tags`, `source_identity`), and for the selected
    /// profile's role the command line's too.
    pub(crate) tagging: Tagging,
}

/// A role assumed on the way to the selected profile's (role chaining): `target -> hub -> keys`
/// assumes `hub` first, with no code when an MFA session signs.
#[derive(Clone, Debug)]
pub(crate) struct Hop {
    pub(crate) profile: String,
    pub(crate) role: RoleSettings,
}

/// The marker mfa-exec gives the credential_process it runs: the profiles whose
/// credential_process is running, outermost first. An mfa-exec that finds its own source among
/// them would run it again, and so on without end.
pub(crate) const RESOLVING_VAR: &str = "MFA_EXEC_RESOLVING";

#[derive(Clone, Debug)]
pub(crate) enum TokenSource {
    Given(String),
    Command(String),
    /// A person is asked: on the terminal, in a dialog, or a YubiKey is.
    Prompt(Prompt),
    /// `--no-prompt` and no other source: a needed code is an error.
    Unavailable,
}

/// How a person is asked for a code. `auto` is settled only when a code is needed (whether
/// `/dev/tty` opens, which dialog program is on PATH), so a cache hit never looks.
#[derive(Clone, Debug)]
pub(crate) struct Prompt {
    pub(crate) kind: PromptKind,
    /// The profile the code is for, named in a dialog's text.
    pub(crate) profile: String,
    /// The YubiKey OATH account: `mfa_ykman_account`, else the MFA serial (aws-vault's way).
    pub(crate) ykman_account: Option<String>,
    /// `YKMAN_OATH_DEVICE_SERIAL`: which YubiKey, when several are plugged in.
    pub(crate) ykman_device: Option<String>,
    /// `DISPLAY` or `WAYLAND_DISPLAY` is set: a desktop dialog can be shown.
    pub(crate) display: bool,
    /// `XDG_CURRENT_DESKTOP` names KDE: kdialog before zenity.
    pub(crate) kde: bool,
    /// `PATH`, where the dialog programs are looked for.
    pub(crate) path: Option<String>,
}

/// The prompt kind: `--prompt` > `MFA_EXEC_PROMPT` > `mfa_prompt` along the source chain.
fn prompt_kind(asked: Option<PromptKind>, env: &Env, profiles: &[Profile]) -> Result<PromptKind> {
    use clap::ValueEnum;
    if let Some(kind) = asked {
        return Ok(kind);
    }
    let (value, from) = match env.get("MFA_EXEC_PROMPT") {
        Some(v) => (v, "MFA_EXEC_PROMPT".to_string()),
        None => match profiles.iter().find_map(|p| p.get("mfa_prompt")) {
            Some(v) => (v, "mfa_prompt".to_string()),
            None => return Ok(PromptKind::Auto),
        },
    };
    PromptKind::from_str(value.trim(), true).map_err(|_| {
        anyhow::anyhow!(
            "{from} = '{}' is not a prompt kind: use {}",
            crate::terminal::safe(value),
            one_of::<PromptKind>()
        )
    })
}

#[derive(Clone, Debug)]
pub(crate) struct CachePolicy {
    pub(crate) enabled: bool,
    /// `--refresh`: the first fetch of the run ignores fresh entries.
    pub(crate) refresh: bool,
    pub(crate) min_remaining: u64,
}

/// How to get the credentials of a command.
#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) profile: String,
    pub(crate) source: Source,
    /// The MFA device; `None` when nothing takes a code (a web identity profile on its own).
    pub(crate) serial: Option<String>,
    /// The selected profile's role (or `--role-arn`): the credentials the command gets.
    pub(crate) role: Option<RoleSettings>,
    /// The roles assumed before `role`, nearest the source first (empty without chaining).
    pub(crate) chain: Vec<Hop>,
    /// The session policies of `role` (never of the roles before it: STS scopes the session
    /// being made), when asked for.
    pub(crate) scope: Option<Scope>,
    /// Without an MFA session: the role whose AssumeRole carries the code (an index into
    /// `chain`, `chain.len()` for `role`), the one whose profile has `mfa_serial`, as the
    /// SDKs send it; the first when none has.
    pub(crate) code_hop: usize,
    /// DurationSeconds of the credentials handed to the command, when chosen.
    pub(crate) duration: Option<u64>,
    /// DurationSeconds of the MFA session roles are assumed from.
    pub(crate) session_duration: u64,
    /// For a role whose source is an IAM user's long-term keys: get an MFA session first and
    /// assume the roles from it (one code, many roles). Any other source signs the first
    /// AssumeRole itself, whatever this says.
    pub(crate) via_session: bool,
    pub(crate) region: Option<String>,
    /// The STS endpoint, when one is configured.
    pub(crate) endpoint: Option<String>,
    /// Where the first code of the run comes from.
    pub(crate) token: TokenSource,
    /// Where codes come from after the first (a long-lived `--server` run's renewals): a code
    /// given with -t is spent by then.
    pub(crate) later_token: TokenSource,
    pub(crate) cache: CachePolicy,
}

impl Settings {
    /// A command's settings, from its request, the environment and the profile files.
    pub(crate) fn resolve(request: &Request, env: &Env, files: &ProfileFiles) -> Result<Settings> {
        let choice = Choice::resolve(request.profile.as_deref(), env)?;
        let profile_name = choice.name.clone();
        let profile = files.profile(&profile_name);
        if choice.named() {
            check_named_profile(files, profile, env)?;
        }

        let walked = chain(files, profile, env, choice.flag())?;
        Settings::from_chain(request, env, files, profile, walked)
    }

    /// The settings of `profile`, selected by `request`, whose chain is already walked
    /// (`list` walks each profile's once and shows it, then resolves from it).
    pub(crate) fn from_chain(
        request: &Request,
        env: &Env,
        files: &ProfileFiles,
        profile: Profile<'_>,
        walked: Chain<'_>,
    ) -> Result<Settings> {
        let profile_name = profile.name.to_string();
        check_resolving(&walked.source, &profile_name, files, env)?;
        // The walk is this run's (or this profile's, in `list`): its source moves in whole.
        let Chain {
            profiles,
            roles,
            source,
        } = walked;
        let profiles = &profiles;

        // The roles on the way: each profile's own role_arn, session name and external id.
        // The MFA session itself (what IAM wants) takes none of them.
        let mut inner: Vec<Hop> = Vec::new();
        let mut role_arn = None;
        if request.purpose != Purpose::MfaSession {
            for p in &roles {
                if p.name == profile.name {
                    role_arn = p.get("role_arn").map(String::from);
                } else {
                    let role = profile_role(*p)
                        .with_context(|| format!("in the chain of profile '{profile_name}'"))?;
                    inner.push(Hop {
                        profile: p.name.to_string(),
                        role,
                    });
                }
            }
            // `--role-arn` replaces the profile's role, or adds one to a profile without.
            if request.role.arn.is_some() {
                role_arn = request.role.arn.clone();
            }
        }
        let role = role(request, profile, role_arn)?;
        let scope = match &role {
            Some(role) => {
                scope::resolve(&request.scope, profile, &role.arn, env.home().as_deref())?
            }
            // The MFA session IAM wants is no role session: nothing of a scope applies.
            None if request.purpose == Purpose::MfaSession => None,
            None => {
                scope::refuse_without_role(&request.scope, profile)?;
                None
            }
        };

        // A web identity profile on its own: AssumeRoleWithWebIdentity takes no MFA code.
        let needs_code = role.is_some()
            || !matches!(
                source,
                Source::Provider {
                    kind: ProviderKind::WebIdentity,
                    ..
                }
            );
        let configured_serial = request.serial.clone().or_else(|| {
            profiles
                .iter()
                .find_map(|p| p.get("mfa_serial"))
                .map(String::from)
        });
        let serial = match configured_serial {
            _ if !needs_code => None,
            Some(serial) => {
                validate_serial(&serial)?;
                Some(serial)
            }
            None => bail!(
                "no MFA device for profile '{profile_name}': add `mfa_serial = arn:aws:iam::<account>:mfa/<device>` \
                 to [{}] in {}, or pass --serial-number",
                FileKind::Config.section(&profile_name),
                files.config_path.display()
            ),
        };
        if role.is_none() && needs_code && source.long_term() == Some(false) {
            bail!(
                "profile '{profile_name}' has no role to assume, and its credentials ({}) are temporary: GetSessionToken, the MFA call without a role, takes only an IAM user's long-term keys; add `role_arn` (a role to assume with the code) to [{}]",
                source.describe(),
                FileKind::Config.section(&profile_name)
            );
        }

        // The code goes with the role of the profile that has mfa_serial (nearest the
        // selected one), as the SDKs send it; else with the first.
        let hop_profiles: Vec<&str> = inner
            .iter()
            .map(|h| h.profile.as_str())
            .chain(role.as_ref().map(|_| profile.name))
            .collect();
        let code_hop = hop_profiles
            .iter()
            .rposition(|name| files.profile(name).get("mfa_serial").is_some())
            .unwrap_or(0);

        let duration = duration(request, profile, role.is_some())?;
        let session_duration = session_duration(request, profiles)?;

        // STS caps roles assumed with session credentials at 1 h; a longer role session needs
        // AssumeRole called directly with the MFA code, as in AWS's samples. A chain's last
        // role is assumed with a role's credentials whichever way, so it takes the session.
        // The console: from the MFA session without a duration, directly with one.
        let via_session = role.is_some()
            && match request.purpose {
                Purpose::Console => duration.is_none(),
                _ => {
                    !request.no_session
                        && (!inner.is_empty() || duration.is_none_or(|d| d <= CHAINED_ROLE_MAX))
                }
            };

        let later_token = if let Some(cmd) = request.code.command.clone().or_else(|| {
            profiles
                .iter()
                .find_map(|p| p.get("mfa_process"))
                .map(String::from)
        }) {
            TokenSource::Command(cmd)
        } else if request.code.no_prompt {
            TokenSource::Unavailable
        } else {
            TokenSource::Prompt(Prompt {
                kind: prompt_kind(request.code.prompt, env, profiles)?,
                profile: profile_name.clone(),
                ykman_account: profiles
                    .iter()
                    .find_map(|p| p.get("mfa_ykman_account"))
                    .map(String::from),
                ykman_device: env.get("YKMAN_OATH_DEVICE_SERIAL").map(String::from),
                display: env.get("DISPLAY").is_some() || env.get("WAYLAND_DISPLAY").is_some(),
                kde: env
                    .get("XDG_CURRENT_DESKTOP")
                    .is_some_and(|d| d.split(':').any(|d| d.eq_ignore_ascii_case("kde"))),
                path: env.get("PATH").map(String::from),
            })
        };
        let token = match &request.code.given {
            Some(code) => {
                validate_code(code)?;
                TokenSource::Given(code.clone())
            }
            None => later_token.clone(),
        };

        let region = endpoints::region(request.region.as_deref(), profile, env)?;
        let cache = cache_policy(&request.cache, env)?;

        Ok(Settings {
            endpoint: endpoints::service_endpoint(files, profile, env, "sts")?,
            profile: profile_name.clone(),
            source,
            serial,
            role,
            chain: inner,
            scope,
            code_hop,
            duration,
            session_duration,
            via_session,
            region,
            token,
            later_token,
            cache,
        })
    }
}

/// An mfa-exec that a credential_process runs, for a profile whose credentials come from that
/// same credential_process, would run it again, and so on without end: stop at once.
fn check_resolving(source: &Source, selected: &str, files: &ProfileFiles, env: &Env) -> Result<()> {
    let Source::Process { profile, .. } = source else {
        return Ok(());
    };
    let running: Vec<&str> = env
        .get(RESOLVING_VAR)
        .map(|v| v.split(',').collect())
        .unwrap_or_default();
    if !running.contains(&profile.as_str()) {
        return Ok(());
    }
    Err(Exit {
        status: FAILURE,
        message: format!(
            "credential_process loop: profile '{selected}' gets its credentials from the credential_process of '{profile}', which runs mfa-exec for '{selected}' again; fix `credential_process` in [{}] of {}: it must not call mfa-exec for a profile whose credentials come from it",
            FileKind::Config.section(profile),
            files.config_path.display()
        ),
    }
    .into())
}

/// A role on the way to the selected profile's, as its own profile configures it.
fn profile_role(profile: Profile<'_>) -> Result<RoleSettings> {
    let arn = profile.get("role_arn").unwrap_or_default().to_string();
    validate_role_arn(&arn)?;
    let session_name = profile.get("role_session_name").map(String::from);
    if let Some(name) = &session_name {
        validate_session_name(name)?;
    }
    let external_id = profile.get("external_id").map(String::from);
    if let Some(id) = &external_id {
        validate_external_id(id)?;
    }
    Ok(RoleSettings {
        arn,
        session_name,
        external_id,
        tagging: scope::tagging(profile, &[], None)?,
    })
}

fn role(
    request: &Request,
    profile: Profile<'_>,
    arn: Option<String>,
) -> Result<Option<RoleSettings>> {
    let asked = &request.role;
    let Some(arn) = arn else {
        if asked.session_name.is_some() || asked.external_id.is_some() {
            bail!("--role-session-name and --external-id need a role: pass --role-arn or use a profile with role_arn");
        }
        return Ok(None);
    };
    validate_role_arn(&arn)?;
    let session_name = asked
        .session_name
        .clone()
        .or_else(|| profile.get("role_session_name").map(String::from));
    if let Some(name) = &session_name {
        validate_session_name(name)?;
    }
    let external_id = asked
        .external_id
        .clone()
        .or_else(|| profile.get("external_id").map(String::from));
    if let Some(id) = &external_id {
        validate_external_id(id)?;
    }
    let tagging = scope::tagging(
        profile,
        &request.scope.tags,
        request.scope.source_identity.as_deref(),
    )?;
    Ok(Some(RoleSettings {
        arn,
        session_name,
        external_id,
        tagging,
    }))
}

/// The lifetime of the credentials handed on, when chosen, checked against the operation's
/// range: `--duration`, else the profile's `duration_seconds` for a run; only `--duration` for
/// the console (a role assumed from the MFA session with DurationSeconds cannot sign in);
/// none for the MFA session IAM wants.
fn duration(request: &Request, profile: Profile<'_>, is_role: bool) -> Result<Option<u64>> {
    let (duration, what) = match request.purpose {
        Purpose::MfaSession => return Ok(None),
        Purpose::Console => match &request.duration {
            Some(d) => (
                parse_duration(d, "--duration")?,
                "the console session".to_string(),
            ),
            None => return Ok(None),
        },
        Purpose::Run => {
            let duration = match (&request.duration, profile.get("duration_seconds")) {
                (Some(d), _) => parse_duration(d, "--duration")?,
                (None, Some(d)) => parse_duration(d, "duration_seconds")?,
                (None, None) => return Ok(None),
            };
            let op = if is_role {
                "AssumeRole"
            } else {
                "GetSessionToken"
            };
            (duration, format!("the duration for {op}"))
        }
    };
    let (lo, hi) = if is_role || request.purpose == Purpose::Console {
        ROLE_DURATION_RANGE
    } else {
        SESSION_DURATION_RANGE
    };
    check_range(duration, lo, hi, &what, "--duration")?;
    Ok(Some(duration))
}

/// The lifetime of the MFA session roles are assumed from (on the profile or a source).
fn session_duration(request: &Request, chain: &[Profile<'_>]) -> Result<u64> {
    let session_duration = match (
        &request.session_duration,
        chain
            .iter()
            .find_map(|p| p.get("mfa_exec_session_duration")),
    ) {
        (Some(d), _) => parse_duration(d, "--session-duration")?,
        (None, Some(d)) => parse_duration(d, "mfa_exec_session_duration")?,
        (None, None) => DEFAULT_SESSION_DURATION,
    };
    let (lo, hi) = SESSION_DURATION_RANGE;
    check_range(
        session_duration,
        lo,
        hi,
        "the MFA session duration",
        "--session-duration",
    )?;
    Ok(session_duration)
}

fn cache_policy(asked: &CacheRequest, env: &Env) -> Result<CachePolicy> {
    let min_remaining = match (&asked.min_remaining, env.get("MFA_EXEC_MIN_REMAINING")) {
        (Some(d), _) => parse_duration(d, "--min-remaining")?,
        (None, Some(d)) => parse_duration(d, "MFA_EXEC_MIN_REMAINING")?,
        (None, None) => DEFAULT_MIN_REMAINING,
    };
    if min_remaining > MAX_MIN_REMAINING {
        bail!(
            "the minimum remaining lifetime must be at most {} (no STS credentials live longer), not {}; fix --min-remaining or MFA_EXEC_MIN_REMAINING",
            human_duration(MAX_MIN_REMAINING),
            human_duration(min_remaining)
        );
    }
    Ok(CachePolicy {
        enabled: !asked.off,
        refresh: asked.refresh,
        min_remaining,
    })
}
