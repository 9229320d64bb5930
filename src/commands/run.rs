//! A run: credentials for the resolved settings, handed to the command by exec, printed as
//! shell text (`--print-env`) or as a `credential_process` document, or served to the
//! command from a local endpoint (`--server`), or kept from it behind a signing proxy
//! (`--proxy`).

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Result;

use super::{check_stdout, print_stdout};
use crate::cli::RunArgs;
use crate::credentials::{self, cache::Cache};
use crate::output::{environment, exec, proxy, server, shell};
use crate::secrets::Credentials;
use crate::settings::endpoints::ProxyTargets;
use crate::settings::request::Output;
use crate::settings::{env::Env, Settings};
use crate::terminal::say;

pub(super) fn run(args: &RunArgs, env: &Env) -> Result<ExitCode> {
    let output = args.output()?;
    if matches!(output, Output::PrintEnv(_) | Output::CredentialProcess) {
        check_stdout()?;
    }
    let files = env.remembered_profile_files()?;
    let settings = Settings::resolve(&args.request(), env, &files)?;
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
    if let Output::Server(argv) = &output {
        return server::run(&settings, cache, argv, default_credentials);
    }
    if let Output::Proxy(argv) = &output {
        let profile = files.profile(&settings.profile);
        let targets = ProxyTargets::of(&files, profile, env)?;
        let endpoint_vars: Vec<String> = env
            .names_starting_with("AWS_ENDPOINT_URL_")
            .map(String::from)
            .collect();
        // The history will take these; until it exists nothing is kept.
        let sink: proxy::Sink = Box::new(|_request| {});
        return proxy::run(&settings, cache, argv, targets, &endpoint_vars, sink);
    }
    let (creds, obtained) = credentials::obtain(&settings, cache.as_ref())?;
    let changes = environment::for_credentials(&creds, obtained, &settings);
    match &output {
        Output::Exec(argv) => Err(exec::exec(argv, &changes)),
        Output::PrintEnv(kind) => {
            if std::io::stdout().is_terminal() {
                say("this prints shell code; to load it run: eval \"$(mfa-exec --print-env …)\" (fish: mfa-exec --print-env --shell fish | source)");
            }
            print_stdout(&shell::render(&changes, *kind))?;
            Ok(ExitCode::SUCCESS)
        }
        Output::CredentialProcess => {
            print_stdout(&credential_process_json(&creds))?;
            Ok(ExitCode::SUCCESS)
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
