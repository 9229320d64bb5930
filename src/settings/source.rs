//! Which profile a command is about, and where the keys that sign its MFA call come from:
//! keys in the environment, a profile's keys, keys in the OS keyring, a profile whose
//! credentials the SDK resolves (credential_process, SSO), or the instance or container.
//! Found exactly once per command, typed, and never parsed back out of a string.

use anyhow::{anyhow, bail, Result};

use super::env::Env;
use crate::credentials::keyring::KeyringKeys;
use crate::credentials::types::StaticKeys;
use crate::profile::{Profile, ProfileFiles};

/// Where the keys that sign the MFA STS call come from.
#[derive(Clone)]
pub(crate) enum Source {
    /// Keys read directly: the environment, or a profile's `aws_access_key_id`.
    Keys { origin: String, keys: StaticKeys },
    /// A profile's long-term keys in the OS keyring (`mfa-exec keys add`), read only when
    /// an STS call needs them.
    Keyring(KeyringKeys),
    /// A profile whose credentials aws-config resolves (credential_process, SSO, a role).
    Provider { profile: String },
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
            Source::Provider { profile } => format!("profile:{profile}"),
            Source::Ec2InstanceMetadata => "ec2-instance-metadata".into(),
            Source::EcsContainer => "ecs-container".into(),
        }
    }

    /// The profile the source came from, if any (for `cache clear --profile`).
    pub(crate) fn profile(&self) -> Option<&str> {
        match self {
            Source::Keys { origin, .. } => origin.strip_prefix("profile "),
            Source::Keyring(k) => Some(&k.profile),
            Source::Provider { profile } => Some(profile),
            _ => None,
        }
    }
}

/// The profile a command names: `--profile`, else AWS_PROFILE, else AWS_DEFAULT_PROFILE; `None`
/// when none does (each caller has its own fallback).
pub(crate) fn named_profile(flag: Option<&str>, env: &Env) -> Result<Option<String>> {
    if let Some(name) = flag {
        return Ok(Some(name.to_string()));
    }
    // A profile name that is not text would otherwise be skipped in silence, and the run
    // would use `default`: other credentials than the user asked for.
    for var in ["AWS_PROFILE", "AWS_DEFAULT_PROFILE"] {
        if let Some(name) = env.get(var) {
            return Ok(Some(name.to_string()));
        }
        if env.is_not_text(var) {
            bail!("{var} is not valid UTF-8, so it cannot name a profile; fix {var} or pass --profile");
        }
    }
    Ok(None)
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

pub(crate) fn section_name(profile: &str) -> String {
    if profile == "default" {
        "default".into()
    } else {
        format!("profile {profile}")
    }
}

fn list_hint(files: &ProfileFiles) -> String {
    let names = files.profile_names();
    if names.is_empty() {
        String::new()
    } else {
        format!(" (profiles there: {})", names.join(", "))
    }
}

/// The profile and its `source_profile`s, nearest first, for keys that may sit on either
/// (`mfa_serial`, `mfa_process`). A loop is an error, as in the AWS CLI.
pub(crate) fn source_chain<'a>(
    files: &'a ProfileFiles,
    start: Profile<'a>,
) -> Result<Vec<Profile<'a>>> {
    let mut chain = vec![start];
    let mut current = start;
    while let Some(next) = current.get("source_profile") {
        if next == current.name {
            break; // a profile may name itself when it holds static keys
        }
        if chain.iter().any(|p| p.name == next) {
            let names: Vec<&str> = chain.iter().map(|p| p.name).collect();
            bail!(
                "source_profile loop: {} -> {next}; make one profile hold keys",
                names.join(" -> ")
            );
        }
        let p = files.profile(next);
        if !p.exists() {
            bail!(
                "profile '{}' names source_profile '{next}', which is not in {} or {}",
                current.name,
                files.config_path.display(),
                files.credentials_path.display()
            );
        }
        chain.push(p);
        current = p;
    }
    Ok(chain)
}

fn static_keys(profile: Profile<'_>) -> Option<StaticKeys> {
    Some(StaticKeys {
        access_key_id: profile.get("aws_access_key_id")?.to_string(),
        secret_access_key: profile.get("aws_secret_access_key")?.to_string(),
        session_token: profile.get("aws_session_token").map(String::from),
    })
}

/// Keys in the environment that may sign the STS call. Keys an outer mfa-exec put there are
/// temporary and MFA-derived: never use them as the source of a new MFA call.
fn env_keys(env: &Env) -> Option<StaticKeys> {
    if env.get("MFA_EXEC_PROFILE").is_some() {
        return None;
    }
    Some(StaticKeys {
        access_key_id: env.get("AWS_ACCESS_KEY_ID")?.to_string(),
        secret_access_key: env.get("AWS_SECRET_ACCESS_KEY")?.to_string(),
        session_token: env.get("AWS_SESSION_TOKEN").map(String::from),
    })
}

/// `flag`: the profile was named with `--profile`. As in botocore, environment keys beat
/// AWS_PROFILE but not an explicit `--profile`.
pub(crate) fn source(
    files: &ProfileFiles,
    profile: Profile<'_>,
    env: &Env,
    flag: bool,
) -> Result<Source> {
    let name = profile.name;
    if profile.get("role_arn").is_some() {
        match (
            profile.get("source_profile"),
            profile.get("credential_source"),
        ) {
            (Some(_), Some(_)) => bail!(
                "profile '{name}' sets both source_profile and credential_source; keep one"
            ),
            (Some(src), None) if src == name => {
                if let Some(keys) = static_keys(profile) {
                    return Ok(Source::Keys {
                        origin: format!("profile {name}"),
                        keys,
                    });
                }
                return KeyringKeys::recorded(env, name)?
                    .map(Source::Keyring)
                    .ok_or_else(|| {
                        anyhow!("profile '{name}' is its own source_profile but has no aws_access_key_id/aws_secret_access_key (nor keys in the OS keyring)")
                    });
            }
            (Some(src), None) => return profile_source(files, files.profile(src), env),
            (None, Some("Environment")) => {
                return env_keys(env)
                    .map(|keys| Source::Keys {
                        origin: "environment".into(),
                        keys,
                    })
                    .ok_or_else(|| {
                        anyhow!("profile '{name}' has credential_source = Environment but AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set")
                    })
            }
            (None, Some("Ec2InstanceMetadata")) => return Ok(Source::Ec2InstanceMetadata),
            (None, Some("EcsContainer")) => return Ok(Source::EcsContainer),
            (None, Some(other)) => bail!(
                "profile '{name}' has credential_source = {other}; use Environment, Ec2InstanceMetadata or EcsContainer"
            ),
            (None, None) => bail!(
                "profile '{name}' has role_arn but no source_profile or credential_source; add `source_profile = <profile with keys>`"
            ),
        }
    }
    // No role in the profile: the environment's keys (as for any AWS tool) unless a profile
    // was named with --profile, then the profile's own credentials.
    if !flag {
        if let Some(keys) = env_keys(env) {
            return Ok(Source::Keys {
                origin: "environment".into(),
                keys,
            });
        }
    }
    profile_source(files, profile, env).map_err(|e| {
        if let Some(outer) = env.get("MFA_EXEC_PROFILE").filter(|_| env.get("AWS_ACCESS_KEY_ID").is_some()) {
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

fn profile_source(files: &ProfileFiles, profile: Profile<'_>, env: &Env) -> Result<Source> {
    if let Some(keys) = static_keys(profile) {
        return Ok(Source::Keys {
            origin: format!("profile {}", profile.name),
            keys,
        });
    }
    let has_provider = [
        "credential_process",
        "sso_session",
        "sso_start_url",
        "role_arn",
    ]
    .iter()
    .any(|k| profile.get(k).is_some());
    if has_provider {
        return Ok(Source::Provider {
            profile: profile.name.to_string(),
        });
    }
    // Last: keys kept in the OS keyring. Only the local record is read here; the keyring is
    // opened on a cache miss, when the STS call needs the secret.
    if let Some(keys) = KeyringKeys::recorded(env, profile.name)? {
        return Ok(Source::Keyring(keys));
    }
    if !files.any_file_exists() {
        // A first run on this machine: say so rather than list sections of missing files.
        bail!(
            "no source credentials for profile '{}': neither {} nor {} exists (nothing is set up yet); add your access keys with `aws configure --profile {}`",
            profile.name,
            files.credentials_path.display(),
            files.config_path.display(),
            profile.name
        );
    }
    bail!(
        "no source credentials for profile '{}': looked for aws_access_key_id in [{}] of {} and [{}] of {}, for credential_process or SSO, and in the OS keyring; add keys with `mfa-exec keys add -p {}` (or `aws configure --profile {}`)",
        profile.name,
        profile.name,
        files.credentials_path.display(),
        section_name(profile.name),
        files.config_path.display(),
        profile.name,
        profile.name
    )
}
