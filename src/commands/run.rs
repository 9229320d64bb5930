//! A run: credentials for the resolved settings, handed to the command by exec, printed as
//! shell text (`--print-env`) or as a `credential_process` document, or served to the
//! command from a local endpoint (`--server`), or kept from it behind a signing proxy
//! (`--proxy`); and every run's record in the history, which is why exec mode stays the
//! command's parent while a history is kept (`MFA_EXEC_HISTORY=off` brings the plain exec back).

use std::io::IsTerminal;
use std::process::{ExitCode, ExitStatus};

use anyhow::Result;

use super::{check_stdout, print_stdout};
use crate::cli::RunArgs;
use crate::credentials::{self, cache::Cache};
use crate::exit::{Exit, FAILURE};
use crate::history::{History, Mode, Run};
use crate::output::{child, environment, exec, proxy, server, shell};
use crate::secrets::Credentials;
use crate::settings::endpoints::ProxyTargets;
use crate::settings::request::Output;
use crate::settings::{env::Env, Settings};
use crate::terminal::say;

pub(super) fn run(args: &RunArgs, env: &Env) -> Result<ExitCode> {
    // A mistake in the arguments alone touched nothing: it is not a run worth a record.
    let output = args.output()?;
    let (mode, argv0) = match &output {
        Output::Exec(argv) => (Mode::Exec, argv.first()),
        Output::PrintEnv(_) => (Mode::PrintEnv, None),
        Output::CredentialProcess => (Mode::CredentialProcess, None),
        Output::Server(argv) => (Mode::Server, argv.first()),
        Output::Proxy(argv) => (Mode::Proxy, argv.first()),
    };
    let run = Run::start(mode, argv0.map(|a| a.as_os_str()));
    recorded(env, run, |run, history| {
        let result = credentials_out(args, env, &output, run, history);
        if run.profile.is_none() {
            run.profile = chosen_profile(args.profile.as_deref(), env);
        }
        result
    })
}

/// For the record of a run that failed before its settings were resolved: the profile it
/// would have used, by the one rule (`-p`, AWS_PROFILE, …), when that is a valid name.
pub(super) fn chosen_profile(flag: Option<&str>, env: &Env) -> Option<String> {
    crate::settings::choice::Choice::resolve(flag, env)
        .ok()
        .map(|c| c.name)
}

/// How a run ended: with a status of mfa-exec's, or as its command did.
pub(super) enum Ended {
    Status(u8),
    /// The command's status; in exec mode mfa-exec then ends as the command did (its signal
    /// included), under `--server` with 128 + n.
    Command(ExitStatus, Mode),
}

/// Runs `body` and appends its record to the history (when the user keeps one), whatever the
/// outcome: a failure too, with its status and never its message (which may quote input).
/// The body is handed the same history, read from the environment once.
pub(super) fn recorded(
    env: &Env,
    mut run: Run,
    body: impl FnOnce(&mut Run, Option<&History>) -> Result<Ended>,
) -> Result<ExitCode> {
    let history = env.history();
    let result = body(&mut run, history.as_ref());
    if let Some(history) = &history {
        let (status, signal) = match &result {
            Ok(Ended::Status(status)) => (*status, None),
            Ok(Ended::Command(status, _)) => {
                use std::os::unix::process::ExitStatusExt;
                (child::status_number(*status), status.signal())
            }
            Err(err) => (
                err.downcast_ref::<Exit>().map_or(FAILURE, |e| e.status),
                None,
            ),
        };
        history.record_run(&run.record(status, signal));
    }
    match result? {
        Ended::Status(status) => Ok(ExitCode::from(status)),
        Ended::Command(status, Mode::Exec) => Ok(child::end_as(status)),
        Ended::Command(status, _) => Ok(child::exit_code(status)),
    }
}

/// What the history says a run acted as: the role, or for an MFA session of a user the
/// user's MFA device (the user's ARN itself is known only to STS, and a cache hit asks STS
/// nothing).
pub(super) fn acted_as(settings: &Settings) -> Option<String> {
    match &settings.role {
        Some(role) => Some(role.arn.clone()),
        None => settings.serial.clone(),
    }
}

fn credentials_out(
    args: &RunArgs,
    env: &Env,
    output: &Output,
    run: &mut Run,
    history: Option<&History>,
) -> Result<Ended> {
    if matches!(output, Output::PrintEnv(_) | Output::CredentialProcess) {
        check_stdout()?;
    }
    let files = env.remembered_profile_files()?;
    let settings = Settings::resolve(&args.request(), env, &files)?;
    run.profile = Some(settings.profile.clone());
    run.arn = acted_as(&settings);
    let cache = if settings.cache.enabled {
        Cache::open(env)
    } else {
        None
    };
    // SDKs read the `default` profile's own credentials before the server's.
    let default_credentials = matches!(output, Output::Server(_))
        .then(|| files.default_profile_credentials())
        .flatten();
    // Before the command replaces this process: what the next run can answer without a parse.
    files.remember();
    if let Output::Server(argv) = output {
        let status = server::run(&settings, cache, argv, default_credentials)?;
        // Over the whole run: a renewal that needed a new code counts.
        run.credentials = Some(credentials::how_obtained());
        return Ok(Ended::Command(status, Mode::Server));
    }
    if let Output::Proxy(argv) = &output {
        let profile = files.profile(&settings.profile);
        let targets = ProxyTargets::of(&files, profile, env)?;
        let endpoint_vars: Vec<String> = env
            .names_starting_with("AWS_ENDPOINT_URL_")
            .map(String::from)
            .collect();
        // Each request the command makes goes to the history under this run, as it is answered.
        let sink: proxy::Sink = match history.cloned() {
            Some(history) => {
                let run_id = run.id().to_string();
                Box::new(move |request| history.record_request(&run_id, &request))
            }
            None => Box::new(|_request| {}),
        };
        let status = proxy::run(&settings, cache, argv, targets, &endpoint_vars, sink)?;
        run.credentials = Some(credentials::how_obtained());
        return Ok(Ended::Command(status, Mode::Proxy));
    }
    let (creds, obtained) = credentials::obtain(&settings, cache.as_ref())?;
    run.credentials = Some(credentials::how_obtained());
    let changes = environment::for_credentials(&creds, obtained, &settings);
    match output {
        // No history: mfa-exec becomes the command, as it always did.
        Output::Exec(argv) if history.is_none() => Err(exec::exec(argv, &changes)),
        // Staying its parent, so that its status and duration can be recorded.
        Output::Exec(argv) => {
            let child = child::Child::spawn(argv, &changes)?;
            // The command has them; mfa-exec, waiting, needs them no more.
            drop((changes, creds));
            Ok(Ended::Command(child.wait()?, Mode::Exec))
        }
        Output::PrintEnv(kind) => {
            if std::io::stdout().is_terminal() {
                say("this prints shell code; to load it run: eval \"$(mfa-exec --print-env …)\" (fish: mfa-exec --print-env --shell fish | source)");
            }
            print_stdout(&shell::render(&changes, *kind))?;
            Ok(Ended::Status(0))
        }
        Output::CredentialProcess => {
            print_stdout(&credential_process_json(&creds))?;
            Ok(Ended::Status(0))
        }
        Output::Server(_) | Output::Proxy(_) => unreachable!("handled above"),
    }
}

/// The document an SDK's `credential_process` reads. With `Expiration` the SDK calls us
/// again before it is reached (and the cache answers); without it, it never refreshes.
fn credential_process_json(creds: &Credentials) -> String {
    let doc = serde_json::json!({
        "Version": 1,
        "AccessKeyId": creds.access_key_id,
        "SecretAccessKey": creds.secret_access_key,
        "SessionToken": creds.session_token,
        "Expiration": creds.expiration_rfc3339(),
    });
    format!("{doc}\n")
}
