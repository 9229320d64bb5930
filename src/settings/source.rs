//! Where the keys that sign a profile's MFA call come from:
//! keys in the environment, a profile's keys, keys in the OS keyring, a profile whose
//! credentials the SDK resolves (credential_process, SSO, web identity), or the instance or
//! container, and the roles assumed from it (a chain of any length, as the AWS SDKs walk it).
//! Found exactly once per command, typed, and never parsed back out of a string.

use std::cell::RefCell;
use std::collections::HashMap;

use anyhow::{anyhow, bail, Result};

use super::choice::OUTER_PROFILE_VAR;
use super::env::Env;
use super::keyring::KeyringKeys;
use super::RESOLVING_VAR;
use crate::profile::{FileKind, Profile, ProfileFiles, Secret};
use crate::secrets::StaticKeys;

/// Where the keys that sign the MFA STS call come from.
#[derive(Clone)]
pub(crate) enum Source {
    /// Keys read directly: the environment, or a profile's `aws_access_key_id`.
    Keys {
        origin: KeysOrigin,
        keys: SourceKeys,
    },
    /// A profile's long-term keys in the OS keyring (`mfa-exec keys add`), read only when
    /// an STS call needs them.
    Keyring(KeyringKeys),
    /// A profile's `credential_process`, run through aws-config's provider; whether its keys
    /// are an IAM user's long-term ones is known once it has run. `marker`: the value of
    /// [`RESOLVING_VAR`] it runs with (the outer runs' profiles and this one).
    Process {
        profile: String,
        command: String,
        marker: String,
    },
    /// A profile whose temporary credentials aws-config resolves (SSO, web identity).
    Provider { profile: String, kind: ProviderKind },
    /// `credential_source = Ec2InstanceMetadata`.
    Ec2InstanceMetadata,
    /// `credential_source = EcsContainer`.
    EcsContainer,
}

impl Source {
    /// What identifies the source in a cache key: an access key id, never a secret. Sources
    /// whose key id is only known after running them are identified by profile.
    pub(crate) fn identity(&self) -> String {
        match self {
            Source::Keys { keys, .. } => keys.access_key_id.clone(),
            // The same id as when the keys were in the file: moving them keeps the cache.
            Source::Keyring(k) => k.access_key_id.clone(),
            Source::Process { profile, .. } | Source::Provider { profile, .. } => {
                format!("profile:{profile}")
            }
            Source::Ec2InstanceMetadata => "ec2-instance-metadata".into(),
            Source::EcsContainer => "ecs-container".into(),
        }
    }

    /// The profile the source came from, if any (for `cache clear --profile`).
    pub(crate) fn profile(&self) -> Option<&str> {
        match self {
            Source::Keys {
                origin: KeysOrigin::Profile(profile),
                ..
            } => Some(profile),
            Source::Keyring(k) => Some(&k.profile),
            Source::Process { profile, .. } | Source::Provider { profile, .. } => Some(profile),
            _ => None,
        }
    }

    /// Whether the source gives an IAM user's long-term keys, which alone may call
    /// GetSessionToken; None when only running it tells (credential_process).
    pub(crate) fn long_term(&self) -> Option<bool> {
        match self {
            Source::Keys { keys, .. } => Some(!keys.temporary()),
            Source::Keyring(_) => Some(true),
            Source::Process { .. } => None,
            Source::Provider { .. } | Source::Ec2InstanceMetadata | Source::EcsContainer => {
                Some(false)
            }
        }
    }

    /// How `list` and messages name it: `keys of bob`, `SSO of dev`, `the EC2 instance's role`.
    pub(crate) fn describe(&self) -> String {
        self.describe_for(None)
    }

    /// Like [`Source::describe`], without naming `own` when the source is that profile's own
    /// (`keys`, not `keys of bob`, on bob's line of `list`).
    pub(crate) fn describe_for(&self, own: Option<&str>) -> String {
        let of = |what: &str, profile: &str| {
            if own == Some(profile) {
                what.to_string()
            } else {
                format!("{what} of {profile}")
            }
        };
        match self {
            Source::Keys { origin, keys } => {
                let what = if keys.temporary() {
                    "temporary keys"
                } else {
                    "keys"
                };
                match origin {
                    KeysOrigin::Profile(p) => of(what, p),
                    KeysOrigin::Environment => format!("{what} from the environment"),
                }
            }
            Source::Keyring(k) => format!("{} (OS keyring)", of("keys", &k.profile)),
            Source::Process { profile, .. } => of("credential_process", profile),
            Source::Provider { profile, kind } => match kind {
                ProviderKind::Sso => of("SSO", profile),
                ProviderKind::WebIdentity => of("web identity", profile),
            },
            Source::Ec2InstanceMetadata => "the EC2 instance's role".into(),
            Source::EcsContainer => "the container's role".into(),
        }
    }
}

/// Keys read directly: the access key id at once, the secret (and token) when an STS call
/// needs them. A profile answered from the remembered parse (`profile::remembered`) has its
/// secret read from the files only then, so a cache hit never reads them.
#[derive(Clone)]
pub(crate) struct SourceKeys {
    pub(crate) access_key_id: String,
    secret_access_key: Secret,
    session_token: Option<Secret>,
}

impl SourceKeys {
    /// Keys with a session token: temporary ones, which cannot call GetSessionToken.
    pub(crate) fn temporary(&self) -> bool {
        self.session_token.is_some()
    }

    /// The keys whole, to sign with.
    pub(crate) fn load(&self) -> Result<StaticKeys> {
        Ok(StaticKeys {
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.read()?,
            session_token: self.session_token.as_ref().map(Secret::read).transpose()?,
        })
    }
}

/// Where keys read directly come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum KeysOrigin {
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`).
    Environment,
    /// A profile's `aws_access_key_id` and `aws_secret_access_key`.
    Profile(String),
}

impl std::fmt::Display for KeysOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeysOrigin::Environment => f.write_str("environment"),
            KeysOrigin::Profile(name) => write!(f, "profile {name}"),
        }
    }
}

/// The temporary credentials aws-config's profile provider resolves for a profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProviderKind {
    /// `sso_session` or `sso_start_url`.
    Sso,
    /// `web_identity_token_file` with `role_arn`: AssumeRoleWithWebIdentity.
    WebIdentity,
}

/// A profile the user named must exist, in the files or (keys only) in the OS keyring's
/// record; otherwise say why it is not there, as precisely as the files allow.
pub(crate) fn check_named_profile(
    files: &ProfileFiles,
    profile: Profile<'_>,
    env: &Env,
) -> Result<()> {
    let name = profile.name;
    if profile.exists() || KeyringKeys::recorded(env, name)?.is_some() {
        return Ok(());
    }
    if !files.any_file_exists() {
        bail!(
            "profile '{name}' does not exist: neither {} nor {} exists (nothing is set up yet); create it with `aws configure --profile {name}` and add its mfa_serial",
            files.credentials_path.display(),
            files.config_path.display(),
        );
    }
    if let Some(why) = files.why_missing(name) {
        bail!("profile '{name}' is not usable: {why}");
    }
    bail!(
        "profile '{name}' is not in {} or {}; check the name{}",
        files.config_path.display(),
        files.credentials_path.display(),
        list_hint(files)
    )
}

fn list_hint(files: &ProfileFiles) -> String {
    let names = files.profile_names();
    if names.is_empty() {
        String::new()
    } else {
        format!(" (profiles there: {})", names.join(", "))
    }
}

/// A profile's chain as the AWS SDKs read it (aws-config's `resolve_chain`; its specification,
/// `assume-role-tests.json`, runs as a test): the roles to assume, and where the credentials
/// that start them come from.
pub(crate) struct Chain<'a> {
    /// Every profile visited, the selected one first: where `mfa_serial`, `mfa_process` and
    /// `mfa_exec_session_duration` are looked for, nearest first.
    pub(crate) profiles: Vec<Profile<'a>>,
    /// The profiles whose `role_arn` is assumed, in the order they are assumed: the one nearest
    /// the source first, the selected profile (when it has a role) last.
    pub(crate) roles: Vec<Profile<'a>>,
    /// Where the first credentials come from.
    pub(crate) source: Source,
}

/// Where a chain's walk ended, before the environment and the keyring are consulted.
enum End<'a> {
    /// A profile's own credentials: keys, the keyring, credential_process, SSO, web identity.
    Profile(Profile<'a>),
    /// `credential_source` (of a role profile, or of a base profile, as the SDKs allow).
    Named(Profile<'a>, &'a str),
}

/// Walks from `start` along `source_profile` as the SDKs do: a profile with `role_arn` (and no
/// `web_identity_token_file`) is assumed from its `source_profile` or `credential_source`;
/// after the first profile, complete static keys end the chain even beside a `role_arn`; a
/// profile that names itself is assumed from its own keys; a loop is an error.
///
/// `flag`: the profile was named with `--profile`. As in botocore, environment keys beat
/// AWS_PROFILE but not an explicit `--profile` (for a selected profile without a role).
pub(crate) fn chain<'a>(
    files: &'a ProfileFiles,
    start: Profile<'a>,
    env: &Env,
    flag: bool,
) -> Result<Chain<'a>> {
    chain_with(files, start, env, flag, None)
}

/// The sources of the profiles that chains have ended at so far, by profile name: `list`
/// walks thousands of chains that end at the same few profiles, and a profile's own
/// credentials depend only on the files and the environment, which a command reads once.
#[derive(Default)]
pub(crate) struct Sources(RefCell<HashMap<String, Source>>);

/// [`chain`], with the source of a role's `source_profile` taken from `sources` when an
/// earlier chain ended at the same profile.
pub(crate) fn chain_memoised<'a>(
    files: &'a ProfileFiles,
    start: Profile<'a>,
    env: &Env,
    flag: bool,
    sources: &Sources,
) -> Result<Chain<'a>> {
    chain_with(files, start, env, flag, Some(sources))
}

fn chain_with<'a>(
    files: &'a ProfileFiles,
    start: Profile<'a>,
    env: &Env,
    flag: bool,
    sources: Option<&Sources>,
) -> Result<Chain<'a>> {
    let (profiles, roles, end) = walk(files, start, env)?;
    let source = match end {
        End::Named(profile, value) => named_source(profile.name, value, env)?,
        End::Profile(profile) if roles.is_empty() => own_source(files, profile, env, flag)?,
        // A source profile's credentials, not the selected profile's: the environment's keys
        // do not apply, so the answer is the same for every chain that ends here.
        End::Profile(profile) => match sources {
            None => profile_source(files, profile, env)?,
            Some(Sources(known)) => {
                if let Some(source) = known.borrow().get(profile.name) {
                    return Ok(Chain {
                        profiles,
                        roles,
                        source: source.clone(),
                    });
                }
                let source = profile_source(files, profile, env)?;
                known
                    .borrow_mut()
                    .insert(profile.name.to_string(), source.clone());
                source
            }
        },
    };
    Ok(Chain {
        profiles,
        roles,
        source,
    })
}

/// The profiles visited (the selected one first), the role profiles in the order they are
/// assumed, and where the walk ended; read from the files (and, for a source profile in no
/// file, the OS keyring's record).
fn walk<'a>(
    files: &'a ProfileFiles,
    start: Profile<'a>,
    env: &Env,
) -> Result<(Vec<Profile<'a>>, Vec<Profile<'a>>, End<'a>)> {
    let mut profiles: Vec<Profile<'a>> = Vec::new();
    let mut roles = Vec::new();
    let mut current = start;
    let end = loop {
        if profiles.iter().any(|p| p.name == current.name) {
            let path: Vec<&str> = profiles.iter().map(|p| p.name).collect();
            bail!(
                "source_profile loop: {} -> {}; end the chain at a profile that holds credentials (keys, credential_process, SSO) or a credential_source",
                path.join(" -> "),
                current.name
            );
        }
        profiles.push(current);
        if profiles.len() > 1 && has_static_keys(current) {
            break End::Profile(current);
        }
        let is_role =
            current.get("role_arn").is_some() && current.get("web_identity_token_file").is_none();
        if !is_role {
            break match current.get("credential_source") {
                Some(value) => End::Named(current, value),
                None => End::Profile(current),
            };
        }
        roles.push(current);
        let name = current.name;
        match (
            current.get("source_profile"),
            current.get("credential_source"),
        ) {
            (Some(_), Some(_)) => bail!(
                "profile '{name}' sets both source_profile and credential_source; keep one (the AWS SDKs refuse both)"
            ),
            (None, None) => bail!(
                "profile '{name}' has role_arn but no source_profile or credential_source; add `source_profile = <profile with keys>`"
            ),
            (Some(src), None) if src == name => break End::Profile(current),
            (Some(src), None) => {
                let next = files.profile(src);
                if !next.exists() && KeyringKeys::recorded(env, src)?.is_none() {
                    bail!(
                        "source_profile '{src}' (referenced from '{name}') does not exist: {} has no [profile {src}] and {} no [{src}]; add it, or fix source_profile in [{}]",
                        files.config_path.display(),
                        files.credentials_path.display(),
                        FileKind::Config.section(name)
                    );
                }
                current = next;
            }
            (None, Some(value)) => break End::Named(current, value),
        }
    };
    roles.reverse();
    Ok((profiles, roles, end))
}

/// The profile and its `source_profile`s, nearest first, for keys that may sit on any of them
/// (`mfa_serial`, `mfa_process`).
pub(crate) fn source_chain<'a>(
    files: &'a ProfileFiles,
    start: Profile<'a>,
    env: &Env,
) -> Result<Vec<Profile<'a>>> {
    Ok(walk(files, start, env)?.0)
}

/// Whether [`static_keys`] would find keys, without copying them.
fn has_static_keys(profile: Profile<'_>) -> bool {
    profile.get("aws_access_key_id").is_some() && profile.has("aws_secret_access_key")
}

fn static_keys(profile: Profile<'_>) -> Option<SourceKeys> {
    Some(SourceKeys {
        access_key_id: profile.get("aws_access_key_id")?.to_string(),
        secret_access_key: profile.secret("aws_secret_access_key")?,
        session_token: profile.secret("aws_session_token"),
    })
}

/// Keys in the environment that may sign the STS call. Keys an outer mfa-exec put there are
/// temporary and MFA-derived: never use them as the source of a new MFA call.
fn env_keys(env: &Env) -> Option<SourceKeys> {
    if env.get(OUTER_PROFILE_VAR).is_some() {
        return None;
    }
    let known = |v: &str| Secret::Known(v.to_string());
    Some(SourceKeys {
        access_key_id: env.get("AWS_ACCESS_KEY_ID")?.to_string(),
        secret_access_key: known(env.get("AWS_SECRET_ACCESS_KEY")?),
        session_token: env.get("AWS_SESSION_TOKEN").map(known),
    })
}

/// The source credentials of the profile's chain (see [`chain`]).
pub(crate) fn source(
    files: &ProfileFiles,
    profile: Profile<'_>,
    env: &Env,
    flag: bool,
) -> Result<Source> {
    Ok(chain(files, profile, env, flag)?.source)
}

/// `credential_source = …`.
fn named_source(profile: &str, value: &str, env: &Env) -> Result<Source> {
    match value {
        "Environment" => env_keys(env)
            .map(|keys| Source::Keys {
                origin: KeysOrigin::Environment,
                keys,
            })
            .ok_or_else(|| {
                anyhow!("profile '{profile}' has credential_source = Environment but AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set")
            }),
        "Ec2InstanceMetadata" => Ok(Source::Ec2InstanceMetadata),
        "EcsContainer" => Ok(Source::EcsContainer),
        other => bail!(
            "profile '{profile}' has credential_source = {other}; use Environment, Ec2InstanceMetadata or EcsContainer"
        ),
    }
}

/// The selected profile's own credentials (it has no role): the environment's keys (as for
/// any AWS tool) unless it was named with --profile, then the profile's.
fn own_source(files: &ProfileFiles, profile: Profile<'_>, env: &Env, flag: bool) -> Result<Source> {
    if !flag {
        if let Some(keys) = env_keys(env) {
            return Ok(Source::Keys {
                origin: KeysOrigin::Environment,
                keys,
            });
        }
    }
    profile_source(files, profile, env).map_err(|e| {
        if let Some(outer) = env.get(OUTER_PROFILE_VAR).filter(|_| env.get("AWS_ACCESS_KEY_ID").is_some()) {
            anyhow!(
                "{e}; the keys in the environment are temporary ones from an outer mfa-exec (profile {outer}), which cannot sign a new MFA call: use a profile with long-term keys (-p), or run this outside it (mfa-off)"
            )
        } else if flag || env_keys(env).is_some() {
            e
        } else {
            anyhow!("{e}; AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set either")
        }
    })
}

/// A profile's own credentials, in the AWS SDKs' order: web identity, SSO, `aws login`,
/// credential_process, static keys; then (mfa-exec's own) keys in the OS keyring.
fn profile_source(files: &ProfileFiles, profile: Profile<'_>, env: &Env) -> Result<Source> {
    let name = profile.name;
    let provider = |kind| Source::Provider {
        profile: name.to_string(),
        kind,
    };
    if profile.get("web_identity_token_file").is_some() {
        if profile.get("role_arn").is_none() {
            bail!("profile '{name}' has web_identity_token_file but no role_arn; add `role_arn = <the role the token may assume>` (the AWS SDKs refuse it too)");
        }
        return Ok(provider(ProviderKind::WebIdentity));
    }
    if profile.get("sso_session").is_some() || profile.get("sso_start_url").is_some() {
        return Ok(provider(ProviderKind::Sso));
    }
    if profile.get("login_session").is_some() {
        bail!(
            "profile '{name}' uses login_session (`aws login`), which mfa-exec cannot read (aws-config's credentials-login feature is not built in); use keys, SSO or credential_process = aws configure export-credentials --profile {name} --format process"
        );
    }
    if let Some(command) = profile.get("credential_process") {
        // Profile names only (the SDKs' characters): nothing to quote in the shell.
        let marker: Vec<&str> = env
            .get(RESOLVING_VAR)
            .unwrap_or_default()
            .split(',')
            .filter(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-/.%@:+".contains(c))
            })
            .chain([name])
            .collect();
        let marker = marker.join(",");
        return Ok(Source::Process {
            profile: name.to_string(),
            command: command.to_string(),
            marker,
        });
    }
    if let Some(keys) = static_keys(profile) {
        return Ok(Source::Keys {
            origin: KeysOrigin::Profile(name.to_string()),
            keys,
        });
    }
    let half = |key: &str| profile.has(key);
    if half("aws_access_key_id") || half("aws_secret_access_key") || half("aws_session_token") {
        let missing = if half("aws_access_key_id") {
            "aws_secret_access_key"
        } else {
            "aws_access_key_id"
        };
        bail!(
            "profile '{name}' is missing {missing} (a key needs aws_access_key_id and aws_secret_access_key); add it to [{name}] in {}, or move the keys to the OS keyring with `mfa-exec keys add -p {name}`",
            files.credentials_path.display()
        );
    }
    // Last: keys kept in the OS keyring. Only the local record is read here; the keyring is
    // opened on a cache miss, when the STS call needs the secret.
    if let Some(keys) = KeyringKeys::recorded(env, name)? {
        return Ok(Source::Keyring(keys));
    }
    if !files.any_file_exists() {
        // A first run on this machine: say so rather than list sections of missing files.
        bail!(
            "no source credentials for profile '{name}': neither {} nor {} exists (nothing is set up yet); add your access keys with `aws configure --profile {name}`",
            files.credentials_path.display(),
            files.config_path.display(),
        );
    }
    bail!(
        "no source credentials for profile '{name}': looked for aws_access_key_id in [{name}] of {} and [{}] of {}, for credential_process or SSO, and in the OS keyring; add keys with `mfa-exec keys add -p {name}` (or `aws configure --profile {name}`)",
        files.credentials_path.display(),
        FileKind::Config.section(name),
        files.config_path.display(),
    )
}
