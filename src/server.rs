//! `--server`: mfa-exec stays the parent and serves credentials to the command over a local
//! endpoint in the ECS container-credentials format, refreshing them as they near expiry.
//!
//! Why: a role assumed from an MFA session lasts at most an hour (STS's cap on role chaining),
//! and botocore then fails with "Cannot refresh credentials: MFA token required", leaving a
//! half-applied terraform state. Every AWS SDK re-reads container credentials before they
//! expire, so a long command keeps working: each request is answered from the cache, role
//! credentials are renewed from the cached MFA session with no prompt, and only when the MFA
//! session itself ends does a request need a new code (asked on the terminal).
//!
//! The endpoint listens on 127.0.0.1 at a random port, answers only loopback peers, and wants a
//! random 256-bit token in `Authorization` (compared in constant time); anything else is 403
//! and other paths 404. The child gets `AWS_CONTAINER_CREDENTIALS_FULL_URI` and
//! `AWS_CONTAINER_AUTHORIZATION_TOKEN` and no static keys.

use std::ffi::OsString;
use std::process::{Command, ExitCode, ExitStatus};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Context, Result};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::exfiltrator::origin::WithOrigin;
use signal_hook::iterator::SignalsInfo;
use signal_hook::low_level::siginfo::Cause;
use subtle::ConstantTimeEq;
use tiny_http::{Header, Method, Response, Server};

use crate::cache::Cache;
use crate::credentials::{self, Credentials, Obtained};
use crate::environment::{self, EnvChanges};
use crate::exec;
use crate::settings::Settings;

/// The one path credentials are served on.
const PATH: &str = "/credentials";

/// Variables that would make an SDK read something other than the endpoint: static keys win
/// over container credentials in every SDK, and a relative URI wins over the full one. (The
/// legacy AWS_SECURITY_TOKEN is already removed by exec mode's changes.)
const HIDDEN: [&str; 6] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
];

/// The credentials being served, renewed under the lock when they near expiry.
struct Current {
    settings: Settings,
    cache: Option<Cache>,
    creds: Credentials,
}

impl Current {
    fn fresh(&mut self) -> Result<Credentials> {
        if self.creds.remaining() <= self.settings.cache.min_remaining as i64 {
            // Through the cache: role credentials come from the cached MFA session without a
            // prompt; a new code is asked for only when that session has ended. `--refresh`
            // applied to the first fetch only.
            self.settings.cache.refresh = false;
            self.settings.token = self.settings.later_token.clone();
            let (creds, _) = credentials::obtain(&self.settings, self.cache.as_ref())?;
            self.creds = creds;
        }
        Ok(self.creds.clone())
    }
}

pub(crate) fn run(
    settings: &Settings,
    cache: Option<Cache>,
    argv: &[OsString],
) -> Result<ExitCode> {
    // Without a cache directory (or with --no-cache) the MFA session is kept in memory, so
    // role renewals still need no code.
    let cache = Some(cache.unwrap_or_else(Cache::in_memory));
    // Credentials first, so a prompt or a mistake comes before the command starts.
    let (creds, obtained) = credentials::obtain(settings, cache.as_ref())?;
    // SDKs read the `default` profile's own credentials *before* container credentials, so
    // the command would silently use those instead of the MFA-backed ones served here. (Exec
    // mode does not have this problem: environment keys come first everywhere.)
    if let Some(key) = &settings.default_profile_credentials {
        eprintln!(
            "mfa-exec: warning: profile 'default' has {key}, which AWS SDKs read before the credential server; the command may not use the MFA credentials (move those to a named profile)"
        );
    }
    let server = Server::http("127.0.0.1:0")
        .map_err(|e| anyhow!("cannot listen on 127.0.0.1 for the credential server: {e}"))?;
    let port = server
        .server_addr()
        .to_ip()
        .map(|a| a.port())
        .context("the credential server has no TCP port")?;
    let token = random_token()?;
    let changes = child_environment(&creds, obtained, settings, port, &token);

    let current = Arc::new(Mutex::new(Current {
        settings: settings.clone(),
        cache,
        creds,
    }));
    let server = Arc::new(server);
    {
        let (server, current, token) = (server.clone(), current.clone(), token.clone());
        std::thread::spawn(move || serve(&server, &current, &token));
    }

    // Signals: subscribe before the child exists so none is lost; from here on they are the
    // child's to act on, not the prompt's.
    crate::token::leave_signals_to_the_caller();
    let mut signals = SignalsInfo::<WithOrigin>::new([SIGINT, SIGTERM, SIGHUP])
        .context("cannot set up signal handling")?;
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    exec::apply(&mut cmd, &changes);
    let mut child = cmd.spawn().map_err(|e| exec::cannot_run(&argv[0], &e))?;
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let handle = signals.handle();
    let forwarder = std::thread::spawn(move || {
        for origin in signals.forever() {
            // A signal from the terminal (Ctrl-C, hang-up) reaches the child directly: it
            // is in our process group. Forwarding it too would deliver it twice, and tools
            // like terraform treat a second interrupt as "stop immediately". Signals sent by
            // a process (kill, a supervisor) are for us alone: pass them on.
            if matches!(origin.cause, Cause::Sent(_)) {
                if let Ok(sig) = nix::sys::signal::Signal::try_from(origin.signal) {
                    let _ = nix::sys::signal::kill(pid, sig);
                }
            }
        }
    });
    let status = child.wait().context("cannot wait for the command")?;
    handle.close();
    let _ = forwarder.join();
    server.unblock();
    Ok(exit_code(status))
}

/// The child's status, or 128 + n when it died of signal n (as shells report it).
fn exit_code(status: ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(code as u8),
        (None, Some(sig)) => ExitCode::from((128 + sig) as u8),
        _ => ExitCode::from(crate::exit::FAILURE),
    }
}

/// Exec mode's environment, with the static keys replaced by the endpoint.
fn child_environment(
    creds: &Credentials,
    obtained: Obtained,
    settings: &Settings,
    port: u16,
    token: &str,
) -> EnvChanges {
    let mut env = environment::for_credentials(creds, obtained, settings);
    for name in HIDDEN {
        env.remove(name);
    }
    env.set(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        format!("http://127.0.0.1:{port}{PATH}"),
    );
    env.set("AWS_CONTAINER_AUTHORIZATION_TOKEN", token);
    env
}

/// 32 random bytes as hex: no CR/LF or anything else an SDK might mangle in a header.
fn random_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow!("no randomness for the server token: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn serve(server: &Server, current: &Arc<Mutex<Current>>, token: &str) {
    for request in server.incoming_requests() {
        let current = current.clone();
        let token = token.to_string();
        // One thread a request: a refresh that waits on a prompt holds the lock, and the other
        // requests wait for its result instead of asking for codes of their own.
        std::thread::spawn(move || answer(request, &current, &token));
    }
}

fn json_response(status: u16, body: serde_json::Value) -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_string(body.to_string())
        .with_status_code(status)
        .with_header(Header::from_bytes("Content-Type", "application/json").expect("static header"))
}

fn answer(request: tiny_http::Request, current: &Mutex<Current>, token: &str) {
    let loopback = request.remote_addr().is_some_and(|a| a.ip().is_loopback());
    let authorized = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .is_some_and(|h| bool::from(h.value.as_str().as_bytes().ct_eq(token.as_bytes())));
    let path = request.url().split('?').next().unwrap_or("");
    let response = if !loopback || !authorized {
        json_response(
            403,
            serde_json::json!({"code": "AccessDenied", "message": "missing or wrong authorization token"}),
        )
    } else if path != PATH {
        json_response(
            404,
            serde_json::json!({"code": "NotFound", "message": "no such path"}),
        )
    } else if *request.method() != Method::Get {
        json_response(
            405,
            serde_json::json!({"code": "MethodNotAllowed", "message": "use GET"}),
        )
    } else {
        let fresh = current
            .lock()
            .map_err(|_| anyhow!("the credential server failed earlier"))
            .and_then(|mut c| c.fresh());
        match fresh {
            Ok(creds) => json_response(
                200,
                serde_json::json!({
                    "AccessKeyId": creds.access_key_id,
                    "SecretAccessKey": creds.secret_access_key,
                    "Token": creds.session_token,
                    "Expiration": creds.expiration_rfc3339(),
                }),
            ),
            Err(e) => {
                let message = format!("mfa-exec: {e:#}").replace('\n', " ");
                eprintln!("{message}");
                json_response(
                    500,
                    serde_json::json!({"code": "CredentialsUnavailable", "message": message}),
                )
            }
        }
    };
    let _ = request.respond(response);
}
