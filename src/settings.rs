//! Resolved settings: flags, environment and profile files folded once into what a run does.
//!
//! Everything that can be checked without the network is checked here (code format, ARNs,
//! durations, a missing serial, a profile without source credentials), so a mistake costs no
//! STS call and, above all, no MFA code: STS accepts each code only once.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};

use crate::cli::{RunArgs, ShellKind};
use crate::keys::KeyringKeys;
use crate::profile::{Profile, ProfileFiles};

/// GetSessionToken's DurationSeconds range (AWS-FACTS: 900–129600).
pub(crate) const SESSION_DURATION_RANGE: (u64, u64) = (900, 129_600);
/// AssumeRole's DurationSeconds range; the role's own maximum may be lower.
pub(crate) const ROLE_DURATION_RANGE: (u64, u64) = (900, 43_200);
/// STS caps a role assumed with session or role credentials (role chaining) at one hour.
pub(crate) const CHAINED_ROLE_MAX: u64 = 3600;
/// Default lifetime of the MFA session that roles are assumed from.
pub(crate) const DEFAULT_SESSION_DURATION: u64 = 12 * 3600;
const DEFAULT_MIN_REMAINING: u64 = 5 * 60;
/// No STS credentials live longer than GetSessionToken's 36 hours, so a larger margin means
/// nothing (and once wrapped through a signed cast and made expired entries "fresh").
const MAX_MIN_REMAINING: u64 = SESSION_DURATION_RANGE.1;

/// Long-term (or otherwise ready) keys mfa-exec can sign with directly.
#[derive(Clone)]
pub(crate) struct StaticKeys {
    pub(crate) access_key_id: String,
    pub(crate) secret_access_key: String,
    pub(crate) session_token: Option<String>,
}

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

#[derive(Clone, Debug)]
pub(crate) struct RoleSettings {
    pub(crate) arn: String,
    /// Only a configured name: the generated default must not split the cache.
    pub(crate) session_name: Option<String>,
    pub(crate) external_id: Option<String>,
}

#[derive(Clone, Debug)]
pub(crate) enum TokenSource {
    Given(String),
    Command(String),
    Prompt,
    /// `--no-prompt` and no other source: a needed code is an error.
    Unavailable,
}

#[derive(Clone, Debug)]
pub(crate) struct CachePolicy {
    pub(crate) enabled: bool,
    pub(crate) refresh: bool,
    pub(crate) min_remaining: u64,
}

#[derive(Clone, Debug)]
pub(crate) enum Output {
    Exec(Vec<OsString>),
    PrintEnv(ShellKind),
    CredentialProcess,
    Server(Vec<OsString>),
}

#[derive(Clone)]
pub(crate) struct Settings {
    pub(crate) profile: String,
    pub(crate) source: Source,
    pub(crate) serial: String,
    pub(crate) role: Option<RoleSettings>,
    /// DurationSeconds of the credentials handed to the command, when chosen.
    pub(crate) duration: Option<u64>,
    /// DurationSeconds of the MFA session roles are assumed from.
    pub(crate) session_duration: u64,
    /// For a role: get an MFA session first and assume the role from it (one code, many roles).
    pub(crate) via_session: bool,
    pub(crate) region: Option<String>,
    pub(crate) endpoint: Option<String>,
    pub(crate) token: TokenSource,
    /// The code source for refreshes in a long-lived run (`--server`).
    pub(crate) later_token: TokenSource,
    pub(crate) cache: CachePolicy,
    pub(crate) output: Output,
    /// For `--server`: a credential key the `default` profile holds of its own, if any.
    pub(crate) default_profile_credentials: Option<String>,
}

/// The process environment, read once.
pub(crate) struct Env {
    vars: std::collections::HashMap<String, String>,
    /// Names of variables whose values are not UTF-8 (left out of `vars`).
    not_text: Vec<String>,
}

impl Env {
    pub(crate) fn from_process() -> Env {
        let mut vars = std::collections::HashMap::new();
        let mut not_text = Vec::new();
        for (k, v) in std::env::vars_os() {
            match (k.into_string(), v.into_string()) {
                (Ok(k), Ok(v)) => {
                    vars.insert(k, v);
                }
                (Ok(k), Err(_)) => not_text.push(k),
                _ => {}
            }
        }
        Env { vars, not_text }
    }

    /// A non-empty variable.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// HOME, else the user's home directory from the password database (cron, some CI).
    pub(crate) fn home(&self) -> Option<PathBuf> {
        self.get("HOME").map(PathBuf::from).or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.dir)
        })
    }

    fn aws_file(&self, var: &str, default: &str) -> PathBuf {
        match self.get(var) {
            Some(p) => expand_home(p, self.home()),
            None => self
                .home()
                .unwrap_or_else(|| PathBuf::from("/"))
                .join(".aws")
                .join(default),
        }
    }

    pub(crate) fn profile_files(&self) -> Result<ProfileFiles> {
        ProfileFiles::load(
            self.aws_file("AWS_CONFIG_FILE", "config"),
            self.aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
        )
    }
}

fn expand_home(path: &str, home: Option<PathBuf>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(path),
    }
}

impl Settings {
    pub(crate) fn resolve(args: &RunArgs, env: &Env) -> Result<Settings> {
        let output = output(args)?;
        let files = env.profile_files()?;

        // `--profile` > AWS_PROFILE > AWS_DEFAULT_PROFILE > the profile an outer mfa-exec
        // loaded (it removes AWS_PROFILE but leaves MFA_EXEC_PROFILE) > default.
        let named = named_profile(args.profile.as_deref(), env)?;
        let explicit = named.is_some();
        let profile_name = named
            .or_else(|| env.get("MFA_EXEC_PROFILE").map(String::from))
            .unwrap_or_else(|| "default".into());
        let profile = files.profile(&profile_name);
        if explicit {
            check_named_profile(&files, profile, env)?;
        }

        let role_arn = args
            .role_arn
            .clone()
            .or_else(|| profile.get("role_arn").map(String::from));
        let source = source(&files, profile, env, args.profile.is_some())?;
        let chain = source_chain(&files, profile)?;

        let serial = args
            .serial_number
            .clone()
            .or_else(|| chain.iter().find_map(|p| p.get("mfa_serial")).map(String::from))
            .ok_or_else(|| {
                anyhow!(
                    "no MFA device for profile '{profile_name}': add `mfa_serial = arn:aws:iam::<account>:mfa/<device>` \
                     to [{}] in {}, or pass --serial-number",
                    section_name(&profile_name),
                    files.config_path.display()
                )
            })?;
        validate_serial(&serial)?;

        let role = match role_arn {
            Some(arn) => {
                validate_role_arn(&arn)?;
                let session_name = args
                    .role_session_name
                    .clone()
                    .or_else(|| profile.get("role_session_name").map(String::from));
                if let Some(name) = &session_name {
                    validate_session_name(name)?;
                }
                let external_id = args
                    .external_id
                    .clone()
                    .or_else(|| profile.get("external_id").map(String::from));
                if let Some(id) = &external_id {
                    validate_external_id(id)?;
                }
                Some(RoleSettings {
                    arn,
                    session_name,
                    external_id,
                })
            }
            None => {
                if args.role_session_name.is_some() || args.external_id.is_some() {
                    bail!("--role-session-name and --external-id need a role: pass --role-arn or use a profile with role_arn");
                }
                None
            }
        };

        let duration = match (&args.duration, profile.get("duration_seconds")) {
            (Some(d), _) => Some(parse_duration(d, "--duration")?),
            (None, Some(d)) => Some(parse_duration(d, "duration_seconds")?),
            (None, None) => None,
        };
        let (op, (lo, hi)) = match role {
            Some(_) => ("AssumeRole", ROLE_DURATION_RANGE),
            None => ("GetSessionToken", SESSION_DURATION_RANGE),
        };
        if let Some(d) = duration {
            check_range(d, lo, hi, &format!("the duration for {op}"), "--duration")?;
        }

        let session_duration = match (
            &args.session_duration,
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

        // STS caps roles assumed with session credentials at 1 h; a longer role session needs
        // AssumeRole called directly with the MFA code, as in AWS's samples.
        let via_session =
            role.is_some() && !args.no_session && duration.is_none_or(|d| d <= CHAINED_ROLE_MAX);

        // Where codes come from after the first: a code given with -t is spent by then.
        let later_token = if let Some(cmd) = args.token_command.clone().or_else(|| {
            chain
                .iter()
                .find_map(|p| p.get("mfa_process"))
                .map(String::from)
        }) {
            TokenSource::Command(cmd)
        } else if args.no_prompt {
            TokenSource::Unavailable
        } else {
            TokenSource::Prompt
        };
        let token = match &args.token_code {
            Some(code) => {
                validate_code(code)?;
                TokenSource::Given(code.clone())
            }
            None => later_token.clone(),
        };

        // AWS_REGION set by an outer mfa-exec for another profile is that profile's region:
        // it must not beat this profile's own `region` (it still beats having none).
        let env_region = env
            .get("AWS_REGION")
            .or_else(|| env.get("AWS_DEFAULT_REGION"))
            .map(String::from);
        let inherited = env
            .get("MFA_EXEC_PROFILE")
            .is_some_and(|outer| outer != profile_name);
        let profile_region = profile.get("region").map(String::from);
        let region = args.region.clone().or(if inherited {
            profile_region.or(env_region)
        } else {
            env_region.or(profile_region)
        });
        if let Some(r) = &region {
            if r.is_empty()
                || !r
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                bail!("region '{r}' is not a region name like us-east-1; fix --region, AWS_REGION or the profile's region");
            }
        }

        let min_remaining = match (&args.min_remaining, env.get("MFA_EXEC_MIN_REMAINING")) {
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

        Ok(Settings {
            endpoint: endpoint(&files, profile, env)?,
            profile: profile_name.clone(),
            source,
            serial,
            role,
            duration,
            session_duration,
            via_session,
            region,
            token,
            later_token,
            cache: CachePolicy {
                enabled: !args.no_cache,
                refresh: args.refresh,
                min_remaining,
            },
            default_profile_credentials: match output {
                Output::Server(_) => default_profile_credentials(&files),
                _ => None,
            },
            output,
        })
    }
}

/// The key by which the `default` profile holds credentials of its own, if it does.
fn default_profile_credentials(files: &ProfileFiles) -> Option<String> {
    let default = files.profile("default");
    [
        "aws_access_key_id",
        "credential_process",
        "sso_session",
        "sso_start_url",
        "role_arn",
        "web_identity_token_file",
    ]
    .into_iter()
    .find(|k| default.get(k).is_some())
    .map(String::from)
}

fn output(args: &RunArgs) -> Result<Output> {
    let command = args.command.clone();
    if args.print_env || args.credential_process {
        if !command.is_empty() {
            bail!("--print-env and --credential-process print credentials and run no command; drop the command after --");
        }
        return Ok(if args.print_env {
            Output::PrintEnv(args.shell.unwrap_or(ShellKind::Sh))
        } else {
            Output::CredentialProcess
        });
    }
    if command.is_empty() {
        bail!("no command to run: put it after --, e.g. `mfa-exec -- aws sts get-caller-identity`, or use --print-env");
    }
    Ok(if args.server {
        Output::Server(command)
    } else {
        Output::Exec(command)
    })
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
        if env.not_text.iter().any(|n| n == var) {
            bail!("{var} is not valid UTF-8, so it cannot name a profile; fix {var} or pass --profile");
        }
    }
    Ok(None)
}

/// A profile the user named must exist, in the files or (keys only) in the OS keyring's
/// record; otherwise say why it is not there, as precisely as the files allow.
fn check_named_profile(files: &ProfileFiles, profile: Profile<'_>, env: &Env) -> Result<()> {
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

fn section_name(profile: &str) -> String {
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
fn source_chain<'a>(files: &'a ProfileFiles, start: Profile<'a>) -> Result<Vec<Profile<'a>>> {
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
fn source(files: &ProfileFiles, profile: Profile<'_>, env: &Env, flag: bool) -> Result<Source> {
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

/// STS endpoint, as every AWS SDK picks it: AWS_ENDPOINT_URL_STS > AWS_ENDPOINT_URL >
/// `[services]` `sts.endpoint_url` > the profile's `endpoint_url`; all off with
/// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true.
fn endpoint(files: &ProfileFiles, profile: Profile<'_>, env: &Env) -> Result<Option<String>> {
    service_endpoint(files, profile, env, "sts")
}

/// A service's configured endpoint (`sts`, `iam`), by the SDKs' precedence (see `endpoint`).
pub(crate) fn service_endpoint(
    files: &ProfileFiles,
    profile: Profile<'_>,
    env: &Env,
    service: &str,
) -> Result<Option<String>> {
    let ignore = env
        .get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .or_else(|| profile.get("ignore_configured_endpoint_urls"))
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if ignore {
        return Ok(None);
    }
    let service_var = format!("AWS_ENDPOINT_URL_{}", service.to_ascii_uppercase());
    let url = env
        .get(&service_var)
        .or_else(|| env.get("AWS_ENDPOINT_URL"))
        .or_else(|| {
            profile
                .get("services")
                .and_then(|s| files.service_property(s, service, "endpoint_url"))
        })
        .or_else(|| profile.get("endpoint_url"));
    match url {
        // A URL the HTTP client cannot use fails only at send time, in a message that
        // prints the whole request: refuse it here, before any code is asked for.
        Some(u)
            if (u.starts_with("http://") || u.starts_with("https://"))
                && u.parse::<http::Uri>().map_or(true, |uri| {
                    uri.host().is_none() || (uri.port().is_some() && uri.port_u16().is_none())
                }) =>
        {
            bail!("endpoint URL '{u}' is not a valid URL (check the host, port and brackets around an IPv6 address); fix AWS_ENDPOINT_URL(_STS) or the profile's endpoint_url")
        }
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => Ok(Some(u.to_string())),
        Some(u) => bail!("endpoint URL '{u}' must start with http:// or https://; fix AWS_ENDPOINT_URL(_{}) or the profile's endpoint_url", service.to_ascii_uppercase()),
        None => Ok(None),
    }
}

/// Seconds, or a humantime duration (`90m`, `12h`, `1h30m`).
pub(crate) fn parse_duration(text: &str, what: &str) -> Result<u64> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(secs);
    }
    humantime::parse_duration(text)
        .map(|d| d.as_secs())
        .map_err(|_| {
            anyhow!(
                "{what} '{text}' is not a duration: use seconds (3600) or a value like 90m or 12h"
            )
        })
}

/// `3600` → `1h`, `5400` → `1h30m`, for messages.
pub(crate) fn human_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

fn check_range(value: u64, lo: u64, hi: u64, what: &str, flag: &str) -> Result<()> {
    if value < lo || value > hi {
        bail!(
            "{what} must be between {} and {} ({lo}–{hi} seconds), not {}; fix {flag} or the profile",
            human_duration(lo),
            human_duration(hi),
            human_duration(value)
        );
    }
    Ok(())
}

pub(crate) fn validate_code(code: &str) -> Result<()> {
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        bail!("the MFA code must be exactly 6 digits (the current code of your MFA device)")
    }
}

const PARTITIONS: [&str; 3] = ["aws", "aws-cn", "aws-us-gov"];

/// `arn:<partition>:iam::<12-digit account>:<kind>/<name>`.
fn iam_arn_parts<'a>(arn: &'a str, kind: &str) -> Option<&'a str> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    if !PARTITIONS.contains(&partition)
        || account.len() != 12
        || !account.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    resource
        .strip_prefix(kind)
        .and_then(|r| r.strip_prefix('/'))
        .filter(|name| !name.is_empty())
}

pub(crate) fn validate_serial(serial: &str) -> Result<()> {
    let charset_ok = serial
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_+=/:,.@-".contains(c));
    let shape_ok = if serial.starts_with("arn:") {
        iam_arn_parts(serial, "mfa").is_some()
    } else {
        true
    };
    if (9..=256).contains(&serial.len()) && charset_ok && shape_ok {
        Ok(())
    } else {
        bail!("MFA serial '{serial}' is not valid: use the device ARN (arn:aws:iam::<account>:mfa/<device>) or a hardware serial like GAHT12345678")
    }
}

fn validate_role_arn(arn: &str) -> Result<()> {
    if (20..=2048).contains(&arn.len()) && iam_arn_parts(arn, "role").is_some() {
        Ok(())
    } else {
        bail!("role ARN '{arn}' is not valid: use arn:aws:iam::<12-digit account>:role/<name>")
    }
}

fn validate_session_name(name: &str) -> Result<()> {
    let ok = (2..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if ok {
        Ok(())
    } else {
        bail!("role session name '{name}' is not valid: 2–64 characters of letters, digits and _+=,.@-")
    }
}

fn validate_external_id(id: &str) -> Result<()> {
    let ok = (2..=1224).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c));
    if ok {
        Ok(())
    } else {
        bail!("external id is not valid: 2–1224 characters of letters, digits and _+=,.@:/-")
    }
}

/// What `device add|list|remove` needs, resolved once. Unlike [`Settings`] it does not require
/// an `mfa_serial`: registering the first device is the point.
pub(crate) struct DeviceSettings {
    pub(crate) profile: String,
    /// The keys that sign for the device's IAM user (for a role profile, its source's).
    pub(crate) source: Source,
    pub(crate) region: Option<String>,
    pub(crate) sts_endpoint: Option<String>,
    pub(crate) iam_endpoint: Option<String>,
    /// The `mfa_serial` the profile uses now and the profile that holds it (itself or one of
    /// its source profiles).
    pub(crate) serial: Option<(String, String)>,
    pub(crate) config_path: PathBuf,
    /// `[profile NAME]` or `[default]`, for messages.
    pub(crate) section: String,
}

impl DeviceSettings {
    pub(crate) fn resolve(flag: Option<&str>, env: &Env) -> Result<DeviceSettings> {
        let files = env.profile_files()?;
        let named = named_profile(flag, env)?;
        let explicit = named.is_some();
        let profile_name = named.unwrap_or_else(|| "default".into());
        let profile = files.profile(&profile_name);
        if explicit {
            check_named_profile(&files, profile, env)?;
        }
        // A device belongs to the user whose keys sign: the profile's source credentials, found
        // exactly as for an MFA call (keys in the environment beat AWS_PROFILE, not `-p`).
        let source = source(&files, profile, env, flag.is_some())?;
        let chain = source_chain(&files, profile)?;
        let serial = chain.iter().find_map(|p| {
            p.get("mfa_serial")
                .map(|s| (s.to_string(), p.name.to_string()))
        });
        let region = env
            .get("AWS_REGION")
            .or_else(|| env.get("AWS_DEFAULT_REGION"))
            .or_else(|| profile.get("region"))
            .map(String::from);
        Ok(DeviceSettings {
            sts_endpoint: service_endpoint(&files, profile, env, "sts")?,
            iam_endpoint: service_endpoint(&files, profile, env, "iam")?,
            section: format!("[{}]", section_name(&profile_name)),
            profile: profile_name,
            source,
            region,
            serial,
            config_path: files.config_path.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_seconds_or_human_units() {
        assert_eq!(parse_duration("3600", "d").unwrap(), 3600);
        assert_eq!(parse_duration("90m", "d").unwrap(), 5400);
        assert_eq!(parse_duration("12h", "d").unwrap(), 43200);
        assert_eq!(parse_duration("1h30m", "d").unwrap(), 5400);
        assert!(parse_duration("soon", "d").is_err());
        assert_eq!(human_duration(5400), "1h30m");
        assert_eq!(human_duration(900), "15m");
    }

    #[test]
    fn codes_are_exactly_six_digits() {
        assert!(validate_code("123456").is_ok());
        for bad in ["12345", "1234567", "12345a", " 123456", ""] {
            assert!(validate_code(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn arns_are_checked_for_shape() {
        assert!(validate_serial("arn:aws:iam::123456789012:mfa/alice").is_ok());
        assert!(validate_serial("GAHT12345678").is_ok());
        assert!(validate_serial("arn:aws:iam::1234:mfa/alice").is_err());
        assert!(validate_serial("arn:aws:iam::123456789012:role/x").is_err());
        assert!(validate_serial("short").is_err());
        assert!(validate_role_arn("arn:aws:iam::123456789012:role/path/x").is_ok());
        assert!(validate_role_arn("arn:aws-cn:iam::123456789012:role/x").is_ok());
        assert!(validate_role_arn("arn:aws:iam::123456789012:user/x").is_err());
        assert!(validate_role_arn("role/x").is_err());
        assert!(validate_session_name("ok-name").is_ok());
        assert!(validate_session_name("bad name").is_err());
        assert!(validate_external_id("partner-ext-id").is_ok());
        assert!(validate_external_id("x").is_err());
    }
}
