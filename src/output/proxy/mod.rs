//! `--proxy`: the command gets an access key and secret made for this run alone, which no AWS
//! endpoint knows, and `AWS_ENDPOINT_URL` pointing at a signing proxy mfa-exec serves on
//! 127.0.0.1. Each request's SigV4 signature is checked against the run's secret (anything else
//! is refused in the AWS error shape its SDK parses), signed again with the real credentials
//! (renewed as `--server` renews them) and forwarded to the real endpoint of the service and
//! region in its credential scope; the response streams back. So whatever the command runs (an
//! install script, an agent, a plugin) can use AWS through mfa-exec while it runs, but never
//! holds keys it could copy and use elsewhere.
//!
//! Bodies stream both ways: an S3 body is forwarded as it arrives (its `x-amz-content-sha256`
//! is kept and signed, so S3 checks the hash itself), and an aws-chunked body with chunk
//! signatures is re-signed chunk by chunk (`chunked`), so a large upload costs one chunk of
//! memory. Only the small bodies of the other services, whose signature covers the body's
//! hash, are read whole (up to [`MAX_BUFFERED`]). Starting the command, passing signals on and
//! handing its status back is [`crate::output::child`]'s.

mod chunked;
mod operation;
mod reply;
mod sigv4;

use std::convert::Infallible;
use std::ffi::OsString;
use std::pin::Pin;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, Context, Result};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Bytes, Frame, Incoming};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use sha2::{Digest, Sha256};

use crate::credentials::cache::Cache;
use crate::credentials::{self, Obtained, Renewing};
use crate::output::child::Child;
use crate::output::environment::{self, EnvChanges};
use crate::secrets::Credentials;
use crate::settings::endpoints::{ProxyTargets, Route};
use crate::settings::Settings;
use crate::terminal;
use reply::{Refusal, Shape};
use sigv4::Payload;

/// One request the proxy answered, for the history (no key, token, signature or body in it).
pub(crate) use crate::history::ProxiedRequest;

/// Where each [`ProxiedRequest`] goes (the history, once it exists).
pub(crate) type Sink = Box<dyn FnMut(ProxiedRequest) + Send>;

/// The body of a request or response on either side of the proxy.
type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// Bodies of services other than S3 are read whole to hash them (their signature covers the
/// hash and no `x-amz-content-sha256` carries it); they are API calls of a few KiB.
pub(super) const MAX_BUFFERED: usize = 32 << 20;
/// How many such bodies are read at the same time; others wait their turn.
const MAX_BODIES_BUFFERED: usize = 4;
/// Time for a client to send a request head once connected (or between requests).
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Headers that belong to one connection (RFC 9110 §7.6.1) or to the command's signature; the
/// forwarded request gets its own.
const NOT_FORWARDED: [&str; 14] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
    "host",
    "authorization",
    "x-amz-date",
    "x-amz-security-token",
];

/// The presigned query's own parameters, dropped when the request is signed again in headers.
const PRESIGN_PARAMS: [&str; 7] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
];

/// Variables that would hand the command other credentials than the run's own, or send its
/// requests around the proxy: a token would be sent with the run's keys and refused, container
/// and web-identity credentials are read by SDKs after environment keys but are credentials
/// all the same, and AWS_IGNORE_CONFIGURED_ENDPOINT_URLS would make SDKs ignore the proxy (it
/// is set to false in [`child_environment`]). Per-service `AWS_ENDPOINT_URL_*` variables are removed too (see [`run`]).
const HIDDEN: [&str; 10] = [
    "AWS_SESSION_TOKEN",
    "AWS_CREDENTIAL_EXPIRATION",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
];

/// What every connection task shares.
struct Shared {
    renewing: Mutex<Renewing>,
    /// The run's own key pair, the only one the proxy accepts.
    key_id: String,
    secret: String,
    targets: ProxyTargets,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Body>,
    sink: Mutex<Sink>,
    /// Bodies read whole at once: a local program opening many connections cannot make the
    /// proxy hold more than this many times [`MAX_BUFFERED`].
    buffering: Arc<tokio::sync::Semaphore>,
}

/// Runs `argv` behind the proxy until it ends. `endpoint_vars`: the per-service
/// `AWS_ENDPOINT_URL_*` variables set in mfa-exec's environment, which the command must not
/// inherit (the proxy honours them itself, through `targets`).
pub(crate) fn run(
    settings: &Settings,
    cache: Option<Cache>,
    argv: &[OsString],
    targets: ProxyTargets,
    endpoint_vars: &[String],
    sink: Sink,
) -> Result<ExitStatus> {
    // As --server: without a cache the MFA session is kept in memory for the renewals.
    let cache = Some(cache.unwrap_or_else(Cache::in_memory));
    let (creds, obtained) = credentials::obtain(settings, cache.as_ref())?;
    let (key_id, secret) = run_keys()?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.set_nonblocking(true).map(|_| l))
        .context("cannot listen on 127.0.0.1 for the proxy")?;
    let port = listener
        .local_addr()
        .context("the proxy has no TCP port")?
        .port();
    let changes = child_environment(&key_id, &secret, obtained, settings, port, endpoint_vars);
    let client = https_client()?;
    let shared = Arc::new(Shared {
        renewing: Mutex::new(Renewing::new(settings, cache, creds)),
        key_id,
        secret,
        targets,
        client,
        sink: Mutex::new(sink),
        buffering: Arc::new(tokio::sync::Semaphore::new(MAX_BODIES_BUFFERED)),
    });
    // One thread runs the proxy; it ends with the process, and the port with it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the proxy's runtime")?;
    let listener = {
        let _entered = rt.enter();
        tokio::net::TcpListener::from_std(listener)
            .context("cannot listen on 127.0.0.1 for the proxy")?
    };
    std::thread::spawn(move || rt.block_on(serve(listener, shared)));
    let child = Child::spawn(argv, &changes)?;
    child.wait()
}

/// The key pair of this run: `AKIA` and 16 of the characters AWS key ids use (the SDKs'
/// validators accept it), and a 40-character secret of the base64 alphabet, from the OS's
/// randomness. Neither exists anywhere but in this process and the command's environment.
fn run_keys() -> Result<(String, String)> {
    const ID: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const SECRET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bytes = [0u8; 56];
    getrandom::fill(&mut bytes).map_err(|e| anyhow!("no randomness for the proxy's keys: {e}"))?;
    // 32 and 64 divide 256: every character equally likely.
    let id: String = bytes[..16]
        .iter()
        .map(|b| ID[usize::from(b & 31)] as char)
        .collect();
    let secret: String = bytes[16..]
        .iter()
        .map(|b| SECRET[usize::from(b & 63)] as char)
        .collect();
    Ok((format!("AKIA{id}"), secret))
}

/// Exec mode's environment with the run's keys in place of the real ones, no session token,
/// and the proxy as every service's endpoint.
fn child_environment(
    key_id: &str,
    secret: &str,
    obtained: Obtained,
    settings: &Settings,
    port: u16,
    endpoint_vars: &[String],
) -> EnvChanges {
    // The real credentials never enter the command's environment, not even to be replaced.
    let run_keys = Credentials {
        access_key_id: key_id.to_string(),
        secret_access_key: secret.to_string(),
        session_token: String::new(),
        expiration: 0,
        issued: 0,
    };
    let mut env = environment::for_credentials(&run_keys, obtained, settings);
    for name in HIDDEN
        .iter()
        .copied()
        .chain(endpoint_vars.iter().map(String::as_str))
    {
        env.remove(name);
    }
    env.set("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"));
    // `ignore_configured_endpoint_urls = true` in the command's config profile would make its
    // SDK skip AWS_ENDPOINT_URL and call AWS directly (with keys AWS refuses); the variable
    // beats the config file in every SDK, so it is set, not only removed.
    env.set("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "false");
    env
}

/// The SDK's HTTPS stack (hyper-rustls on ring, the system's roots), http too for a
/// configured http endpoint; a dead endpoint fails in seconds.
fn https_client() -> Result<Client<hyper_rustls::HttpsConnector<HttpConnector>, Body>> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(5)));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(crate::aws::tls_crypto())
        .context("the proxy found no TLS root certificates")?
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// The accept loop; it outlives every error, as the credential server's does.
async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let mut warned = false;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                if !warned {
                    terminal::warn(&format!(
                        "the proxy could not accept a connection ({e}); it keeps listening"
                    ));
                    warned = true;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        if !peer.ip().is_loopback() {
            continue;
        }
        let shared = shared.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |request| answer(request, shared.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Counts the data bytes of a body as they pass, and when it is dropped (finished, or the
/// connection gone) hands its record to the sink.
struct Counted {
    inner: Body,
    count: Arc<AtomicU64>,
    record: Option<Record>,
}

/// A request's record, sent when the response body is done with.
struct Record {
    shared: Arc<Shared>,
    event: ProxiedRequest,
    bytes_in: Arc<AtomicU64>,
    bytes_out: Arc<AtomicU64>,
}

impl Drop for Record {
    fn drop(&mut self) {
        let mut event = self.event.clone();
        event.bytes_in = self.bytes_in.load(Ordering::Relaxed);
        event.bytes_out = self.bytes_out.load(Ordering::Relaxed);
        if let Ok(mut sink) = self.shared.sink.lock() {
            sink(event);
        }
    }
}

impl HttpBody for Counted {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.count.fetch_add(data.len() as u64, Ordering::Relaxed);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => {
                this.record.take();
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

fn counted(inner: Incoming, count: Arc<AtomicU64>, record: Option<Record>) -> Body {
    Counted {
        inner: inner.map_err(|e| Box::new(e) as BoxError).boxed_unsync(),
        count,
        record,
    }
    .boxed_unsync()
}

async fn answer(
    request: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Body>, Infallible> {
    let at = SystemTime::now();
    let (parts, incoming) = request.into_parts();
    let bytes_in = Arc::new(AtomicU64::new(0));
    let bytes_out = Arc::new(AtomicU64::new(0));
    let mut body = Some(counted(incoming, bytes_in.clone(), None));
    let mut event = ProxiedRequest {
        at,
        service: String::new(),
        operation: format!("{} ?", parts.method),
        status: 0,
        bytes_in: 0,
        bytes_out: 0,
        refused: None,
    };
    let refuse = |refusal: Refusal, service: Option<&str>, mut event: ProxiedRequest| {
        let response = reply::refusal(&refusal, Shape::of(service, &parts.headers));
        event.status = response.status().as_u16();
        event.refused = Some(format!("{refusal:?}"));
        event.bytes_in = bytes_in.load(Ordering::Relaxed);
        if let Ok(mut sink) = shared.sink.lock() {
            sink(event);
        }
        Ok(response)
    };
    let content_type = header(&parts.headers, "content-type").unwrap_or("");
    if content_type.starts_with("application/vnd.amazon.eventstream") {
        return refuse(Refusal::EventStream, None, event);
    }
    let sig = match sigv4::parse(&parts) {
        Ok(sig) => sig,
        Err(refusal) => return refuse(refusal, None, event),
    };
    let service = sig.service.clone();
    event.service = service.clone();
    event.operation = operation::name(&parts, &service, None);
    // The key and the time before any body is read: a request that will be refused anyway
    // costs no buffering.
    if let Err(refusal) = sigv4::check_key_and_time(&sig, &shared.key_id, at) {
        return refuse(refusal, Some(&service), event);
    }
    let declared = header(&parts.headers, "x-amz-content-sha256").map(str::to_string);
    // The query protocols (STS, IAM, and any form body) name their operation in the body: it
    // is read whole even when its hash is declared, so `Action=` cannot hide from the check
    // below. Their bodies are a few KiB.
    let query_protocol = service != "s3"
        && (service == "sts"
            || service == "iam"
            || content_type.starts_with("application/x-www-form-urlencoded"));
    // A compressed form would hide its Action from the check; STS and IAM take none (request
    // compression is CloudWatch's PutMetricData's), so it is refused rather than inflated.
    let encoded = header(&parts.headers, "content-encoding")
        .is_some_and(|e| !e.trim().is_empty() && !e.trim().eq_ignore_ascii_case("identity"));
    if encoded && (service == "sts" || service == "iam") {
        return refuse(
            Refusal::malformed("STS and IAM request bodies cannot be Content-Encoded"),
            Some(&service),
            event,
        );
    }
    if query_protocol
        && declared
            .as_deref()
            .is_some_and(|d| d.starts_with("STREAMING-"))
    {
        return refuse(
            Refusal::malformed("aws-chunked bodies are S3's; send this body as it is"),
            Some(&service),
            event,
        );
    }
    // The payload hash the command signed: S3's presigned URLs sign none, a declared hash is
    // the header's (S3 checks the body against it), else the body's own.
    let read = match (&declared, sig.presigned && service == "s3") {
        (_, true) => false,
        (Some(_), false) => query_protocol,
        (None, false) => true,
    };
    let whole = if read {
        let _permit = match shared.buffering.clone().acquire_owned().await {
            Ok(permit) => permit,
            Err(_) => {
                return refuse(
                    Refusal::Unreachable("the proxy is shutting down".into()),
                    Some(&service),
                    event,
                )
            }
        };
        match read_whole(body.take().unwrap_or_else(empty)).await {
            Ok(bytes) => Some(bytes),
            Err(refusal) => return refuse(refusal, Some(&service), event),
        }
    } else {
        None
    };
    let payload_hash = match (&declared, &whole) {
        (Some(d), Some(bytes)) => {
            let computed = sigv4::hex(&Sha256::digest(bytes));
            if d.len() == 64 && !d.eq_ignore_ascii_case(&computed) {
                return refuse(Refusal::HashMismatch, Some(&service), event);
            }
            d.clone()
        }
        (Some(d), None) => d.clone(),
        (None, Some(bytes)) => sigv4::hex(&Sha256::digest(bytes)),
        (None, None) => "UNSIGNED-PAYLOAD".to_string(),
    };
    if let Some(bytes) = &whole {
        event.operation = operation::name(&parts, &service, Some(bytes));
    }
    if let Err(refusal) = sigv4::verify(
        &parts,
        &sig,
        &payload_hash,
        &shared.key_id,
        &shared.secret,
        at,
    ) {
        return refuse(refusal, Some(&service), event);
    }
    if let Some(op) = operation::mints_credentials(&parts, &service, whole.as_deref()) {
        return refuse(
            Refusal::MintsCredentials(format!("{service}:{op}")),
            Some(&service),
            event,
        );
    }
    let chunk_signed = match declared.as_deref() {
        Some("STREAMING-AWS4-HMAC-SHA256-PAYLOAD") => Some(false),
        Some("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER") => Some(true),
        Some(d) if d.starts_with("STREAMING-AWS4-ECDSA") => {
            return refuse(
                Refusal::malformed("SigV4a (ECDSA) chunk signatures are not accepted"),
                Some(&service),
                event,
            )
        }
        _ => None,
    };

    // The real credentials, renewed when near expiry: on a blocking thread, as a renewal may
    // call STS (or ask for a code).
    let renewing = shared.clone();
    let fresh = tokio::task::spawn_blocking(move || {
        renewing
            .renewing
            .lock()
            .map_err(|_| anyhow!("the proxy failed earlier"))
            .and_then(|mut r| r.fresh())
    })
    .await
    .unwrap_or_else(|_| Err(anyhow!("the proxy failed earlier")));
    let creds = match fresh {
        Ok(creds) => creds,
        Err(e) => {
            let message = format!("{e:#}").replace(['\n', '\r'], " ");
            terminal::say(&message);
            return refuse(Refusal::NoCredentials(message), Some(&service), event);
        }
    };

    let route = Route::of(
        &service,
        parts.uri.path(),
        header(&parts.headers, "x-amz-target"),
    );
    let base = match shared.targets.url(&route, &sig.region) {
        Ok(base) => base,
        Err(why) => return refuse(Refusal::UnknownHost(why), Some(&service), event),
    };
    let mut forwarded = match forwarded_head(&parts, &base, sig.presigned) {
        Ok(r) => r,
        Err(refusal) => return refuse(refusal, Some(&service), event),
    };
    let now = SystemTime::now();
    let payload = match (&declared, &whole) {
        (_, Some(bytes)) => Payload::Bytes(bytes),
        (Some(d), None) => Payload::Declared(d),
        (None, None) => Payload::Declared("UNSIGNED-PAYLOAD"),
    };
    let seed = match sigv4::resign(&mut forwarded, &creds, &sig.region, &service, payload, now) {
        Ok(seed) => seed,
        Err(why) => {
            return refuse(
                Refusal::Unreachable(format!("cannot sign the request again: {why}")),
                Some(&service),
                event,
            )
        }
    };
    let chunk_refusal = Arc::new(Mutex::new(None));
    let body = body.take().unwrap_or_else(empty);
    let body: Body = match (whole, chunk_signed) {
        (Some(bytes), _) => http_body_util::Full::new(bytes)
            .map_err(|never| match never {})
            .boxed_unsync(),
        (None, Some(trailer)) => {
            let real_date = header(forwarded.headers(), "x-amz-date")
                .unwrap_or("")
                .to_string();
            chunked::Resigner::new(
                body,
                chunked::Keys {
                    incoming: chunked::Chain::new(&shared.secret, &sig, sig.signature.clone()),
                    outgoing: chunked::Chain::new(
                        &creds.secret_access_key,
                        &sigv4::Signature {
                            amz_date: real_date.clone(),
                            date: real_date.get(..8).unwrap_or("").to_string(),
                            ..sig.clone()
                        },
                        seed,
                    ),
                },
                trailer,
                chunk_refusal.clone(),
            )
            .boxed_unsync()
        }
        (None, None) => body,
    };
    let forwarded = forwarded.map(|()| body);
    let response = match shared.client.request(forwarded).await {
        Ok(response) => response,
        Err(e) => {
            let chunk_refused = chunk_refusal.lock().ok().and_then(|mut r| r.take());
            let refusal = chunk_refused.unwrap_or_else(|| {
                Refusal::Unreachable(format!("cannot reach {base}: {}", error_chain(&e)))
            });
            return refuse(refusal, Some(&service), event);
        }
    };
    let (mut head, upstream) = response.into_parts();
    strip(&mut head.headers);
    event.status = head.status.as_u16();
    let record = Record {
        shared: shared.clone(),
        event,
        bytes_in,
        bytes_out: bytes_out.clone(),
    };
    Ok(Response::from_parts(
        head,
        counted(upstream, bytes_out, Some(record)),
    ))
}

/// A body read whole, up to [`MAX_BUFFERED`].
async fn read_whole(mut body: Body) -> Result<Bytes, Refusal> {
    let mut whole = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| Refusal::Unreachable(format!("the request body was cut short ({e})")))?;
        if let Ok(data) = frame.into_data() {
            if whole.len() + data.len() > MAX_BUFFERED {
                return Err(Refusal::TooLarge);
            }
            whole.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(whole))
}

fn empty() -> Body {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// An error and its causes on one line (hyper's outer error alone says little).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// Connection-level headers out of a response: hyper frames the body again for the command.
fn strip(headers: &mut HeaderMap) {
    for name in &NOT_FORWARDED[..9] {
        headers.remove(*name);
    }
}

/// The forwarded request's head: the same method, path, query and headers, to `base`, with
/// the command's signature, token and connection headers left out and Host the target's.
fn forwarded_head(
    parts: &http::request::Parts,
    base: &str,
    presigned: bool,
) -> Result<Request<()>, Refusal> {
    let unreachable = |why: String| Refusal::Unreachable(why);
    let base_uri: http::Uri = base
        .parse()
        .map_err(|_| unreachable(format!("the endpoint {base} is not a valid URL")))?;
    let authority = base_uri
        .authority()
        .ok_or_else(|| unreachable(format!("the endpoint {base} has no host")))?
        .clone();
    let base_path = base_uri.path().trim_end_matches('/');
    // Under an endpoint with a base path, `..` (or `%2e%2e`, which servers decode) would climb
    // out of it to paths the user never configured.
    if !base_path.is_empty() && has_dot_segment(parts.uri.path()) {
        return Err(Refusal::DotSegments);
    }
    let mut query: Vec<&str> = parts
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .collect();
    if presigned {
        query.retain(|p| {
            let name = p.split('=').next().unwrap_or("");
            !PRESIGN_PARAMS.contains(&name)
        });
    }
    let mut path_and_query = format!("{base_path}{}", parts.uri.path());
    if !query.is_empty() {
        path_and_query.push('?');
        path_and_query.push_str(&query.join("&"));
    }
    let uri = http::Uri::builder()
        .scheme(base_uri.scheme_str().unwrap_or("https"))
        .authority(authority.clone())
        .path_and_query(path_and_query)
        .build()
        .map_err(|e| unreachable(format!("cannot build the forwarded URL: {e}")))?;
    let mut request = Request::builder()
        .method(parts.method.clone())
        .uri(uri)
        .body(())
        .map_err(|e| unreachable(format!("cannot build the forwarded request: {e}")))?;
    let headers = request.headers_mut();
    for (name, value) in &parts.headers {
        if !NOT_FORWARDED.contains(&name.as_str()) {
            headers.append(name.clone(), value.clone());
        }
    }
    // Host without the default port, as the SDKs write it.
    let host = match (base_uri.scheme_str(), authority.port_u16()) {
        (Some("https"), Some(443)) | (Some("http"), Some(80)) => authority.host().to_string(),
        _ => authority.as_str().to_string(),
    };
    headers.insert(
        http::header::HOST,
        HeaderValue::from_str(&host)
            .map_err(|_| unreachable(format!("the endpoint {base} has a bad host")))?,
    );
    Ok(request)
}

/// Whether a path has a `.` or `..` segment, percent-encoded or not.
fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|segment| {
        let plain = segment.to_ascii_lowercase().replace("%2e", ".");
        plain == "." || plain == ".."
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_cannot_climb_out_of_an_endpoints_base_path() {
        let head = |uri: &str, base: &str| {
            let (parts, ()) = Request::builder().uri(uri).body(()).unwrap().into_parts();
            forwarded_head(&parts, base, false).map(|r| r.uri().to_string())
        };
        for uri in ["/../admin", "/a/%2e%2E/b", "/a/./b", "/%2E/b"] {
            assert_eq!(
                head(uri, "https://gw.example.com/base"),
                Err(Refusal::DotSegments),
                "{uri}"
            );
        }
        assert_eq!(
            head("/a/..b/c.d", "https://gw.example.com/base"),
            Ok("https://gw.example.com/base/a/..b/c.d".to_string())
        );
        // Without a base path there is nothing to climb out of (S3 keys may hold `..`).
        assert_eq!(
            head("/bucket/../k", "https://s3.eu-west-1.amazonaws.com"),
            Ok("https://s3.eu-west-1.amazonaws.com/bucket/../k".to_string())
        );
    }

    #[test]
    fn the_run_keys_look_like_aws_keys_and_differ_every_run() {
        let (id, secret) = run_keys().unwrap();
        let (id2, secret2) = run_keys().unwrap();
        assert!(id.starts_with("AKIA") && id.len() == 20, "{id}");
        assert!(id[4..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
        assert_eq!(secret.len(), 40);
        assert_ne!(id, id2);
        assert_ne!(secret, secret2);
    }

    #[test]
    fn the_forwarded_head_goes_to_the_target_without_the_commands_signature() {
        let (parts, ()) = Request::builder()
            .method("GET")
            .uri("/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=ab&versionId=1")
            .header("host", "127.0.0.1:4000")
            .header("authorization", "AWS4-HMAC-SHA256 …")
            .header("x-amz-security-token", "t")
            .header("connection", "keep-alive")
            .header("range", "bytes=0-9")
            .body(())
            .unwrap()
            .into_parts();
        let r = forwarded_head(&parts, "https://s3.eu-west-1.amazonaws.com:443", true).unwrap();
        assert_eq!(
            r.uri().to_string(),
            "https://s3.eu-west-1.amazonaws.com:443/b/k?versionId=1"
        );
        assert_eq!(r.headers()["host"], "s3.eu-west-1.amazonaws.com");
        assert_eq!(r.headers()["range"], "bytes=0-9");
        for gone in ["authorization", "x-amz-security-token", "connection"] {
            assert!(!r.headers().contains_key(gone), "{gone}");
        }
        let r = forwarded_head(&parts, "http://localhost:9000/base/", false).unwrap();
        assert!(r
            .uri()
            .to_string()
            .starts_with("http://localhost:9000/base/b/k?X-Amz-Algorithm"));
        assert_eq!(r.headers()["host"], "localhost:9000");
    }
}
