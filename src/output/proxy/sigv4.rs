//! SigV4 both ways for `--proxy`: the command's request is checked against the run's own secret
//! exactly as AWS checks a signature (the canonical request rebuilt from what arrived), and then
//! signed again with the real credentials by the SDK's own signer (`aws-sigv4`).
//!
//! AWS's rules kept here (IAM User Guide, "Create a signed AWS API request"; S3 API reference,
//! "Authenticating Requests (AWS Signature Version 4)"): the canonical URI is the path as sent
//! for S3 and the path encoded once more for every other service; the query is sorted by
//! encoded name and value; only the headers listed in SignedHeaders count, values trimmed
//! with inner runs of spaces made one; the payload hash is `x-amz-content-sha256` when sent
//! (S3 requires it) else the body's SHA-256; a header signature is good for 15 minutes either
//! side of its X-Amz-Date, a presigned URL until X-Amz-Expires (at most 7 days) has passed.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::reply::Refusal;
use crate::aws::signin::percent_encode;
use crate::secrets::Credentials;

pub(super) const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far a header signature's time may be from ours (AWS's RequestTimeTooSkewed).
const SKEW: Duration = Duration::from_secs(15 * 60);
/// A presigned URL's longest life (AWS refuses X-Amz-Expires above it).
const MAX_EXPIRES: u64 = 604_800;
/// The SHA-256 of no bytes, in the chunk and trailer strings to sign.
pub(super) const EMPTY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// What a request's signature says about it.
#[derive(Debug, Clone)]
pub(super) struct Signature {
    pub(super) access_key: String,
    /// `YYYYMMDD/region/service/aws4_request`'s parts.
    pub(super) date: String,
    pub(super) region: String,
    pub(super) service: String,
    /// X-Amz-Date, `YYYYMMDDTHHMMSSZ`.
    pub(super) amz_date: String,
    pub(super) signed_headers: Vec<String>,
    pub(super) signature: String,
    /// In the query string (a presigned URL) rather than in `Authorization`.
    pub(super) presigned: bool,
    pub(super) expires: Option<u64>,
}

impl Signature {
    pub(super) fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// The signature of a request: its `Authorization` header or its presigned query.
pub(super) fn parse(parts: &Parts) -> Result<Signature, Refusal> {
    if let Some(value) = parts.headers.get(http::header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| Refusal::malformed("the Authorization header is not text"))?;
        return parse_header(value, parts);
    }
    let query = query_pairs(parts.uri.query().unwrap_or(""));
    let get = |name: &str| {
        query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    match get("X-Amz-Signature") {
        Some(signature) => {
            if get("X-Amz-Algorithm") != Some(ALGORITHM) {
                return Err(Refusal::malformed(
                    "X-Amz-Algorithm must be AWS4-HMAC-SHA256",
                ));
            }
            let credential = get("X-Amz-Credential")
                .ok_or_else(|| Refusal::malformed("X-Amz-Credential is missing"))?;
            let amz_date =
                get("X-Amz-Date").ok_or_else(|| Refusal::malformed("X-Amz-Date is missing"))?;
            let signed = get("X-Amz-SignedHeaders")
                .ok_or_else(|| Refusal::malformed("X-Amz-SignedHeaders is missing"))?;
            let expires = get("X-Amz-Expires")
                .and_then(|e| e.parse::<u64>().ok())
                .filter(|e| *e <= MAX_EXPIRES)
                .ok_or_else(|| {
                    Refusal::malformed("X-Amz-Expires must be a number of seconds up to 604800")
                })?;
            build(credential, signed, signature, amz_date, true, Some(expires))
        }
        // Signature Version 2's query form, which botocore still presigns S3 URLs with unless
        // told `signature_version = s3v4`: HMAC-SHA1 of a different string, not re-signed here.
        None if get("AWSAccessKeyId").is_some() && get("Signature").is_some() => Err(
            Refusal::malformed("Signature Version 2 URLs (AWSAccessKeyId=…&Signature=…) are not accepted; presign with SigV4 (boto3: Config(signature_version='s3v4'); in ~/.aws/config, `signature_version = s3v4` under `s3 =`)"),
        ),
        None => Err(Refusal::Unsigned),
    }
}

/// `AWS4-HMAC-SHA256 Credential=AKIA…/20261207/us-east-1/sts/aws4_request,
/// SignedHeaders=host;x-amz-date, Signature=hex`
fn parse_header(value: &str, parts: &Parts) -> Result<Signature, Refusal> {
    let rest = value
        .strip_prefix(ALGORITHM)
        .filter(|r| r.starts_with(' '))
        .ok_or_else(|| Refusal::malformed("only AWS4-HMAC-SHA256 signatures are accepted"))?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for field in rest.split(',') {
        let (name, v) = field.trim().split_once('=').unwrap_or(("", ""));
        match name {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => {}
        }
    }
    let (Some(credential), Some(signed), Some(signature)) = (credential, signed, signature) else {
        return Err(Refusal::malformed(
            "the Authorization header needs Credential, SignedHeaders and Signature",
        ));
    };
    let amz_date = parts
        .headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Refusal::malformed("X-Amz-Date is missing"))?;
    build(credential, signed, signature, amz_date, false, None)
}

fn build(
    credential: &str,
    signed: &str,
    signature: &str,
    amz_date: &str,
    presigned: bool,
    expires: Option<u64>,
) -> Result<Signature, Refusal> {
    let fields: Vec<&str> = credential.split('/').collect();
    let [access_key, date, region, service, "aws4_request"] = fields[..] else {
        return Err(Refusal::malformed(
            "the credential scope must be KEY/DATE/REGION/SERVICE/aws4_request",
        ));
    };
    // The region and service become the forwarded request's host name
    // (`service.region.amazonaws.com`): a dot, `?` or `/` in either would let the command
    // choose where the real signature and token go.
    if crate::settings::validate::validate_region(region).is_err() {
        return Err(Refusal::malformed(
            "the credential scope's region is not a region name like us-east-1",
        ));
    }
    if service.is_empty()
        || !service
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(Refusal::malformed(
            "the credential scope's service is not a service signing name like s3 or sts",
        ));
    }
    if !amz_date.starts_with(date) {
        return Err(Refusal::malformed(
            "the credential scope's date is not X-Amz-Date's",
        ));
    }
    let signed_headers: Vec<String> = signed.split(';').map(str::to_string).collect();
    if !signed_headers.iter().any(|h| h == "host") {
        return Err(Refusal::malformed("the host header must be signed"));
    }
    Ok(Signature {
        access_key: access_key.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        amz_date: amz_date.to_string(),
        signed_headers,
        signature: signature.to_ascii_lowercase(),
        presigned,
        expires,
    })
}

/// Checks the signature with the run's key pair; `payload_hash` is what the canonical request
/// ends with (the header's value, or the body's SHA-256).
pub(super) fn verify(
    parts: &Parts,
    sig: &Signature,
    payload_hash: &str,
    key_id: &str,
    secret: &str,
    now: SystemTime,
) -> Result<(), Refusal> {
    let signed_at = check_key_and_time(sig, key_id, now)?;
    let canonical = canonical_request(parts, sig, payload_hash)?;
    let expected = sign_string(
        secret,
        signed_at,
        sig,
        &format!(
            "{ALGORITHM}\n{}\n{}\n{}",
            sig.amz_date,
            sig.scope(),
            hex(&Sha256::digest(canonical.as_bytes()))
        ),
    );
    if bool::from(expected.as_bytes().ct_eq(sig.signature.as_bytes())) {
        Ok(())
    } else {
        Err(Refusal::BadSignature)
    }
}

/// What can be checked before the body is read: the access key is the run's, and the
/// signature's time is within AWS's window (a header signature 15 minutes either side of
/// X-Amz-Date, so an old one cannot be replayed; a presigned URL from its X-Amz-Date, give or
/// take the same skew, until X-Amz-Expires has passed). Returns the signature's time.
pub(super) fn check_key_and_time(
    sig: &Signature,
    key_id: &str,
    now: SystemTime,
) -> Result<SystemTime, Refusal> {
    if !bool::from(sig.access_key.as_bytes().ct_eq(key_id.as_bytes())) {
        return Err(Refusal::UnknownKey);
    }
    let signed_at = parse_amz_date(&sig.amz_date)
        .ok_or_else(|| Refusal::malformed("X-Amz-Date is not YYYYMMDDTHHMMSSZ"))?;
    match sig.expires {
        Some(expires) => {
            // AWS refuses a presigned URL that is not valid yet ("Request is not valid yet").
            if signed_at > now + SKEW {
                return Err(Refusal::NotYetValid);
            }
            if now > signed_at + Duration::from_secs(expires) {
                return Err(Refusal::Expired);
            }
        }
        None => {
            let off = now
                .duration_since(signed_at)
                .or_else(|e| Ok::<_, ()>(e.duration()))
                .unwrap_or_default();
            if off > SKEW {
                return Err(Refusal::Skewed);
            }
        }
    }
    Ok(signed_at)
}

/// HMAC-SHA256 of `string` with the signing key derived from `secret` for the signature's
/// date, region and service, in hex.
pub(super) fn sign_string(secret: &str, at: SystemTime, sig: &Signature, string: &str) -> String {
    let key = v4::generate_signing_key(secret, at, &sig.region, &sig.service);
    v4::calculate_signature(key, string.as_bytes())
}

/// The canonical request, as the signer built it.
fn canonical_request(
    parts: &Parts,
    sig: &Signature,
    payload_hash: &str,
) -> Result<String, Refusal> {
    let path = match parts.uri.path() {
        "" => "/",
        p => p,
    };
    // S3 signs the path as sent; the other services sign it normalised (dot segments and
    // empty segments removed, as botocore and aws-sigv4 do before signing) and encoded once
    // more.
    let uri = if sig.service == "s3" {
        path.to_string()
    } else {
        encode_path(&normalize_path(path))
    };
    let mut query: Vec<(String, String)> = query_pairs(parts.uri.query().unwrap_or(""))
        .into_iter()
        .filter(|(n, _)| !(sig.presigned && n == "X-Amz-Signature"))
        .map(|(n, v)| (percent_encode(&n), percent_encode(&v)))
        .collect();
    query.sort();
    let query = query
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut headers = String::new();
    for name in &sig.signed_headers {
        let values: Vec<String> = parts
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|v| {
                v.to_str()
                    .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
                    .map_err(|_| Refusal::malformed("a signed header is not text"))
            })
            .collect::<Result<_, _>>()?;
        if values.is_empty() {
            return Err(Refusal::malformed("a signed header is missing"));
        }
        headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    Ok(format!(
        "{}\n{uri}\n{query}\n{headers}\n{}\n{payload_hash}",
        parts.method,
        sig.signed_headers.join(";")
    ))
}

/// A path as the SDKs' signers normalise it for every service but S3 (RFC 3986's
/// remove-dot-segments, and consecutive slashes made one, which AWS services require):
/// `/a//b/./c/../d/` becomes `/a/b/d/`.
fn normalize_path(path: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                kept.pop();
            }
            s => kept.push(s),
        }
    }
    let lead = if path.starts_with('/') { "/" } else { "" };
    let trail = if path.ends_with('/') && !kept.is_empty() {
        "/"
    } else {
        ""
    };
    format!("{lead}{}{trail}", kept.join("/"))
}

/// The query's name/value pairs, percent-decoded (a `+` stays a plus, as AWS reads it).
pub(super) fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(n), decode(v))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hexpair = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hexpair) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A path encoded segment by segment, its slashes kept.
fn encode_path(path: &str) -> String {
    path.split('/')
        .map(percent_encode)
        .collect::<Vec<_>>()
        .join("/")
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `YYYYMMDDTHHMMSSZ` as a time.
pub(super) fn parse_amz_date(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// How the forwarded request's payload is signed.
pub(super) enum Payload<'a> {
    /// `x-amz-content-sha256` as the command sent it (a hex hash, UNSIGNED-PAYLOAD or a
    /// STREAMING-… form): kept, and signed as the header S3 wants.
    Declared(&'a str),
    /// The body itself, read whole (services other than S3 send small bodies).
    Bytes(&'a [u8]),
}

/// Signs `request` (its headers as they will be sent, Host the target's) with the real
/// credentials, in place; returns the signature (the seed of a chunked body's signatures).
pub(super) fn resign<B>(
    request: &mut http::Request<B>,
    creds: &Credentials,
    region: &str,
    service: &str,
    payload: Payload<'_>,
    now: SystemTime,
) -> Result<String, String> {
    let identity = aws_credential_types::Credentials::new(
        &creds.access_key_id,
        &creds.secret_access_key,
        Some(creds.session_token.clone()).filter(|t| !t.is_empty()),
        None,
        "mfa-exec-proxy",
    )
    .into();
    let mut settings = SigningSettings::default();
    if service == "s3" {
        // S3 signs the path as sent, never normalised.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    }
    let body = match payload {
        Payload::Declared(hash) => {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
            SignableBody::Precomputed(hash.to_string())
        }
        Payload::Bytes(bytes) => SignableBody::Bytes(bytes),
    };
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let uri = request.uri().to_string();
    let headers: Vec<(&str, &str)> = request
        .headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)))
        .collect();
    let signable = SignableRequest::new(request.method().as_str(), uri, headers.into_iter(), body)
        .map_err(|e| e.to_string())?;
    let (instructions, signature) = aws_sigv4::http_request::sign(signable, &params)
        .map_err(|e| e.to_string())?
        .into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().method(method).uri(uri);
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    /// The AWS SigV4 test suite's `get-vanilla-query-order-key-case` (service, region, date and
    /// keys from the suite; AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY).
    #[test]
    fn the_sigv4_suites_vanilla_query_verifies_and_a_changed_one_does_not() {
        let headers = [
            ("host", "example.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
            ("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
        ];
        let p = parts("GET", "/?Param2=value2&Param1=value1", &headers);
        let sig = parse(&p).unwrap();
        assert_eq!(sig.service, "service");
        let at = parse_amz_date("20150830T123600Z").unwrap();
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        verify(&p, &sig, EMPTY_SHA256, "AKIDEXAMPLE", secret, at).unwrap();
        let changed = parts("GET", "/?Param2=value2&Param1=value3", &headers);
        assert!(matches!(
            verify(&changed, &sig, EMPTY_SHA256, "AKIDEXAMPLE", secret, at),
            Err(Refusal::BadSignature)
        ));
        assert!(matches!(
            verify(&p, &sig, EMPTY_SHA256, "AKIDEXAMPLE", "wrong", at),
            Err(Refusal::BadSignature)
        ));
        assert!(matches!(
            verify(&p, &sig, EMPTY_SHA256, "AKIDOTHER", secret, at),
            Err(Refusal::UnknownKey)
        ));
        assert!(matches!(
            verify(
                &p,
                &sig,
                EMPTY_SHA256,
                "AKIDEXAMPLE",
                secret,
                at + SKEW + Duration::from_secs(1)
            ),
            Err(Refusal::Skewed)
        ));
    }

    #[test]
    fn what_the_proxy_signs_it_can_verify() {
        let creds = Credentials {
            access_key_id: "AKIAFAKEFAKEFAKEFAKE".into(),
            secret_access_key: "secret/with+chars".into(),
            session_token: String::new(),
            expiration: 0,
            issued: 0,
        };
        let now = SystemTime::now();
        for (service, path) in [("s3", "/bucket/a%20key%2Bplus"), ("sts", "/a%20b")] {
            let mut request = http::Request::builder()
                .method("PUT")
                .uri(format!("http://127.0.0.1:9/{}?b=2&a=1%2F", &path[1..]))
                .header("host", "127.0.0.1:9")
                .header("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
                .body(())
                .unwrap();
            resign(
                &mut request,
                &creds,
                "eu-west-1",
                service,
                Payload::Declared("UNSIGNED-PAYLOAD"),
                now,
            )
            .unwrap();
            let (p, ()) = request.into_parts();
            let sig = parse(&p).unwrap();
            verify(
                &p,
                &sig,
                "UNSIGNED-PAYLOAD",
                "AKIAFAKEFAKEFAKEFAKE",
                "secret/with+chars",
                now,
            )
            .unwrap_or_else(|e| panic!("{service}: {e:?}"));
        }
    }

    #[test]
    fn a_header_signature_is_good_for_15_minutes_either_side_and_no_longer() {
        let sig = |amz: &str, expires: Option<u64>| Signature {
            access_key: "AKIDEXAMPLE".into(),
            date: amz[..8].into(),
            region: "us-east-1".into(),
            service: "s3".into(),
            amz_date: amz.into(),
            signed_headers: vec!["host".into()],
            signature: String::new(),
            presigned: expires.is_some(),
            expires,
        };
        let at = parse_amz_date("20150830T123600Z").unwrap();
        let header = sig("20150830T123600Z", None);
        let check = |s: &Signature, now| check_key_and_time(s, "AKIDEXAMPLE", now);
        assert!(check(&header, at + SKEW).is_ok());
        assert!(check(&header, at - SKEW).is_ok());
        // An old signature replayed, and one from the future.
        let minute = Duration::from_secs(60);
        assert_eq!(check(&header, at + SKEW + minute), Err(Refusal::Skewed));
        assert_eq!(check(&header, at - SKEW - minute), Err(Refusal::Skewed));
        // A presigned URL: valid from its date (give or take the skew) until it expires.
        let url = sig("20150830T123600Z", Some(3600));
        assert!(check(&url, at + Duration::from_secs(3600)).is_ok());
        assert!(check(&url, at - SKEW).is_ok());
        assert_eq!(
            check(&url, at + Duration::from_secs(3601)),
            Err(Refusal::Expired)
        );
        assert_eq!(check(&url, at - SKEW - minute), Err(Refusal::NotYetValid));
        let far = sig("20160830T123600Z", Some(604_800));
        assert_eq!(check(&far, at), Err(Refusal::NotYetValid));
    }

    #[test]
    fn the_credential_scope_names_a_plain_service_and_region() {
        let with = |credential: &str| {
            let header = format!(
                "AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host;x-amz-date, Signature=00"
            );
            parse(&parts(
                "GET",
                "/",
                &[
                    ("host", "127.0.0.1:9"),
                    ("x-amz-date", "20150830T123600Z"),
                    ("authorization", &header),
                ],
            ))
        };
        assert!(with("AKID/20150830/us-east-1/execute-api/aws4_request").is_ok());
        for bad in [
            "AKID/20150830/us-east-1/abc123.execute-api/aws4_request",
            "AKID/20150830/us-east-1/S3/aws4_request",
            "AKID/20150830/x.evil.example?/s3/aws4_request",
            "AKID/20150830/evil.example#/s3/aws4_request",
            "AKID/20150830//s3/aws4_request",
        ] {
            assert!(
                matches!(with(bad), Err(Refusal::Malformed(_))),
                "{bad} was accepted"
            );
        }
    }

    #[test]
    fn non_s3_paths_are_normalised_as_the_sdks_sign_them() {
        assert_eq!(normalize_path("/a//b/./c/../d/"), "/a/b/d/");
        assert_eq!(normalize_path("/"), "/");
        assert_eq!(normalize_path("//"), "/");
        assert_eq!(normalize_path("/../a"), "/a");
        assert_eq!(normalize_path("/a/b"), "/a/b");
        // What aws-sigv4 signs for such a path, the proxy verifies.
        let creds = Credentials {
            access_key_id: "AKIAFAKEFAKEFAKEFAKE".into(),
            secret_access_key: "s".into(),
            session_token: String::new(),
            expiration: 0,
            issued: 0,
        };
        let now = SystemTime::now();
        let mut request = http::Request::builder()
            .method("GET")
            .uri("http://127.0.0.1:9/2015-03-31//functions/./f/../g/")
            .header("host", "127.0.0.1:9")
            .body(())
            .unwrap();
        resign(
            &mut request,
            &creds,
            "eu-west-1",
            "lambda",
            Payload::Bytes(b""),
            now,
        )
        .unwrap();
        let (p, ()) = request.into_parts();
        let sig = parse(&p).unwrap();
        verify(&p, &sig, EMPTY_SHA256, "AKIAFAKEFAKEFAKEFAKE", "s", now).unwrap();
    }

    #[test]
    fn amz_dates_read_as_utc() {
        let t = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_440_938_160
        );
        assert!(parse_amz_date("2015-08-30T12:36:00Z").is_none());
    }
}
