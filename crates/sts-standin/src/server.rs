//! The running stand-in: a tiny_http server on 127.0.0.1 whose worker threads take each
//! request, authenticate it (SigV4) and hand it to STS, IAM or S3 by the service it was signed
//! for, under one lock on the account's state. [`StandIn`] is what tests hold: it reports the
//! calls it has seen (AssumeRole's session parameters as received, the sessions issued, the S3
//! objects put) and the codes of its MFA devices, and stops when dropped.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crate::account::Config;
use crate::client::{call, call_service, Keys, Reply};
use crate::errors::{err, StsError};
use crate::iam::{self, IAM_VERSION};
use crate::ids::request_id;
use crate::request::{param, Incoming, Outgoing, SERVICE};
use crate::sigv4::{authenticate, parse_authorization};
use crate::state::{
    AccessKey, AssumedRole, Device, Hook, KeyStatus, Session, Shared, Signed, State, StoredObject,
    When,
};
use crate::totp::{totp_code, unix_now};
use crate::xml::{error_xml, error_xml_in};
use crate::{federation, s3, sts};

/// Worker threads taking requests off tiny_http's queue (connections have their own threads).
const WORKERS: usize = 16;
/// Largest request body read: above the AWS CLI's 8 MiB multipart threshold (and its chunk
/// framing), below which `aws s3 cp` sends one PutObject, and above the 200 MB upload that
/// `--proxy`'s memory test streams through (S3's own limit for one PutObject is 5 GB).
const MAX_BODY: u64 = 256 << 20;

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
        let access_keys = config
            .users
            .iter()
            .map(|u| {
                let key = AccessKey {
                    secret: u.secret_access_key.clone(),
                    user: u.name.clone(),
                    status: KeyStatus::Active,
                    created: SystemTime::now(),
                    usable_from: SystemTime::now(),
                };
                (u.access_key_id.clone(), key)
            })
            .collect();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                access_keys,
                new_key_delay: Duration::ZERO,
                not_allowed: HashSet::new(),
                throttled: HashMap::new(),
                devices,
                config,
                temps: HashMap::new(),
                used_codes: HashSet::new(),
                reuse_codes: false,
                latency: Duration::ZERO,
                role_lifetime_override: None,
                calls: BTreeMap::new(),
                total: 0,
                signed: Vec::new(),
                signin_tokens: HashMap::new(),
                console_sessions: HashMap::new(),
                session_durations: Vec::new(),
                assumed_roles: Vec::new(),
                objects: BTreeMap::new(),
            }),
            stop: AtomicBool::new(false),
            log: AtomicBool::new(false),
            hooks: Mutex::new(Vec::new()),
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

    /// How every signed request so far was signed (action, key, region, service), in order.
    pub fn requests(&self) -> Vec<Signed> {
        self.shared.lock().signed.clone()
    }

    /// The regions the requests with this `Action` were signed for, in order.
    pub fn regions_of(&self, action: &str) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|s| s.action == action)
            .map(|s| s.region)
            .collect()
    }

    /// Who an access key belongs to, for tests that assert which key signed a call:
    /// `user/NAME` for long-term keys, `session/NAME` for an MFA session (GetSessionToken),
    /// `role/NAME` for a role session; None for a key the stand-in does not know.
    pub fn key_owner(&self, access_key_id: &str) -> Option<String> {
        let state = self.shared.lock();
        if let Some(k) = state.access_keys.get(access_key_id) {
            return Some(format!("user/{}", k.user));
        }
        let temp = state.temps.get(access_key_id)?;
        Some(match &temp.role {
            Some((role, _)) => format!("role/{role}"),
            None => format!("session/{}", temp.user),
        })
    }

    /// Every temporary credential issued so far (GetSessionToken, AssumeRole…), as the keys a
    /// client got: for tests that assert none of them reached somewhere it must not.
    pub fn issued(&self) -> Vec<Keys> {
        let state = self.shared.lock();
        state
            .temps
            .iter()
            .map(|(id, t)| Keys::new(id, &t.secret, Some(&t.token)))
            .collect()
    }

    /// The session name of a role session's access key (`RoleSessionName`), if it is one.
    pub fn role_session_of(&self, access_key_id: &str) -> Option<String> {
        let state = self.shared.lock();
        state
            .temps
            .get(access_key_id)?
            .role
            .as_ref()
            .map(|r| r.1.clone())
    }

    /// Who signed each request with this `Action`, in order (see [`StandIn::key_owner`]).
    pub fn signers_of(&self, action: &str) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|s| s.action == action)
            .map(|s| {
                self.key_owner(&s.access_key_id)
                    .unwrap_or_else(|| format!("unknown/{}", s.access_key_id))
            })
            .collect()
    }

    pub(crate) fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    /// The `SessionDuration` of every getSigninToken request so far, in order (None: not sent).
    pub fn session_durations(&self) -> Vec<Option<String>> {
        self.shared.lock().session_durations.clone()
    }

    /// Every AssumeRole request so far, in order, with its session parameters as received
    /// (`Policy`, `PolicyArns`, `Tags`, `TransitiveTagKeys`, `SourceIdentity`) and the error
    /// code it was refused with, if it was.
    pub fn assumed_roles(&self) -> Vec<AssumedRole> {
        self.shared.lock().assumed_roles.clone()
    }

    /// What the role session of `access_key_id` carries (session policies, tags including
    /// inherited transitive ones, transitive keys, source identity); None for a key that is not
    /// a role session's.
    pub fn session(&self, access_key_id: &str) -> Option<Session> {
        let state = self.shared.lock();
        let temp = state.temps.get(access_key_id)?;
        temp.role.as_ref().map(|_| temp.session.clone())
    }

    /// The S3 objects put so far, by bucket and key.
    pub fn objects(&self) -> Vec<StoredObject> {
        self.shared.lock().objects.values().cloned().collect()
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

    /// Access keys made by CreateAccessKey from now on are refused (InvalidClientTokenId) for
    /// this long after their creation, as IAM's eventual consistency can do.
    pub fn set_new_key_delay(&self, delay: Duration) {
        self.shared.lock().new_key_delay = delay;
    }

    /// The access keys of user `name` as ListAccessKeys has them: (id, status), oldest first.
    pub fn access_keys(&self, name: &str) -> Vec<(String, KeyStatus)> {
        let state = self.shared.lock();
        let mut keys: Vec<(&String, &AccessKey)> = state
            .access_keys
            .iter()
            .filter(|(_, k)| k.user == name)
            .collect();
        keys.sort_by_key(|(id, k)| (k.created, (*id).clone()));
        keys.into_iter()
            .map(|(id, k)| (id.clone(), k.status))
            .collect()
    }

    /// Whether GetCallerIdentity signed by this key pair succeeds now, and as whom.
    pub fn caller_with(&self, access_key_id: &str, secret: &str) -> Option<String> {
        let reply = self.call(
            &Keys::new(access_key_id, secret, None),
            "GetCallerIdentity",
            &[],
        );
        (reply.status == 200).then(|| reply.field("Arn").unwrap_or_default())
    }

    /// User `name`'s policies no longer allow IAM action `action` (`CreateAccessKey`, say):
    /// IAM answers AccessDenied, "no identity-based policy allows" it.
    pub fn disallow(&self, name: &str, action: &str) {
        self.shared
            .lock()
            .not_allowed
            .insert((name.to_string(), action.to_string()));
    }

    /// The next `times` requests of `action` are answered as AWS answers a client over its
    /// request rate: HTTP 400 `Throttling`, "Rate exceeded".
    pub fn throttle(&self, action: &str, times: usize) {
        self.shared
            .lock()
            .throttled
            .insert(action.to_string(), times);
    }

    /// Gives the user `name` a second access key (as if made in the console), returning its id
    /// and secret.
    pub fn add_access_key(&self, name: &str) -> (String, String) {
        add_access_key(&self.shared, name)
    }

    /// The user `name` makes a key in the console once, just as a request with this `Action`
    /// arrives or has been answered (a person acting while a rotation runs).
    pub fn add_access_key_on(&self, action: &str, when: When, name: &str) {
        let shared = Arc::clone(&self.shared);
        let name = name.to_string();
        self.on(action, when, move || {
            add_access_key(&shared, &name);
        });
    }

    /// Runs `hook` once, when a request with this `Action` arrives or has been answered (a test
    /// kills the client there).
    pub fn on(&self, action: &str, when: When, hook: impl FnOnce() + Send + 'static) {
        self.shared
            .hooks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Hook {
                action: action.to_string(),
                when,
                run: Box::new(hook),
            });
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
    let path = incoming.path();
    if path == "/federation" || path.starts_with("/console") {
        let page = federation::respond(shared, &incoming);
        let mut response = tiny_http::Response::from_data(page.body.into_bytes())
            .with_status_code(page.status)
            .with_header(header("Content-Type", page.content_type));
        for (name, value) in &page.headers {
            response = response.with_header(header(name, value));
        }
        let _ = request.respond(response);
        return;
    }
    let (reply, request_id, action) = if read.is_err() {
        let id = request_id();
        let e = err(400, "MalformedInput", "Could not read the request body");
        (
            failure(e.status, "text/xml", error_xml(&e, &id)),
            id,
            String::new(),
        )
    } else {
        respond(shared, &incoming)
    };
    // Always Content-Length, never chunked (tiny_http chunks above 32 KiB): S3 answers
    // GetObject and HeadObject with the object's length, and botocore reads it.
    let mut response = tiny_http::Response::from_data(reply.body)
        .with_chunked_threshold(usize::MAX)
        .with_status_code(reply.status)
        .with_header(header("Content-Type", &reply.content_type));
    for (name, value) in &reply.headers {
        response = response.with_header(header(name, value));
    }
    if !request_id.is_empty() {
        response = response.with_header(header("x-amzn-RequestId", &request_id));
        // S3's name for it.
        response = response.with_header(header("x-amz-request-id", &request_id));
    }
    // Done, and the answer not yet sent: a hook that kills the client here leaves what AWS
    // did done with the client never told (after the answer, the client might finish first).
    shared.run_hooks(&action, When::Answered);
    // tiny_http sends HEAD's headers (Content-Length included) without the body.
    let _ = request.respond(response);
}

/// A new active key of user `name`, usable at once, as the console makes it.
fn add_access_key(shared: &Shared, name: &str) -> (String, String) {
    let mut state = shared.lock();
    let (id, secret) = iam::new_access_key();
    let now = SystemTime::now();
    state.access_keys.insert(
        id.clone(),
        AccessKey {
            secret: secret.clone(),
            user: name.to_string(),
            status: KeyStatus::Active,
            created: now,
            usable_from: now,
        },
    );
    (id, secret)
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("valid header")
}

/// An error reply's body as an [`Outgoing`].
fn failure(status: u16, content_type: &str, body: String) -> Outgoing {
    Outgoing {
        status,
        content_type: content_type.to_string(),
        body: body.into_bytes(),
        headers: Vec::new(),
    }
}

/// (reply, request id, action)
fn respond(shared: &Shared, rq: &Incoming) -> (Outgoing, String, String) {
    let path = rq.path();
    if path == "/_standin/calls" {
        let state = shared.lock();
        let json = serde_json::to_string(&state.calls).expect("JSON of counts");
        return (
            failure(200, "application/json", json),
            String::new(),
            String::new(),
        );
    }

    let id = request_id();
    let params = rq.params();
    // Which service the request was signed for decides the reply's shape (errors included).
    let authorization = rq
        .header("authorization")
        .and_then(|a| parse_authorization(a).ok());
    let service = authorization
        .as_ref()
        .map(|a| a.service.clone())
        .unwrap_or_else(|| SERVICE.to_string());
    let action = if service == "s3" {
        s3::operation(rq)
    } else {
        param(&params, "Action").unwrap_or("").to_string()
    };

    shared.run_hooks(&action, When::Received);
    let mut state = shared.lock();
    *state.calls.entry(action.clone()).or_insert(0) += 1;
    state.total += 1;
    let result = match state.throttled.get_mut(&action) {
        Some(left) if *left > 0 => {
            *left -= 1;
            Err(err(400, "Throttling", "Rate exceeded"))
        }
        _ => serve(&mut state, rq, &params, &action, &service, &id),
    };
    if let Some(a) = authorization {
        state.signed.push(Signed {
            action: action.clone(),
            access_key_id: a.access_key_id,
            region: a.region,
            service: a.service,
            status: result.as_ref().map_or_else(|e| e.status, |_| 200),
            payload: rq.header("x-amz-content-sha256").map(String::from),
        });
    }
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
    let reply = match result {
        Ok(reply) => reply,
        Err(e) if service == "s3" => failure(e.status, "application/xml", s3::error_xml(&e, &id)),
        Err(e) if service == "iam" => {
            failure(e.status, "text/xml", error_xml_in(&e, &id, iam::NAMESPACE))
        }
        Err(e) => failure(e.status, "text/xml", error_xml(&e, &id)),
    };
    (reply, id, action)
}

/// Authenticates a request and runs its action.
fn serve(
    state: &mut State,
    rq: &Incoming,
    params: &[(String, String)],
    action: &str,
    service: &str,
    id: &str,
) -> Result<Outgoing, StsError> {
    // The Query protocol takes GET and POST; S3 also PUT and HEAD.
    let s3_method = service == "s3" && matches!(rq.method.as_str(), "PUT" | "HEAD");
    if rq.method != "POST" && rq.method != "GET" && !s3_method {
        return Err(err(
            405,
            "InvalidHttpRequest",
            format!("The HTTP method {} is not supported", rq.method),
        ));
    }
    // The one STS call that is not signed: the web identity token is the credential.
    if action == "AssumeRoleWithWebIdentity" && rq.header("authorization").is_none() {
        return sts::assume_role_with_web_identity(state, params, id).map(Outgoing::xml);
    }
    let (caller, service) = authenticate(state, rq)?;
    match service.as_str() {
        "iam" => iam::action(state, &caller, params, action, id).map(Outgoing::xml),
        "s3" => s3::action(state, &caller, rq),
        _ => sts::action(state, &caller, params, action, id).map(Outgoing::xml),
    }
}
