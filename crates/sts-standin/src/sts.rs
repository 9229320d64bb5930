//! A strict local stand-in for AWS STS (GetSessionToken, AssumeRole, GetCallerIdentity), the
//! IAM calls of a user's own virtual MFA device (CreateVirtualMFADevice, EnableMFADevice,
//! ListMFADevices, DeactivateMFADevice, DeleteVirtualMFADevice) and S3 ListBuckets (allowed
//! only to MFA-backed credentials, like a bucket policy that requires MFA).
//!
//! It speaks the Query protocol over plain HTTP, verifies SigV4 signatures by recomputing them
//! with the `aws-sigv4` crate, checks TOTP codes (each code is good once per device), issues
//! temporary credentials it accepts later, and answers with STS's XML and error messages
//! (see `/work/shared/AWS-FACTS.md`). Integration tests use it in-process; the example binary
//! `sts-standin` (`tests/support/standin_main.rs`) runs it on its own.
//!
//! The module also holds a tiny signed client ([`call`], [`signed_post`], [`http_request`]) so
//! tests and the example binary can talk to it without the AWS SDK.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

/// carol's keys: a demo user with no MFA device yet.
pub const CAROL_KEY: &str = "AKIACAROLEXAMPLE7Q2Z";
pub const CAROL_SECRET: &str = "Ca7oLbPxRfiCYzK7MDEN/wJalrXUtnEXAMPLEKEY";

/// The account every demo principal lives in.
pub const ACCOUNT: &str = "123456789012";
/// XML namespace of every STS reply.
pub const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// The only API version STS knows.
pub const VERSION: &str = "2011-06-15";
/// Signing service name STS requires in the credential scope.
pub const SERVICE: &str = "sts";
/// IAM's Query-protocol version and XML namespace.
pub const IAM_VERSION: &str = "2010-05-08";
pub const IAM_NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
/// The buckets ListBuckets shows.
pub const BUCKETS: [&str; 2] = ["demo-reports", "demo-logs"];

/// Allowed clock skew between `X-Amz-Date` and now.
const MAX_SKEW: Duration = Duration::from_secs(15 * 60);
/// Worker threads taking requests off tiny_http's queue (connections have their own threads).
const WORKERS: usize = 16;
/// Largest request body read.
const MAX_BODY: u64 = 1 << 20;

/// Fixed messages of STS errors.
pub mod msg {
    pub const MISSING_AUTH: &str = "Request is missing Authentication Token";
    pub const INVALID_TOKEN: &str = "The security token included in the request is invalid.";
    pub const BAD_SIGNATURE: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
    pub const EXPIRED_TOKEN: &str = "The security token included in the request is expired";
    pub const MFA_BAD_SERIAL: &str = "MultiFactorAuthentication failed, unable to validate MFA code.  Please verify your MFA serial number is valid and associated with this user.";
    pub const MFA_BAD_CODE: &str =
        "MultiFactorAuthentication failed with invalid MFA one time pass code.";
    pub const GST_WITH_SESSION: &str = "Cannot call GetSessionToken with session credentials";
    pub const ROLE_MAX_DURATION: &str =
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.";
    pub const ROLE_CHAINING: &str = "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.";
}

// ------------------------------------------------------------------------------------------
// Configuration
// ------------------------------------------------------------------------------------------

/// An IAM user with long-term keys and (optionally) one virtual MFA device.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub mfa_serial: Option<String>,
    pub totp_seed_base32: String,
}

impl User {
    /// `arn:aws:iam::ACCOUNT:user/NAME`
    pub fn arn(&self) -> String {
        user_arn(&self.name)
    }

    /// The user's long-term keys, for signing.
    pub fn keys(&self) -> Keys {
        Keys::new(&self.access_key_id, &self.secret_access_key, None)
    }
}

/// An IAM role and the parts of its trust policy the stand-in models.
#[derive(Clone, Debug)]
pub struct Role {
    pub name: String,
    pub arn: String,
    pub require_mfa: bool,
    pub max_session_duration: u64,
    pub external_id: Option<String>,
    /// User names the role trusts; empty trusts nobody.
    pub trusted_users: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub users: Vec<User>,
    pub roles: Vec<Role>,
    /// If `Some(n)`: every issued credential expires `n` seconds after issue, whatever
    /// `DurationSeconds` says (`Expiration` reflects it).
    pub lifetime_override: Option<u64>,
}

impl Config {
    /// The demo account: users alice and bob, each with a virtual MFA device, carol without
    /// one, and the roles
    /// `s3-reader`, `auditor`, `partner`, `open` and `locked`.
    pub fn demo() -> Config {
        let user = |name: &str, key: &str, secret: &str, seed: &str| User {
            name: name.to_string(),
            access_key_id: key.to_string(),
            secret_access_key: secret.to_string(),
            mfa_serial: Some(format!("arn:aws:iam::{ACCOUNT}:mfa/{name}")),
            totp_seed_base32: seed.to_string(),
        };
        let role = |name: &str, require_mfa: bool, max: u64, external_id: Option<&str>| Role {
            name: name.to_string(),
            arn: format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
            require_mfa,
            max_session_duration: max,
            external_id: external_id.map(str::to_string),
            trusted_users: vec!["alice".to_string(), "bob".to_string()],
        };
        let mut locked = role("locked", false, 3600, None);
        locked.trusted_users.clear();
        Config {
            users: vec![
                user(
                    "alice",
                    "AKIAIOSFODNN7EXAMPLE",
                    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                    "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
                ),
                user(
                    "bob",
                    "AKIAI44QH8DHBEXAMPLE",
                    "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
                    "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU",
                ),
                // Where every new user starts: keys, no MFA device (`device add` registers one).
                User {
                    name: "carol".to_string(),
                    access_key_id: CAROL_KEY.to_string(),
                    secret_access_key: CAROL_SECRET.to_string(),
                    mfa_serial: None,
                    totp_seed_base32: String::new(),
                },
            ],
            roles: vec![
                role("s3-reader", true, 43200, None),
                role("auditor", true, 3600, None),
                role("partner", true, 3600, Some("partner-ext-id")),
                role("open", false, 3600, None),
                locked,
            ],
            lifetime_override: None,
        }
    }

    /// The user called `name`.
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    /// The role called `name`.
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.name == name)
    }
}

// ------------------------------------------------------------------------------------------
// TOTP
// ------------------------------------------------------------------------------------------

/// RFC 6238 code (SHA1, 6 digits, 30 s steps) of a base32 seed at `unix_time`.
pub fn totp_code(seed_base32: &str, unix_time: u64) -> String {
    let secret = totp_rs::Secret::Encoded(seed_base32.to_string())
        .to_bytes()
        .expect("TOTP seed must be valid base32");
    totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, secret).generate(unix_time)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

// ------------------------------------------------------------------------------------------
// Server state
// ------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// From GetSessionToken.
    Session,
    /// From AssumeRole.
    Role,
}

#[derive(Clone, Debug)]
struct Temp {
    secret: String,
    token: String,
    expires: SystemTime,
    kind: Kind,
    mfa: bool,
    /// The IAM user at the root of the chain.
    user: String,
    /// For role credentials: role name, session name.
    role: Option<(String, String)>,
}

/// A virtual MFA device in the account.
#[derive(Clone, Debug)]
struct Device {
    seed_base32: String,
    /// The user it is enabled for (assigned to), if any.
    user: Option<String>,
    /// Who created it (only they may delete it while it is unassigned).
    creator: String,
    enabled_at: Option<SystemTime>,
}

struct State {
    config: Config,
    /// Virtual MFA devices by serial: the configured users' (enabled) and those created since.
    devices: BTreeMap<String, Device>,
    temps: HashMap<String, Temp>,
    /// (device serial, TOTP step) pairs already used.
    used_codes: HashSet<(String, u64)>,
    /// Benchmarks only (`sts-standin serve --reuse-codes`): accept a used code again.
    reuse_codes: bool,
    /// Like `Config::lifetime_override`, for role credentials only (MFA sessions keep theirs).
    role_lifetime_override: Option<u64>,
    /// Benchmarks only (`sts-standin serve --latency MS`): answer each request this much later,
    /// as a real STS endpoint across the internet does.
    latency: Duration,
    calls: BTreeMap<String, usize>,
    total: usize,
}

struct Shared {
    state: Mutex<State>,
    stop: AtomicBool,
    log: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking handler must not take the stand-in down with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running stand-in. Serves on background threads until dropped.
pub struct StandIn {
    server: Arc<tiny_http::Server>,
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    addr: SocketAddr,
}

impl StandIn {
    /// Binds 127.0.0.1 on a free port and starts serving.
    pub fn start(config: Config) -> io::Result<StandIn> {
        Self::start_on(config, 0)
    }

    /// Like [`StandIn::start`] on a given port (0: any free port).
    pub fn start_on(config: Config, port: u16) -> io::Result<StandIn> {
        let server = tiny_http::Server::http(("127.0.0.1", port)).map_err(io::Error::other)?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| io::Error::other("stand-in is not listening on an IP address"))?;
        let server = Arc::new(server);
        let devices = config
            .users
            .iter()
            .filter_map(|u| {
                let serial = u.mfa_serial.clone()?;
                let device = Device {
                    seed_base32: u.totp_seed_base32.clone(),
                    user: Some(u.name.clone()),
                    creator: u.name.clone(),
                    enabled_at: Some(SystemTime::now()),
                };
                Some((serial, device))
            })
            .collect();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                devices,
                config,
                temps: HashMap::new(),
                used_codes: HashSet::new(),
                reuse_codes: false,
                latency: Duration::ZERO,
                role_lifetime_override: None,
                calls: BTreeMap::new(),
                total: 0,
            }),
            stop: AtomicBool::new(false),
            log: AtomicBool::new(false),
        });
        let mut workers = Vec::with_capacity(WORKERS);
        for i in 0..WORKERS {
            let server = Arc::clone(&server);
            let shared = Arc::clone(&shared);
            let worker = std::thread::Builder::new()
                .name(format!("sts-standin-{i}"))
                .spawn(move || loop {
                    match server.recv() {
                        Ok(request) => handle(&shared, request),
                        Err(_) if shared.stop.load(Ordering::SeqCst) => break,
                        Err(_) => continue,
                    }
                })?;
            workers.push(worker);
        }
        Ok(StandIn {
            server,
            shared,
            workers,
            addr,
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests received with this `Action`, whether they succeeded or not.
    pub fn calls(&self, action: &str) -> usize {
        self.shared.lock().calls.get(action).copied().unwrap_or(0)
    }

    /// All STS requests received (the `/_standin/` helper paths not included).
    pub fn total_calls(&self) -> usize {
        self.shared.lock().total
    }

    /// The TOTP code of the device `serial` for now + `step_offset` × 30 s.
    ///
    /// Panics if no user owns that device.
    pub fn code(&self, serial: &str, step_offset: i64) -> String {
        let seed = {
            let state = self.shared.lock();
            state
                .devices
                .get(serial)
                .unwrap_or_else(|| panic!("no MFA device {serial}"))
                .seed_base32
                .clone()
        };
        let t = unix_now() as i64 + step_offset * 30;
        totp_code(&seed, t.max(0) as u64)
    }

    /// The account's virtual MFA devices: (serial, the user it is enabled for).
    pub fn devices(&self) -> Vec<(String, Option<String>)> {
        let state = self.shared.lock();
        state
            .devices
            .iter()
            .map(|(serial, d)| (serial.clone(), d.user.clone()))
            .collect()
    }

    /// Changes the lifetime of credentials issued from now on (see [`Config::lifetime_override`]).
    pub fn set_lifetime_override(&self, secs: Option<u64>) {
        self.shared.lock().config.lifetime_override = secs;
    }

    /// Benchmarks only: accept a TOTP code any number of times (STS accepts each once), so that
    /// repeated cold runs can share one code.
    pub fn set_reuse_codes(&self, on: bool) {
        self.shared.lock().reuse_codes = on;
    }

    /// Role credentials issued from now on live `secs` (MFA sessions are not affected).
    pub fn set_role_lifetime_override(&self, secs: Option<u64>) {
        self.shared.lock().role_lifetime_override = secs;
    }

    /// Benchmarks only: delay every answer, to stand for a real STS round trip.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.lock().latency = latency;
    }

    /// Log one line per request to stderr.
    pub fn set_log(&self, on: bool) {
        self.shared.log.store(on, Ordering::SeqCst);
    }

    /// A copy of the configuration (with the current lifetime override).
    pub fn config(&self) -> Config {
        self.shared.lock().config.clone()
    }

    /// Signed call with `keys` (region us-east-1, now). Panics on transport errors.
    pub fn call(&self, keys: &Keys, action: &str, params: &[(&str, &str)]) -> Reply {
        call(&self.url(), keys, action, params).expect("transport to the stand-in")
    }
}

impl StandIn {
    /// Signed IAM call with `keys`. Panics on transport errors.
    pub fn call_iam(&self, keys: &Keys, action: &str, params: &[(&str, &str)]) -> Reply {
        call_service(&self.url(), keys, "iam", IAM_VERSION, action, params)
            .expect("transport to the stand-in")
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for _ in 0..self.workers.len() {
            self.server.unblock();
        }
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

// ------------------------------------------------------------------------------------------
// Request handling
// ------------------------------------------------------------------------------------------

/// An STS error reply.
#[derive(Debug)]
struct StsError {
    status: u16,
    code: &'static str,
    message: String,
}

fn err(status: u16, code: &'static str, message: impl Into<String>) -> StsError {
    StsError {
        status,
        code,
        message: message.into(),
    }
}

fn access_denied(message: impl Into<String>) -> StsError {
    err(403, "AccessDenied", message)
}

fn invalid_token() -> StsError {
    err(403, "InvalidClientTokenId", msg::INVALID_TOKEN)
}

fn bad_signature() -> StsError {
    err(403, "SignatureDoesNotMatch", msg::BAD_SIGNATURE)
}

/// `N validation error(s) detected: a; b`
fn validation(errors: &[String]) -> StsError {
    let n = errors.len();
    let s = if n == 1 { "" } else { "s" };
    err(
        400,
        "ValidationError",
        format!("{n} validation error{s} detected: {}", errors.join("; ")),
    )
}

/// What a received request looks like, independent of tiny_http.
struct Incoming {
    method: String,
    url: String,
    /// Header names lower-cased, in received order.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Incoming {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn handle(shared: &Shared, mut request: tiny_http::Request) {
    let latency = shared.lock().latency;
    if !latency.is_zero() {
        std::thread::sleep(latency);
    }
    let mut body = Vec::new();
    let read = request.as_reader().take(MAX_BODY).read_to_end(&mut body);
    let incoming = Incoming {
        method: request.method().as_str().to_ascii_uppercase(),
        url: request.url().to_string(),
        headers: request
            .headers()
            .iter()
            .map(|h| {
                (
                    h.field.as_str().as_str().to_ascii_lowercase(),
                    h.value.as_str().to_string(),
                )
            })
            .collect(),
        body,
    };
    let (status, content_type, body, request_id) = if read.is_err() {
        let id = request_id();
        let e = err(400, "MalformedInput", "Could not read the request body");
        (e.status, "text/xml", error_xml(&e, &id), id)
    } else {
        respond(shared, &incoming)
    };
    let mut response = tiny_http::Response::from_data(body.into_bytes())
        .with_status_code(status)
        .with_header(header("Content-Type", content_type));
    if !request_id.is_empty() {
        response = response.with_header(header("x-amzn-RequestId", &request_id));
    }
    let _ = request.respond(response);
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("valid header")
}

/// (status, content type, body, request id)
fn respond(shared: &Shared, rq: &Incoming) -> (u16, &'static str, String, String) {
    let path = rq.url.split('?').next().unwrap_or("");
    if path == "/_standin/calls" {
        let state = shared.lock();
        let json = serde_json::to_string(&state.calls).expect("JSON of counts");
        return (200, "application/json", json, String::new());
    }

    let id = request_id();
    let params = params_of(rq);
    // Which service the request was signed for decides the reply's shape (errors included).
    let service = rq
        .header("authorization")
        .and_then(|a| parse_authorization(a).ok())
        .map(|a| a.service)
        .unwrap_or_else(|| SERVICE.to_string());
    let action = if service == "s3" {
        format!("s3:{} {path}", rq.method)
    } else {
        param(&params, "Action").unwrap_or("").to_string()
    };
    let action = if action == "s3:GET /" {
        "ListBuckets".to_string()
    } else {
        action
    };

    let mut state = shared.lock();
    *state.calls.entry(action.clone()).or_insert(0) += 1;
    state.total += 1;
    let result = serve(&mut state, rq, &params, &action, &id);
    drop(state);

    if shared.log.load(Ordering::SeqCst) {
        match &result {
            Ok(_) => eprintln!("sts-standin: {action} 200"),
            Err(e) => eprintln!(
                "sts-standin: {action} {} {}: {}",
                e.status, e.code, e.message
            ),
        }
    }
    match result {
        Ok(xml) => (200, "text/xml", xml, id),
        Err(e) if service == "s3" => (e.status, "application/xml", s3_error_xml(&e, &id), id),
        Err(e) if service == "iam" => (
            e.status,
            "text/xml",
            error_xml_in(&e, &id, IAM_NAMESPACE),
            id,
        ),
        Err(e) => (e.status, "text/xml", error_xml(&e, &id), id),
    }
}

/// Query-string parameters, then (for a form-encoded POST) body parameters.
fn params_of(rq: &Incoming) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = Vec::new();
    if let Some((_, query)) = rq.url.split_once('?') {
        params.extend(form_urlencoded::parse(query.as_bytes()).into_owned());
    }
    if rq.method == "POST" && is_form(rq.header("content-type")) {
        params.extend(form_urlencoded::parse(&rq.body).into_owned());
    }
    params
}

fn is_form(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Who signed a request.
#[derive(Clone, Debug)]
enum Caller {
    User(User),
    Temp(Temp),
}

impl Caller {
    /// The IAM user at the root of the chain.
    fn user_name(&self) -> &str {
        match self {
            Caller::User(u) => &u.name,
            Caller::Temp(t) => &t.user,
        }
    }

    fn arn(&self) -> String {
        match self {
            Caller::User(u) => u.arn(),
            Caller::Temp(t) => match &t.role {
                Some((role, session)) => assumed_role_arn(role, session),
                None => user_arn(&t.user),
            },
        }
    }

    fn user_id(&self) -> String {
        match self {
            Caller::User(u) => stable_id("AIDA", &u.name),
            Caller::Temp(t) => match &t.role {
                Some((role, session)) => format!("{}:{session}", stable_id("AROA", role)),
                None => stable_id("AIDA", &t.user),
            },
        }
    }

    fn temp(&self) -> Option<&Temp> {
        match self {
            Caller::User(_) => None,
            Caller::Temp(t) => Some(t),
        }
    }
}

fn serve(
    state: &mut State,
    rq: &Incoming,
    params: &[(String, String)],
    action: &str,
    id: &str,
) -> Result<String, StsError> {
    if rq.method != "POST" && rq.method != "GET" {
        return Err(err(
            405,
            "InvalidHttpRequest",
            format!("The HTTP method {} is not supported", rq.method),
        ));
    }
    let (caller, service) = authenticate(state, rq)?;
    match service.as_str() {
        "iam" => return iam_action(state, &caller, params, action, id),
        "s3" => return s3_action(&caller, rq, action),
        _ => {}
    }

    let version = param(params, "Version");
    if version != Some(VERSION)
        || !matches!(
            action,
            "GetSessionToken" | "AssumeRole" | "GetCallerIdentity"
        )
    {
        return Err(err(
            400,
            "InvalidAction",
            format!(
                "Could not find operation {action} for version {}",
                version.unwrap_or("NO_VERSION_SPECIFIED")
            ),
        ));
    }
    match action {
        "GetSessionToken" => get_session_token(state, &caller, params, id),
        "AssumeRole" => assume_role(state, &caller, params, id),
        _ => Ok(get_caller_identity(&caller, id)),
    }
}

// ------------------------------------------------------------------------------------------
// Authentication (SigV4)
// ------------------------------------------------------------------------------------------

struct Authorization {
    access_key_id: String,
    date: String,
    region: String,
    service: String,
    signed_headers: Vec<String>,
    signature: String,
}

fn parse_authorization(value: &str) -> Result<Authorization, StsError> {
    let incomplete = |m: String| err(400, "IncompleteSignature", m);
    let value = value.trim();
    let (algorithm, rest) = value.split_once(' ').unwrap_or((value, ""));
    if algorithm != "AWS4-HMAC-SHA256" {
        return Err(incomplete(format!(
            "Unsupported AWS 'algorithm': '{algorithm}'"
        )));
    }
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else {
            continue;
        };
        match k.trim() {
            "Credential" => credential = Some(v.trim()),
            "SignedHeaders" => signed_headers = Some(v.trim()),
            "Signature" => signature = Some(v.trim()),
            _ => {}
        }
    }
    let mut missing = Vec::new();
    for (name, v) in [
        ("Credential", credential),
        ("Signature", signature),
        ("SignedHeaders", signed_headers),
    ] {
        if v.is_none_or(str::is_empty) {
            missing.push(format!("Authorization header requires '{name}' parameter."));
        }
    }
    if !missing.is_empty() {
        return Err(incomplete(format!(
            "{} Authorization={algorithm}",
            missing.join(" ")
        )));
    }
    let credential = credential.unwrap_or_default();
    let scope: Vec<&str> = credential.split('/').collect();
    if scope.len() != 5 || scope.iter().any(|s| s.is_empty()) {
        return Err(incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
        )));
    }
    if scope[4] != "aws4_request" {
        return Err(bad_signature_msg(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'.",
            scope[4]
        )));
    }
    Ok(Authorization {
        access_key_id: scope[0].to_string(),
        date: scope[1].to_string(),
        region: scope[2].to_string(),
        service: scope[3].to_string(),
        signed_headers: signed_headers
            .unwrap_or_default()
            .split(';')
            .map(|h| h.trim().to_ascii_lowercase())
            .collect(),
        signature: signature.unwrap_or_default().to_string(),
    })
}

fn bad_signature_msg(message: String) -> StsError {
    err(403, "SignatureDoesNotMatch", message)
}

/// Who signed, and for which service (`sts`, `iam` or `s3`).
fn authenticate(state: &State, rq: &Incoming) -> Result<(Caller, String), StsError> {
    let Some(authorization) = rq.header("authorization") else {
        return Err(err(403, "MissingAuthenticationToken", msg::MISSING_AUTH));
    };
    let auth = parse_authorization(authorization)?;
    if !["sts", "iam", "s3"].contains(&auth.service.as_str()) {
        return Err(bad_signature_msg(format!(
            "Credential should be scoped to correct service: '{SERVICE}'. "
        )));
    }

    // Who is it?
    let token = rq.header("x-amz-security-token");
    let (caller, secret) = if let Some(user) = state
        .config
        .users
        .iter()
        .find(|u| u.access_key_id == auth.access_key_id)
    {
        if token.is_some() {
            return Err(invalid_token());
        }
        (Caller::User(user.clone()), user.secret_access_key.clone())
    } else if let Some(temp) = state.temps.get(&auth.access_key_id) {
        if token != Some(temp.token.as_str()) {
            return Err(invalid_token());
        }
        (Caller::Temp(temp.clone()), temp.secret.clone())
    } else {
        return Err(invalid_token());
    };

    // When?
    let Some(amz_date) = rq.header("x-amz-date") else {
        return Err(err(
            400,
            "IncompleteSignature",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        ));
    };
    let Some(time) = parse_amz_date(amz_date) else {
        return Err(err(
            400,
            "IncompleteSignature",
            format!("Date must be in ISO-8601 'basic format'. Got '{amz_date}'."),
        ));
    };
    if !amz_date.starts_with(&auth.date) {
        return Err(bad_signature_msg(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{amz_date}'.",
            auth.date,
            &amz_date[..8]
        )));
    }
    let now = SystemTime::now();
    if time + MAX_SKEW < now {
        return Err(bad_signature_msg(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - 15 min.)",
            amz_format(now - MAX_SKEW),
            amz_format(now)
        )));
    }
    if time > now + MAX_SKEW {
        return Err(bad_signature_msg(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 15 min.)",
            amz_format(now + MAX_SKEW),
            amz_format(now)
        )));
    }

    if let Caller::Temp(temp) = &caller {
        if temp.expires <= now {
            return Err(err(403, "ExpiredToken", msg::EXPIRED_TOKEN));
        }
    }

    let expected = expected_signature(rq, &auth, &secret, time).ok_or_else(bad_signature)?;
    if !constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) {
        return Err(bad_signature());
    }
    Ok((caller, auth.service))
}

/// Recomputes the request's signature with aws-sigv4: the received method, URI, exactly the
/// headers named in `SignedHeaders`, and the body, at the request's `X-Amz-Date`.
///
/// The identity carries no session token: when the client signed `x-amz-security-token` the
/// header is among the signed headers already (and aws-sigv4 would only insert it again).
/// Nothing is excluded from signing, so whatever the client signed (`user-agent`, say) counts;
/// and since aws-sigv4 always signs `host` and `x-amz-date`, a client that did not sign them
/// fails.
fn expected_signature(
    rq: &Incoming,
    auth: &Authorization,
    secret: &str,
    time: SystemTime,
) -> Option<String> {
    let mut headers: Vec<(&str, &str)> = Vec::new();
    for name in &auth.signed_headers {
        let mut found = false;
        for (n, v) in &rq.headers {
            if n == name {
                headers.push((n.as_str(), v.as_str()));
                found = true;
            }
        }
        if !found {
            return None;
        }
    }
    let host = rq.header("host").unwrap_or("localhost");
    let uri = format!("http://{host}{}", rq.url);

    let identity: Identity =
        Credentials::new(&auth.access_key_id, secret, None, None, "sts-standin").into();
    let mut settings = SigningSettings::default();
    settings.excluded_headers = Some(Vec::new());
    // S3 signs the path as sent (no normalising, single encoding) and the payload hash the
    // client put in `x-amz-content-sha256` (UNSIGNED-PAYLOAD included).
    let s3_payload = rq
        .header("x-amz-content-sha256")
        .filter(|_| auth.service == "s3");
    if auth.service == "s3" {
        settings.percent_encoding_mode = aws_sigv4::http_request::PercentEncodingMode::Single;
        settings.uri_path_normalization_mode =
            aws_sigv4::http_request::UriPathNormalizationMode::Disabled;
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&auth.region)
        .name(&auth.service)
        .time(time)
        .settings(settings)
        .build()
        .ok()?
        .into();
    let body = match s3_payload {
        Some(hash) => SignableBody::Precomputed(hash.to_string()),
        None => SignableBody::Bytes(&rq.body),
    };
    let signable = SignableRequest::new(&rq.method, uri, headers.into_iter(), body).ok()?;
    let (_, signature) = sign(signable, &params).ok()?.into_parts();
    Some(signature)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `20260101T000000Z` → time
fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16
        || b[8] != b'T'
        || b[15] != b'Z'
        || !b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
    {
        return None;
    }
    let iso = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..15]
    );
    humantime::parse_rfc3339(&iso).ok()
}

/// time → `20260101T000000Z`
pub fn amz_format(t: SystemTime) -> String {
    iso_format(t).replace(['-', ':'], "")
}

/// time → `2026-01-01T00:00:00Z`
pub fn iso_format(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

// ------------------------------------------------------------------------------------------
// Actions
// ------------------------------------------------------------------------------------------

fn get_caller_identity(caller: &Caller, id: &str) -> String {
    let result = format!(
        "<Arn>{}</Arn>\n    <UserId>{}</UserId>\n    <Account>{ACCOUNT}</Account>",
        esc(&caller.arn()),
        esc(&caller.user_id()),
    );
    reply_xml("GetCallerIdentity", &result, id)
}

fn get_session_token(
    state: &mut State,
    caller: &Caller,
    params: &[(String, String)],
    id: &str,
) -> Result<String, StsError> {
    let mut errors = Vec::new();
    let duration = duration_param(params, 900, 129_600, &mut errors);
    let serial = param(params, "SerialNumber");
    let code = param(params, "TokenCode");
    check_mfa_params(serial, code, &mut errors);
    if !errors.is_empty() {
        return Err(validation(&errors));
    }
    let duration = duration.unwrap_or(43_200);

    let Caller::User(user) = caller else {
        return Err(access_denied(msg::GST_WITH_SESSION));
    };
    let mfa = match (serial, code) {
        (None, None) => None,
        (serial, code) => Some(check_mfa(state, &user.name, serial, code)?),
    };

    if let Some(step) = &mfa {
        state.used_codes.insert(step.clone());
    }
    let (akid, temp) = issue(
        state,
        duration,
        Kind::Session,
        mfa.is_some(),
        &user.name,
        None,
    );
    let result = credentials_xml(&akid, &temp);
    Ok(reply_xml("GetSessionToken", &result, id))
}

fn assume_role(
    state: &mut State,
    caller: &Caller,
    params: &[(String, String)],
    id: &str,
) -> Result<String, StsError> {
    let mut errors = Vec::new();
    let role_arn = param(params, "RoleArn");
    let session = param(params, "RoleSessionName");
    match role_arn {
        None => errors.push(null_error("roleArn")),
        Some(arn) => check_length("roleArn", arn, 20, 2048, &mut errors),
    }
    match session {
        None => errors.push(null_error("roleSessionName")),
        Some(s) => {
            check_length("roleSessionName", s, 2, 64, &mut errors);
            check_pattern("roleSessionName", s, r"[\w+=,.@-]*", "+=,.@-", &mut errors);
        }
    }
    let external_id = param(params, "ExternalId");
    if let Some(x) = external_id {
        check_length("externalId", x, 2, 1224, &mut errors);
        check_pattern("externalId", x, r"[\w+=,.@:\/-]*", "+=,.@:/-", &mut errors);
    }
    let duration = duration_param(params, 900, 43_200, &mut errors);
    let serial = param(params, "SerialNumber");
    let code = param(params, "TokenCode");
    check_mfa_params(serial, code, &mut errors);
    if !errors.is_empty() {
        return Err(validation(&errors));
    }
    let role_arn = role_arn.unwrap_or_default();
    let session = session.unwrap_or_default();

    let not_authorized = || {
        access_denied(format!(
            "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
            caller.arn()
        ))
    };
    let role = state
        .config
        .roles
        .iter()
        .find(|r| r.arn == role_arn)
        .cloned()
        .ok_or_else(not_authorized)?;
    if !role.trusted_users.iter().any(|u| u == caller.user_name()) {
        return Err(not_authorized());
    }
    if let Some(expected) = &role.external_id {
        if external_id != Some(expected.as_str()) {
            return Err(not_authorized());
        }
    }
    let mfa = match (serial, code) {
        (None, None) => None,
        (serial, code) => Some(check_mfa(state, caller.user_name(), serial, code)?),
    };
    let mfa_present = mfa.is_some() || caller.temp().is_some_and(|t| t.mfa);
    if role.require_mfa && !mfa_present {
        return Err(not_authorized());
    }

    let duration = duration.unwrap_or(3600);
    if duration > role.max_session_duration {
        return Err(err(400, "ValidationError", msg::ROLE_MAX_DURATION));
    }
    if caller.temp().is_some() && duration > 3600 {
        return Err(err(400, "ValidationError", msg::ROLE_CHAINING));
    }

    if let Some(step) = &mfa {
        state.used_codes.insert(step.clone());
    }
    let user = caller.user_name().to_string();
    let (akid, temp) = issue(
        state,
        duration,
        Kind::Role,
        mfa_present,
        &user,
        Some((role.name.clone(), session.to_string())),
    );
    let result = format!(
        "<AssumedRoleUser>\n      <AssumedRoleId>{}:{}</AssumedRoleId>\n      <Arn>{}</Arn>\n    </AssumedRoleUser>\n    {}",
        stable_id("AROA", &role.name),
        esc(session),
        esc(&assumed_role_arn(&role.name, session)),
        credentials_xml(&akid, &temp),
    );
    Ok(reply_xml("AssumeRole", &result, id))
}

fn null_error(member: &str) -> String {
    format!("Value null at '{member}' failed to satisfy constraint: Member must not be null")
}

fn check_length(member: &str, value: &str, min: usize, max: usize, errors: &mut Vec<String>) {
    let n = value.chars().count();
    if n < min {
        errors.push(format!("Value '{value}' at '{member}' failed to satisfy constraint: Member must have length greater than or equal to {min}"));
    } else if n > max {
        errors.push(format!("Value '{value}' at '{member}' failed to satisfy constraint: Member must have length less than or equal to {max}"));
    }
}

/// `pattern` is what the message shows; a value passes if every char is `\w` or in `extra`.
fn check_pattern(member: &str, value: &str, pattern: &str, extra: &str, errors: &mut Vec<String>) {
    let ok = value
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || extra.contains(c));
    if !ok {
        errors.push(format!("Value '{value}' at '{member}' failed to satisfy constraint: Member must satisfy regular expression pattern: {pattern}"));
    }
}

/// Parses `DurationSeconds` (None when absent or invalid; errors collected).
fn duration_param(
    params: &[(String, String)],
    min: u64,
    max: u64,
    errors: &mut Vec<String>,
) -> Option<u64> {
    let raw = param(params, "DurationSeconds")?;
    let Ok(n) = raw.trim().parse::<i64>() else {
        errors.push(format!("Value '{raw}' at 'durationSeconds' failed to satisfy constraint: Member must be a number"));
        return None;
    };
    if n < min as i64 {
        errors.push(format!("Value '{n}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to {min}"));
        None
    } else if n > max as i64 {
        errors.push(format!("Value '{n}' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to {max}"));
        None
    } else {
        Some(n as u64)
    }
}

fn check_mfa_params(serial: Option<&str>, code: Option<&str>, errors: &mut Vec<String>) {
    if let Some(serial) = serial {
        check_length("serialNumber", serial, 9, 256, errors);
        check_pattern("serialNumber", serial, r"[\w+=/:,.@-]*", "+=/:,.@-", errors);
    }
    if let Some(code) = code {
        check_length("tokenCode", code, 6, 6, errors);
        if !code.chars().all(|c| c.is_ascii_digit()) {
            errors.push(format!("Value '{code}' at 'tokenCode' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\d]*"));
        }
    }
}

/// Checks `serial` + `code` for user `user`; returns the (serial, step) to consume on success.
fn check_mfa(
    state: &State,
    user: &str,
    serial: Option<&str>,
    code: Option<&str>,
) -> Result<(String, u64), StsError> {
    let user = state.config.user(user).ok_or_else(invalid_token)?;
    let Some(serial) = serial else {
        return Err(access_denied(msg::MFA_BAD_SERIAL));
    };
    let Some(device) = state
        .devices
        .get(serial)
        .filter(|d| d.user.as_deref() == Some(user.name.as_str()))
    else {
        return Err(access_denied(msg::MFA_BAD_SERIAL));
    };
    let Some(code) = code else {
        return Err(access_denied(msg::MFA_BAD_CODE));
    };
    let now_step = unix_now() / 30;
    let step = [now_step, now_step.saturating_sub(1), now_step + 1]
        .into_iter()
        .find(|step| totp_code(&device.seed_base32, step * 30) == code)
        .ok_or_else(|| access_denied(msg::MFA_BAD_CODE))?;
    let key = (serial.to_string(), step);
    if !state.reuse_codes && state.used_codes.contains(&key) {
        return Err(access_denied(msg::MFA_BAD_CODE));
    }
    Ok(key)
}

fn issue(
    state: &mut State,
    duration: u64,
    kind: Kind,
    mfa: bool,
    user: &str,
    role: Option<(String, String)>,
) -> (String, Temp) {
    let role_only = matches!(kind, Kind::Role)
        .then_some(state.role_lifetime_override)
        .flatten();
    let lifetime = role_only
        .or(state.config.lifetime_override)
        .unwrap_or(duration);
    let akid = format!("ASIA{}", random_string(UPPER_ALNUM, 16));
    let temp = Temp {
        secret: random_string(SECRET_CHARS, 40),
        token: base64(&random_bytes(240)),
        expires: SystemTime::now() + Duration::from_secs(lifetime),
        kind,
        mfa,
        user: user.to_string(),
        role,
    };
    state.temps.insert(akid.clone(), temp.clone());
    (akid, temp)
}

fn credentials_xml(akid: &str, temp: &Temp) -> String {
    format!(
        "<Credentials>\n      <AccessKeyId>{}</AccessKeyId>\n      <SecretAccessKey>{}</SecretAccessKey>\n      <SessionToken>{}</SessionToken>\n      <Expiration>{}</Expiration>\n    </Credentials>",
        esc(akid),
        esc(&temp.secret),
        esc(&temp.token),
        iso_format(temp.expires),
    )
}

/// An IAM-style reply: `Result` only when there is one (EnableMFADevice has none).
fn reply_xml_in(action: &str, result: Option<&str>, id: &str, namespace: &str) -> String {
    let result = result
        .map(|r| format!("\n  <{action}Result>\n    {r}\n  </{action}Result>"))
        .unwrap_or_default();
    format!(
        "<{action}Response xmlns=\"{namespace}\">{result}\n  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</{action}Response>\n",
        esc(id)
    )
}

fn reply_xml(action: &str, result: &str, id: &str) -> String {
    format!(
        "<{action}Response xmlns=\"{NAMESPACE}\">\n  <{action}Result>\n    {result}\n  </{action}Result>\n  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</{action}Response>\n",
        esc(id)
    )
}

fn error_xml(e: &StsError, id: &str) -> String {
    error_xml_in(e, id, NAMESPACE)
}

fn error_xml_in(e: &StsError, id: &str, namespace: &str) -> String {
    let kind = if e.status >= 500 {
        "Receiver"
    } else {
        "Sender"
    };
    format!(
        "<ErrorResponse xmlns=\"{namespace}\">\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{}</RequestId>\n</ErrorResponse>\n",
        esc(e.code),
        esc(&e.message),
        esc(id)
    )
}

/// XML-escapes text (`&`, `<`, `>`; the only attribute written is the namespace).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Reverses [`esc`] (and numeric character references).
pub fn unesc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let c = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

pub fn user_arn(name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:user/{name}")
}

pub fn assumed_role_arn(role: &str, session: &str) -> String {
    format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}")
}

/// A stable IAM-style unique id: `prefix` + 17 uppercase alphanumerics derived from `name`.
fn stable_id(prefix: &str, name: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{prefix}/{name}").as_bytes());
    let tail: String = digest
        .iter()
        .take(17)
        .map(|b| UPPER_ALNUM[*b as usize % UPPER_ALNUM.len()] as char)
        .collect();
    format!("{prefix}{tail}")
}

const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const SECRET_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("system randomness");
    bytes
}

fn random_string(alphabet: &[u8], n: usize) -> String {
    random_bytes(n)
        .into_iter()
        .map(|b| alphabet[b as usize % alphabet.len()] as char)
        .collect()
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A request id shaped like STS's (a UUID).
fn request_id() -> String {
    let b = random_bytes(16);
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

// ------------------------------------------------------------------------------------------
// IAM: a user's own virtual MFA device, as IAM's "self-manage MFA" policy allows it
// ------------------------------------------------------------------------------------------

/// The IAM user a request acts for: long-term keys, or a GetSessionToken session **with MFA**
/// (IAM refuses session credentials obtained without MFA, and the stand-in gives roles no IAM
/// permissions).
fn iam_user<'a>(caller: &'a Caller, action: &str) -> Result<&'a str, StsError> {
    match caller {
        Caller::User(u) => Ok(&u.name),
        Caller::Temp(t) if t.kind == Kind::Session && t.mfa => Ok(&t.user),
        Caller::Temp(t) if t.kind == Kind::Session => Err(access_denied(format!(
            "User: {} is not authorized to perform: iam:{action} because no identity-based policy allows the iam:{action} action with session credentials obtained without MFA",
            user_arn(&t.user)
        ))),
        Caller::Temp(..) => Err(access_denied(format!(
            "User: {} is not authorized to perform: iam:{action} because no identity-based policy allows the iam:{action} action",
            caller.arn()
        ))),
    }
}

fn iam_action(
    state: &mut State,
    caller: &Caller,
    params: &[(String, String)],
    action: &str,
    id: &str,
) -> Result<String, StsError> {
    const ACTIONS: [&str; 5] = [
        "CreateVirtualMFADevice",
        "EnableMFADevice",
        "ListMFADevices",
        "DeactivateMFADevice",
        "DeleteVirtualMFADevice",
    ];
    let version = param(params, "Version");
    if version != Some(IAM_VERSION) || !ACTIONS.contains(&action) {
        return Err(err(
            400,
            "InvalidAction",
            format!(
                "Could not find operation {action} for version {}",
                version.unwrap_or("NO_VERSION_SPECIFIED")
            ),
        ));
    }
    let me = iam_user(caller, action)?.to_string();
    let mut errors = Vec::new();
    let required = |name: &str, member: &str, errors: &mut Vec<String>| {
        let value = param(params, name);
        if value.is_none() {
            errors.push(null_error(member));
        }
        value.unwrap_or_default().to_string()
    };
    let not_authorized = |resource: &str| {
        access_denied(format!(
            "User: {} is not authorized to perform: iam:{action} on resource: {resource}",
            user_arn(&me)
        ))
    };
    match action {
        "CreateVirtualMFADevice" => {
            let name = required("VirtualMFADeviceName", "virtualMFADeviceName", &mut errors);
            if param(params, "VirtualMFADeviceName").is_some() {
                check_length("virtualMFADeviceName", &name, 1, 226, &mut errors);
                check_pattern(
                    "virtualMFADeviceName",
                    &name,
                    r"[\w+=,.@-]+",
                    "+=,.@-",
                    &mut errors,
                );
            }
            let path = param(params, "Path").unwrap_or("/").to_string();
            if !path.starts_with('/') || !path.ends_with('/') {
                errors.push(format!("Value '{path}' at 'path' failed to satisfy constraint: Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007F]+\\u002F)"));
            }
            if !errors.is_empty() {
                return Err(validation(&errors));
            }
            let serial = format!("arn:aws:iam::{ACCOUNT}:mfa{path}{name}");
            if state.devices.contains_key(&serial) {
                return Err(err(
                    409,
                    "EntityAlreadyExists",
                    "MFADevice entity at the same path and name already exists.",
                ));
            }
            let seed = random_string(BASE32, 64);
            // The content IAM's API reference gives for QRCodePNG.
            let png = qr_png(&format!("otpauth://totp/{name}@{ACCOUNT}?secret={seed}"));
            state.devices.insert(
                serial.clone(),
                Device {
                    seed_base32: seed.clone(),
                    user: None,
                    creator: me,
                    enabled_at: None,
                },
            );
            // Both blobs are base64 on the wire; the seed blob's bytes are the Base32 text.
            let result = format!(
                "<VirtualMFADevice>\n      <SerialNumber>{}</SerialNumber>\n      <Base32StringSeed>{}</Base32StringSeed>\n      <QRCodePNG>{}</QRCodePNG>\n    </VirtualMFADevice>",
                esc(&serial),
                base64(seed.as_bytes()),
                base64(&png)
            );
            Ok(reply_xml_in(action, Some(&result), id, IAM_NAMESPACE))
        }
        "EnableMFADevice" => {
            let user = required("UserName", "userName", &mut errors);
            let serial = required("SerialNumber", "serialNumber", &mut errors);
            let mut codes = Vec::new();
            for (name, member) in [
                ("AuthenticationCode1", "authenticationCode1"),
                ("AuthenticationCode2", "authenticationCode2"),
            ] {
                let code = required(name, member, &mut errors);
                if param(params, name).is_some() {
                    check_length(member, &code, 6, 6, &mut errors);
                    if !code.chars().all(|c| c.is_ascii_digit()) {
                        errors.push(format!("Value '{code}' at '{member}' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\d]+"));
                    }
                }
                codes.push(code);
            }
            if !errors.is_empty() {
                return Err(validation(&errors));
            }
            if state.config.user(&user).is_none() {
                return Err(err(
                    404,
                    "NoSuchEntity",
                    format!("The user with name {user} cannot be found."),
                ));
            }
            if user != me {
                return Err(not_authorized(&user_arn(&user)));
            }
            let Some(device) = state.devices.get(&serial) else {
                return Err(err(
                    404,
                    "NoSuchEntity",
                    format!("VirtualMFADevice with serial number {serial} doesn't exist."),
                ));
            };
            if device.user.is_some() {
                return Err(err(
                    409,
                    "EntityAlreadyExists",
                    "MFA Device is already in use.",
                ));
            }
            // Two consecutive codes, the second at most one step ahead of now; each code is
            // accepted once.
            let now = unix_now() / 30;
            let step = (now.saturating_sub(2)..=now).find(|s| {
                totp_code(&device.seed_base32, s * 30) == codes[0]
                    && totp_code(&device.seed_base32, (s + 1) * 30) == codes[1]
                    && !state.used_codes.contains(&(serial.clone(), *s))
                    && !state.used_codes.contains(&(serial.clone(), s + 1))
            });
            let Some(step) = step else {
                return Err(err(
                    403,
                    "InvalidAuthenticationCode",
                    "Authentication code for device is not valid.",
                ));
            };
            state.used_codes.insert((serial.clone(), step));
            state.used_codes.insert((serial.clone(), step + 1));
            let device = state.devices.get_mut(&serial).expect("found above");
            device.user = Some(user);
            device.enabled_at = Some(SystemTime::now());
            Ok(reply_xml_in(action, None, id, IAM_NAMESPACE))
        }
        "ListMFADevices" => {
            let user = param(params, "UserName").unwrap_or(&me).to_string();
            if user != me {
                return Err(not_authorized(&user_arn(&user)));
            }
            let members: String = state
                .devices
                .iter()
                .filter(|(_, d)| d.user.as_deref() == Some(user.as_str()))
                .map(|(serial, d)| {
                    format!(
                        "\n      <member>\n        <UserName>{}</UserName>\n        <SerialNumber>{}</SerialNumber>\n        <EnableDate>{}</EnableDate>\n      </member>",
                        esc(&user),
                        esc(serial),
                        iso_format(d.enabled_at.unwrap_or(UNIX_EPOCH))
                    )
                })
                .collect();
            let result = format!(
                "<IsTruncated>false</IsTruncated>\n    <MFADevices>{members}\n    </MFADevices>"
            );
            Ok(reply_xml_in(action, Some(&result), id, IAM_NAMESPACE))
        }
        "DeactivateMFADevice" => {
            let user = required("UserName", "userName", &mut errors);
            let serial = required("SerialNumber", "serialNumber", &mut errors);
            if !errors.is_empty() {
                return Err(validation(&errors));
            }
            // The self-manage policy denies this unless aws:MultiFactorAuthPresent.
            if !caller.temp().is_some_and(|t| t.mfa) {
                return Err(access_denied(format!(
                    "User: {} is not authorized to perform: iam:DeactivateMFADevice on resource: {} with an explicit deny in an identity-based policy",
                    user_arn(&me),
                    user_arn(&user)
                )));
            }
            if user != me {
                return Err(not_authorized(&user_arn(&user)));
            }
            match state.devices.get_mut(&serial) {
                Some(d) if d.user.as_deref() == Some(user.as_str()) => {
                    d.user = None;
                    d.enabled_at = None;
                    Ok(reply_xml_in(action, None, id, IAM_NAMESPACE))
                }
                _ => Err(err(
                    404,
                    "NoSuchEntity",
                    format!(
                        "MFA Device with serial number {serial} does not exist for user {user}."
                    ),
                )),
            }
        }
        _ => {
            // DeleteVirtualMFADevice
            let serial = required("SerialNumber", "serialNumber", &mut errors);
            if !errors.is_empty() {
                return Err(validation(&errors));
            }
            let Some(device) = state.devices.get(&serial) else {
                return Err(err(
                    404,
                    "NoSuchEntity",
                    format!("VirtualMFADevice with serial number {serial} doesn't exist."),
                ));
            };
            if device.user.is_some() {
                return Err(err(409, "DeleteConflict", "MFA device is still in use."));
            }
            if device.creator != me {
                return Err(not_authorized(&serial));
            }
            state.devices.remove(&serial);
            Ok(reply_xml_in(action, None, id, IAM_NAMESPACE))
        }
    }
}

const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A black-on-white PNG of the QR code of `text`: 4 pixels a module, 4 modules of quiet zone.
pub fn qr_png(text: &str) -> Vec<u8> {
    let code = qrcode::QrCode::new(text.as_bytes()).expect("text fits a QR code");
    let modules = code.width();
    let colors = code.to_colors();
    let (scale, quiet) = (4usize, 4usize);
    let side = (modules + 2 * quiet) * scale;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color == qrcode::Color::Dark {
            let (mx, my) = (i % modules + quiet, i / modules + quiet);
            for y in my * scale..(my + 1) * scale {
                pixels[y * side + mx * scale..y * side + (mx + 1) * scale].fill(0);
            }
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, side as u32, side as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().expect("PNG header");
    writer.write_image_data(&pixels).expect("PNG data");
    writer.finish().expect("PNG end");
    out
}

// ------------------------------------------------------------------------------------------
// S3 ListBuckets, for MFA-backed credentials only
// ------------------------------------------------------------------------------------------

fn s3_action(caller: &Caller, rq: &Incoming, action: &str) -> Result<String, StsError> {
    if action != "ListBuckets" {
        return Err(err(
            501,
            "NotImplemented",
            format!(
                "The stand-in's S3 only knows ListBuckets (GET /), not {} {}",
                rq.method, rq.url
            ),
        ));
    }
    // Like a policy with `"Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}`.
    if !caller.temp().is_some_and(|t| t.mfa) {
        return Err(access_denied("Access Denied"));
    }
    let buckets: String = BUCKETS
        .iter()
        .map(|b| {
            format!(
                "<Bucket><Name>{b}</Name><CreationDate>2026-01-01T00:00:00.000Z</CreationDate></Bucket>"
            )
        })
        .collect();
    Ok(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListAllMyBucketsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Owner><ID>{}</ID><DisplayName>demo</DisplayName></Owner><Buckets>{buckets}</Buckets></ListAllMyBucketsResult>",
        stable_id("", ACCOUNT).to_ascii_lowercase()
    ))
}

fn s3_error_xml(e: &StsError, id: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><RequestId>{}</RequestId><HostId>{}</HostId></Error>",
        esc(e.code),
        esc(&e.message),
        esc(id),
        esc(id)
    )
}

// ------------------------------------------------------------------------------------------
// A tiny signed client
// ------------------------------------------------------------------------------------------

/// Keys to sign with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl Keys {
    pub fn new(access_key_id: &str, secret_access_key: &str, session_token: Option<&str>) -> Keys {
        Keys {
            access_key_id: access_key_id.to_string(),
            secret_access_key: secret_access_key.to_string(),
            session_token: session_token.map(str::to_string),
        }
    }
}

/// An HTTP reply.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn is_ok(&self) -> bool {
        self.status == 200
    }

    /// Text of the first `<tag>…</tag>` element (unescaped).
    pub fn field(&self, tag: &str) -> Option<String> {
        xml_field(&self.body, tag)
    }

    /// `Error/Code` of an error reply.
    pub fn error_code(&self) -> Option<String> {
        self.field("Code")
    }

    /// `Error/Message` of an error reply.
    pub fn error_message(&self) -> Option<String> {
        self.field("Message")
    }

    /// The `Credentials` of a GetSessionToken or AssumeRole reply.
    pub fn credentials(&self) -> Option<Keys> {
        Some(Keys {
            access_key_id: self.field("AccessKeyId")?,
            secret_access_key: self.field("SecretAccessKey")?,
            session_token: Some(self.field("SessionToken")?),
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Text of the first `<tag>…</tag>` (or `<tag attr…>…</tag>`) element in `xml`, unescaped.
pub fn xml_field(xml: &str, tag: &str) -> Option<String> {
    let open_plain = format!("<{tag}>");
    let open_attr = format!("<{tag} ");
    let start = match (xml.find(&open_plain), xml.find(&open_attr)) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    let content_start = start + xml[start..].find('>')? + 1;
    let end = content_start + xml[content_start..].find(&format!("</{tag}>"))?;
    Some(unesc(&xml[content_start..end]))
}

/// Signs and POSTs `Action=action&Version=2011-06-15&params…` to `endpoint` as of now, in
/// us-east-1.
pub fn call(
    endpoint: &str,
    keys: &Keys,
    action: &str,
    params: &[(&str, &str)],
) -> io::Result<Reply> {
    call_service(endpoint, keys, SERVICE, VERSION, action, params)
}

/// Like [`call`] for another Query-protocol service: `call_service(url, keys, "iam",
/// IAM_VERSION, "CreateUser", …)`.
pub fn call_service(
    endpoint: &str,
    keys: &Keys,
    service: &str,
    version: &str,
    action: &str,
    params: &[(&str, &str)],
) -> io::Result<Reply> {
    let mut all = vec![("Action", action), ("Version", version)];
    all.extend_from_slice(params);
    signed_post(
        endpoint,
        keys,
        "us-east-1",
        service,
        SystemTime::now(),
        &form_body(&all),
    )
}

/// `a=1&b=2`, form-encoded.
pub fn form_body(params: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

/// The SigV4 headers (`x-amz-date`, `authorization`, `x-amz-security-token`) plus `host` and
/// `content-type` for a form POST of `body` to `endpoint`.
pub fn sign_post(
    endpoint: &str,
    keys: &Keys,
    region: &str,
    service: &str,
    time: SystemTime,
    body: &str,
) -> io::Result<Vec<(String, String)>> {
    let (_, path) = split_endpoint(endpoint)?;
    let content_type = ("content-type", FORM_CONTENT_TYPE);
    sign_request(
        "POST",
        endpoint,
        &path,
        &[content_type],
        body.as_bytes(),
        keys,
        region,
        service,
        time,
    )
}

/// Content type the SDKs send with Query-protocol requests.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// Signs any request with aws-sigv4 (default settings, as the AWS SDK for Rust does): returns
/// `headers`, `host` (the endpoint's authority) and the signing headers (`x-amz-date`,
/// `authorization`, `x-amz-security-token` when `keys` carry a token).
#[allow(clippy::too_many_arguments)]
pub fn sign_request(
    method: &str,
    endpoint: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    keys: &Keys,
    region: &str,
    service: &str,
    time: SystemTime,
) -> io::Result<Vec<(String, String)>> {
    let (authority, _) = split_endpoint(endpoint)?;
    let identity: Identity = Credentials::new(
        &keys.access_key_id,
        &keys.secret_access_key,
        keys.session_token.clone(),
        None,
        "sts-standin",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(io::Error::other)?
        .into();
    let mut base_headers: Vec<(&str, &str)> = headers.to_vec();
    base_headers.push(("host", authority.as_str()));
    let signable = SignableRequest::new(
        method,
        format!("http://{authority}{path_and_query}"),
        base_headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(io::Error::other)?;
    let (instructions, _) = sign(signable, &params)
        .map_err(io::Error::other)?
        .into_parts();
    let mut all: Vec<(String, String)> = base_headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    all.extend(
        instructions
            .headers()
            .map(|(n, v)| (n.to_string(), v.to_string())),
    );
    Ok(all)
}

/// S3 ListBuckets (`GET /`, signed for `s3` with the empty payload's hash) as of now.
pub fn list_buckets(endpoint: &str, keys: &Keys) -> io::Result<Reply> {
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let headers = sign_request(
        "GET",
        endpoint,
        "/",
        &[("x-amz-content-sha256", EMPTY_SHA256)],
        b"",
        keys,
        "us-east-1",
        "s3",
        SystemTime::now(),
    )?;
    http_request(endpoint, "GET", "/", &headers, b"")
}

/// Signs and POSTs a form `body`.
pub fn signed_post(
    endpoint: &str,
    keys: &Keys,
    region: &str,
    service: &str,
    time: SystemTime,
    body: &str,
) -> io::Result<Reply> {
    let headers = sign_post(endpoint, keys, region, service, time, body)?;
    let (_, path) = split_endpoint(endpoint)?;
    http_request(endpoint, "POST", &path, &headers, body.as_bytes())
}

/// `http://host:port/path` → (`host:port`, `/path`)
fn split_endpoint(endpoint: &str) -> io::Result<(String, String)> {
    let rest = endpoint.strip_prefix("http://").ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("only http:// endpoints are supported, not {endpoint}"),
        )
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("no host in {endpoint}"),
        ));
    }
    Ok((authority.to_string(), path.to_string()))
}

/// One plain HTTP/1.1 request (`Connection: close`) to the host of `endpoint`. `headers` are
/// sent as given (add `host` yourself if you want one; `content-length` is added).
pub fn http_request(
    endpoint: &str,
    method: &str,
    path_and_query: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> io::Result<Reply> {
    let (authority, _) = split_endpoint(endpoint)?;
    let addr = if authority.contains(':') {
        authority.clone()
    } else {
        format!("{authority}:80")
    };
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!("{method} {path_and_query} HTTP/1.1\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> io::Result<Reply> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of HTTP headers in the reply"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad HTTP status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        body = dechunk(&body).ok_or_else(|| bad("bad chunked body"))?;
    }
    Ok(Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}
