//! A tiny signed client, so that tests and the `sts-standin` binary can talk to the stand-in (or
//! to another endpoint) without the AWS SDK: SigV4 with aws-sigv4's default settings, as the AWS
//! SDK for Rust signs, over one plain HTTP/1.1 request.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use crate::request::{SERVICE, VERSION};
use crate::xml::xml_field;

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
    let mut base_headers: Vec<(&str, &str)> = headers.to_vec();
    base_headers.push(("host", authority.as_str()));
    // S3 signs the payload hash the client states in `x-amz-content-sha256` (a wrong one
    // included: S3 then refuses the body, not the signature); other services hash the body.
    let stated = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("x-amz-content-sha256"))
        .filter(|_| service == "s3")
        .map(|(_, v)| v.to_string());
    let signable_body = match stated {
        Some(hash) => SignableBody::Precomputed(hash),
        None => SignableBody::Bytes(body),
    };
    let mut settings = SigningSettings::default();
    if service == "s3" {
        // As the SDKs sign for S3: the path as sent, encoded once.
        settings.percent_encoding_mode = aws_sigv4::http_request::PercentEncodingMode::Single;
        settings.uri_path_normalization_mode =
            aws_sigv4::http_request::UriPathNormalizationMode::Disabled;
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(io::Error::other)?
        .into();
    let signable = SignableRequest::new(
        method,
        format!("http://{authority}{path_and_query}"),
        base_headers.iter().copied(),
        signable_body,
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

/// One S3 request signed as of now for us-east-1, path-style (`/bucket/key`): `content_sha256`
/// is what `x-amz-content-sha256` states (None: the body's hex SHA-256, as the SDKs send over
/// http), `headers` any others to sign (`content-type`, say).
pub fn s3_request(
    endpoint: &str,
    keys: &Keys,
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    content_sha256: Option<&str>,
    body: &[u8],
) -> io::Result<Reply> {
    use sha2::Digest;
    let hash = content_sha256.map(str::to_string).unwrap_or_else(|| {
        sha2::Sha256::digest(body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    });
    let mut all = headers.to_vec();
    all.push(("x-amz-content-sha256", &hash));
    let signed = sign_request(
        method,
        endpoint,
        path_and_query,
        &all,
        body,
        keys,
        "us-east-1",
        "s3",
        SystemTime::now(),
    )?;
    http_request(endpoint, method, path_and_query, &signed, body)
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
    if !body.is_empty() || method == "POST" || method == "PUT" {
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
