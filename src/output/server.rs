//! `--server`: mfa-exec stays the parent and serves credentials to the command over a local
//! endpoint in the ECS container-credentials format, refreshing them as they near expiry.
//! Starting the command, passing signals on and handing its status back is
//! [`crate::output::child`]'s; this file is the endpoint.
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
//!
//! No other local process can take the endpoint away from the child (any local user can
//! connect to 127.0.0.1): it is one async task per connection on a tokio thread, so slow
//! clients hold no threads; a request head is at most 16 KiB and 64 headers, and must arrive
//! within 5 s; the number of connections that have not shown the token is capped below the
//! file-descriptor limit, and when the cap is reached the oldest of them is dropped, so a flood
//! cannot lock the child out; and the accept loop outlives every error (EMFILE included).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::ffi::OsString;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use subtle::ConstantTimeEq;
use tokio::task::AbortHandle;

use crate::credentials::cache::Cache;
use crate::credentials::{self, Obtained, Renewing};
use crate::output::child::Child;
use crate::output::environment::{self, EnvChanges};
use crate::secrets::Credentials;
use crate::settings::Settings;
use crate::terminal;

/// The one path credentials are served on.
const PATH: &str = "/credentials";
/// A request head (request line and headers) larger than this is refused with 431. The
/// SDKs send a few hundred bytes.
const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;
/// Time for a client to send its request head once connected.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// At most this many connections without the token at once (lower under a low fd limit).
const MAX_STRANGERS: usize = 256;

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

/// Serves the credentials to `argv` until it ends. `default_credentials`: the key by which the
/// `default` profile holds credentials of its own, if it does.
pub(crate) fn run(
    settings: &Settings,
    cache: Option<Cache>,
    argv: &[OsString],
    default_credentials: Option<&str>,
) -> Result<ExitStatus> {
    // Without a cache directory (or with --no-cache) the MFA session is kept in memory, so
    // role renewals still need no code.
    let cache = Some(cache.unwrap_or_else(Cache::in_memory));
    // Credentials first, so a prompt or a mistake comes before the command starts.
    let (creds, obtained) = credentials::obtain(settings, cache.as_ref())?;
    // SDKs read the `default` profile's own credentials *before* container credentials, so
    // the command would silently use those instead of the MFA-backed ones served here. (Exec
    // mode does not have this problem: environment keys come first everywhere.)
    if let Some(key) = default_credentials {
        terminal::warn(&format!(
            "profile 'default' has {key}, which AWS SDKs read before the credential server; the command may not use the MFA credentials (move those to a named profile)"
        ));
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.set_nonblocking(true).map(|_| l))
        .context("cannot listen on 127.0.0.1 for the credential server")?;
    let port = listener
        .local_addr()
        .context("the credential server has no TCP port")?
        .port();
    let token = random_token()?;
    let changes = child_environment(&creds, obtained, settings, port, &token);

    let shared = Arc::new(Shared {
        current: Mutex::new(Renewing::new(settings, cache, creds)),
        token,
        strangers: Mutex::new(Strangers::default()),
        max_strangers: strangers_cap(),
    });
    // One thread runs the endpoint; it ends with the process.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the credential server's runtime")?;
    let listener = {
        let _entered = rt.enter();
        tokio::net::TcpListener::from_std(listener)
            .context("cannot listen on 127.0.0.1 for the credential server")?
    };
    std::thread::spawn(move || rt.block_on(serve(listener, shared)));

    let child = Child::spawn(argv, &changes)?;
    child.wait()
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

/// What every connection task shares.
struct Shared {
    current: Mutex<Renewing>,
    token: String,
    strangers: Mutex<Strangers>,
    max_strangers: usize,
}

/// Connections that have not (yet) shown the token, oldest first, by a running number.
#[derive(Default)]
struct Strangers {
    next: u64,
    open: BTreeMap<u64, AbortHandle>,
}

/// Half the file descriptors left after the process's own, at most [`MAX_STRANGERS`]: the
/// cap is reached (and the oldest stranger dropped) long before accept(2) could fail.
fn strangers_cap() -> usize {
    use nix::sys::resource::{getrlimit, Resource};
    let soft = getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft);
    let spare = soft.saturating_sub(32) / 2;
    usize::try_from(spare)
        .unwrap_or(MAX_STRANGERS)
        .clamp(4, MAX_STRANGERS)
}

/// The accept loop. It never ends: an error (EMFILE under a flood, ECONNABORTED, anything
/// else) is waited out, and the listening socket stays open for the child.
async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let mut warned = false;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                if !warned {
                    terminal::warn(&format!(
                        "the credential server could not accept a connection ({e}); it keeps listening"
                    ));
                    warned = true;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        if !peer.ip().is_loopback() {
            continue; // dropped: only this machine may ask
        }
        if shared.make_room() {
            // Let the dropped connections' tasks end (and close their sockets) now, not
            // after a burst of accepts has used up the descriptors.
            tokio::task::yield_now().await;
        }
        let mut strangers = shared.strangers.lock().unwrap_or_else(|e| e.into_inner());
        let id = strangers.next;
        strangers.next += 1;
        let conn_shared = shared.clone();
        // On this current-thread runtime the task cannot run (and finish) before it is
        // registered below: the lock is released before the next await.
        let task = tokio::spawn(async move {
            let service_shared = conn_shared.clone();
            let service = hyper::service::service_fn(move |request| {
                answer(request, service_shared.clone(), id)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .max_buf_size(MAX_HEAD.max(8192))
                .max_header_size(MAX_HEAD)
                .max_headers(MAX_HEADERS)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            conn_shared.known(id);
        });
        strangers.open.insert(id, task.abort_handle());
    }
}

impl Shared {
    /// Room for one more stranger: while at the cap, the oldest is dropped. The child's
    /// connections are not strangers once their request head has arrived with the token.
    /// Whether any was dropped.
    fn make_room(&self) -> bool {
        let mut strangers = self.strangers.lock().unwrap_or_else(|e| e.into_inner());
        let mut dropped = false;
        while strangers.open.len() >= self.max_strangers {
            match strangers.open.pop_first() {
                Some((_, oldest)) => {
                    oldest.abort();
                    dropped = true;
                }
                None => break,
            }
        }
        dropped
    }

    /// The connection showed the token, or ended: it is no longer a stranger to drop.
    fn known(&self, id: u64) {
        self.strangers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .open
            .remove(&id);
    }
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

async fn answer(
    request: Request<Incoming>,
    shared: Arc<Shared>,
    id: u64,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let authorized = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .is_some_and(|v| bool::from(v.as_bytes().ct_eq(shared.token.as_bytes())));
    if !authorized {
        return Ok(json_response(
            StatusCode::FORBIDDEN,
            serde_json::json!({"code": "AccessDenied", "message": "missing or wrong authorization token"}),
        ));
    }
    shared.known(id);
    if request.uri().path() != PATH {
        return Ok(json_response(
            StatusCode::NOT_FOUND,
            serde_json::json!({"code": "NotFound", "message": "no such path"}),
        ));
    }
    if request.method() != Method::GET {
        return Ok(json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            serde_json::json!({"code": "MethodNotAllowed", "message": "use GET"}),
        ));
    }
    // A renewal makes blocking STS calls (and may prompt): on a blocking thread, while the
    // endpoint goes on accepting. Requests that arrive meanwhile wait on the lock for its
    // result instead of asking for codes of their own.
    let fresh = tokio::task::spawn_blocking(move || {
        shared
            .current
            .lock()
            .map_err(|_| anyhow!("the credential server failed earlier"))
            .and_then(|mut c| c.fresh())
    })
    .await
    .unwrap_or_else(|_| Err(anyhow!("the credential server failed earlier")));
    Ok(match fresh {
        Ok(creds) => json_response(
            StatusCode::OK,
            serde_json::json!({
                "AccessKeyId": creds.access_key_id,
                "SecretAccessKey": creds.secret_access_key,
                "Token": creds.session_token,
                "Expiration": creds.expiration_rfc3339(),
            }),
        ),
        Err(e) => {
            let message = format!("{e:#}").replace(['\n', '\r'], " ");
            terminal::say(&message);
            json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                serde_json::json!({"code": "CredentialsUnavailable", "message": format!("mfa-exec: {}", terminal::safe(&message))}),
            )
        }
    })
}
