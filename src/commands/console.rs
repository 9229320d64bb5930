//! `mfa-exec console`: the AWS console, signed in as the profile's role with the credentials a
//! run would get (the cache, one code a day), through the federation endpoint.
//!
//! Only AssumeRole credentials can be federated (the endpoint refuses GetSessionToken's, and
//! GetFederationToken carries no MFA), so a profile without a role is refused before any call.
//! A role assumed from the cached MFA session is role chaining to AWS: the endpoint takes no
//! SessionDuration for it, and the console session follows the role session (at most 1 h).
//! `--duration` therefore assumes the role directly from the long-term keys with a new code and
//! DurationSeconds, and then sends SessionDuration.

use std::process::ExitCode;

use anyhow::{bail, Result};

use super::run::{acted_as, chosen_profile, recorded, Ended};
use super::{check_stdout, print_stdout};
use crate::aws::{new_runtime, signin};
use crate::cli::ConsoleArgs;
use crate::credentials::{self, cache::Cache};
use crate::exit::{Exit, FAILURE};
use crate::history::{Mode, Run};
use crate::output::browser;
use crate::settings::duration::human_duration;
use crate::settings::endpoints::{console_hosts, signin_endpoint, ConsoleHosts};
use crate::settings::{env::Env, Settings, TokenSource};
use crate::terminal::say;

pub(super) fn run(args: &ConsoleArgs, env: &Env) -> Result<ExitCode> {
    recorded(env, Run::start(Mode::Console, None), |run, _history| {
        let result = sign_in(args, env, run);
        if run.profile.is_none() {
            run.profile = chosen_profile(args.profile.as_deref(), env);
        }
        result
    })
}

fn sign_in(args: &ConsoleArgs, env: &Env, run: &mut Run) -> Result<Ended> {
    if args.print_url {
        check_stdout()?;
    }
    let files = env.profile_files()?;
    let settings = Settings::resolve(&args.request(), env, &files)?;
    run.profile = Some(settings.profile.clone());
    run.arn = acted_as(&settings);
    let Some(role) = settings.role.clone() else {
        return Err(Exit {
            status: FAILURE,
            message: format!(
                "profile '{}' has no role, and the console sign-in takes only role credentials (AssumeRole; the federation endpoint refuses GetSessionToken's): use a profile with role_arn (mfa-exec list shows them) or add role_arn to this one",
                settings.profile
            ),
        }
        .into());
    };
    let hosts = console_hosts(&role.arn)?;
    let profile = files.profile(&settings.profile);
    let (endpoint, configured) = signin_endpoint(&files, profile, env, hosts)?;
    let destination = destination(args, &settings, hosts, &endpoint, configured)?;

    let cache = match settings.duration {
        // Without --duration: the role as a run gets it, but without the profile's
        // duration_seconds (the settings leave it out for the console), since a role assumed
        // from the MFA session with DurationSeconds cannot sign in at all; its own cache
        // entry, the shared MFA session.
        None => Cache::open(env),
        Some(d) => {
            if !settings.chain.is_empty() || settings.source.long_term() == Some(false) {
                bail!(
                    "--duration needs role {} assumed directly from an IAM user's long-term keys, and profile '{}' reaches it with temporary credentials (role chaining, at most {}): drop --duration",
                    role.arn,
                    settings.profile,
                    human_duration(crate::settings::duration::CHAINED_ROLE_MAX)
                );
            }
            if matches!(settings.token, TokenSource::Unavailable) {
                bail!("--duration assumes the role directly with a new MFA code, and --no-prompt leaves none: pass -t CODE or --token-command");
            }
            say(&format!(
                "--duration {}: assuming {} directly with a new MFA code (a role assumed from the cached MFA session cannot have a console session longer than its own hour)",
                human_duration(d),
                role.arn
            ));
            // A cached role of this duration may have been assumed from the MFA session.
            None
        }
    };

    let (creds, _) = credentials::obtain(&settings, cache.as_ref())?;
    run.credentials = Some(credentials::how_obtained());
    let token =
        new_runtime()?.block_on(signin::signin_token(&endpoint, &creds, settings.duration))?;
    let url = signin::login_url(&endpoint, &destination, &token);
    if args.print_url {
        print_stdout(&format!("{url}\n"))?;
    } else {
        browser::open(&url, env.get("BROWSER"))?;
        say(&format!(
            "opened the AWS console for {} in the browser",
            role.arn
        ));
    }
    Ok(Ended::Status(0))
}

/// Where the console opens: `--destination` as given (https, or the configured sign-in
/// endpoint's own host), a `--service`'s home, else the console home; in the profile's region.
fn destination(
    args: &ConsoleArgs,
    settings: &Settings,
    hosts: ConsoleHosts,
    endpoint: &str,
    configured: bool,
) -> Result<String> {
    let region = settings
        .region
        .as_deref()
        .map(|r| format!("?region={r}"))
        .unwrap_or_default();
    if let Some(service) = &args.service {
        let valid = !service.is_empty()
            && service.len() <= 64
            && service
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            bail!("--service '{}' is not a console service name: use its short name in lower case, such as s3, ec2 or iam", crate::terminal::safe(service));
        }
        return Ok(format!("{}/{service}/home{region}", hosts.console));
    }
    let Some(url) = &args.destination else {
        return Ok(format!("{}/console/home{region}", hosts.console));
    };
    let host_of = |u: &str| {
        u.parse::<http::Uri>()
            .ok()
            .and_then(|uri| Some((uri.scheme_str()?.to_string(), uri.authority()?.to_string())))
    };
    let ok = match host_of(url) {
        Some((scheme, _)) if scheme == "https" => true,
        Some((_, authority)) if configured => {
            host_of(endpoint).is_some_and(|(_, own)| own == authority)
        }
        _ => false,
    };
    if !ok {
        bail!(
            "--destination '{}' must be an https URL (such as https://console.aws.amazon.com/ec2/home)",
            crate::terminal::safe(url)
        );
    }
    Ok(url.clone())
}
