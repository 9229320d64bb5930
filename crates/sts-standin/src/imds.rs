//! An EC2 instance metadata service (IMDSv2) that hands out credentials of a role of the
//! stand-in's account, for profiles with `credential_source = Ec2InstanceMetadata`: a token
//! from `PUT /latest/api/token`, then, with it, the role's name and its credentials under
//! `/latest/meta-data/iam/security-credentials/`. The AWS SDKs point at it through
//! `AWS_EC2_METADATA_SERVICE_ENDPOINT`.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::state::Shared;
use crate::xml::iso_format;
use crate::StandIn;

/// The session token every PUT gets (IMDSv2 insists on one; its value is opaque).
const TOKEN: &str = "standin-imds-token-AQAEAE";
const CREDENTIALS: &str = "/latest/meta-data/iam/security-credentials/";

/// A running instance metadata service. Serves until dropped.
pub struct Imds {
    server: Arc<tiny_http::Server>,
    worker: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
    served: Arc<AtomicUsize>,
}

impl Imds {
    /// Serves credentials of `role` (a role of `standin`'s account), issued by `standin` so that
    /// it accepts them, on 127.0.0.1 at a free port.
    pub fn start(standin: &StandIn, role: &str) -> io::Result<Imds> {
        let server = tiny_http::Server::http("127.0.0.1:0").map_err(io::Error::other)?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| io::Error::other("not listening on an IP address"))?;
        let server = Arc::new(server);
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let shared = standin.shared();
        let role = role.to_string();
        let worker = {
            let (server, stop, served) =
                (Arc::clone(&server), Arc::clone(&stop), Arc::clone(&served));
            std::thread::Builder::new()
                .name("sts-standin-imds".into())
                .spawn(move || loop {
                    match server.recv() {
                        Ok(request) => answer(&shared, &role, &served, request),
                        Err(_) if stop.load(Ordering::SeqCst) => break,
                        Err(_) => continue,
                    }
                })?
        };
        Ok(Imds {
            server,
            worker: Some(worker),
            stop,
            addr,
            served,
        })
    }

    /// `http://127.0.0.1:PORT`, for `AWS_EC2_METADATA_SERVICE_ENDPOINT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many credentials it has handed out.
    pub fn credentials_served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }
}

impl Drop for Imds {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.server.unblock();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

fn answer(shared: &Shared, role: &str, served: &AtomicUsize, mut request: tiny_http::Request) {
    let header = |name: &str| {
        request
            .headers()
            .iter()
            .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str().to_string())
    };
    let method = request.method().as_str().to_ascii_uppercase();
    let url = request.url().to_string();
    let ttl = header("x-aws-ec2-metadata-token-ttl-seconds");
    let (status, body) = if method == "PUT" && url == "/latest/api/token" {
        match &ttl {
            Some(_) => (200, TOKEN.to_string()),
            None => (400, "Bad Request".to_string()),
        }
    } else if header("x-aws-ec2-metadata-token").as_deref() != Some(TOKEN) {
        (401, "Unauthorized".to_string())
    } else if method == "GET" && url == CREDENTIALS {
        (200, role.to_string())
    } else if method == "GET" && url.strip_prefix(CREDENTIALS) == Some(role) {
        let (akid, secret, token, expires) = {
            let mut state = shared.lock();
            crate::sts::role_credentials(&mut state, role, 6 * 3600)
        };
        served.fetch_add(1, Ordering::SeqCst);
        let doc = serde_json::json!({
            "Code": "Success",
            "LastUpdated": iso_format(std::time::SystemTime::now()),
            "Type": "AWS-HMAC",
            "AccessKeyId": akid,
            "SecretAccessKey": secret,
            "Token": token,
            "Expiration": iso_format(expires),
        });
        (200, doc.to_string())
    } else {
        (404, "Not Found".to_string())
    };
    let mut body_in = Vec::new();
    let _ = std::io::Read::read_to_end(request.as_reader(), &mut body_in);
    let mut response = tiny_http::Response::from_string(body).with_status_code(status);
    // IMDSv2 answers a token with its lifetime, and the SDKs insist on it.
    if let Some(ttl) = ttl.filter(|_| method == "PUT") {
        if let Ok(h) = tiny_http::Header::from_bytes(
            b"x-aws-ec2-metadata-token-ttl-seconds".as_slice(),
            ttl.as_bytes(),
        ) {
            response = response.with_header(h);
        }
    }
    let _ = request.respond(response);
}
