//! Who signed a request: SigV4 checked the way STS checks it. The access key must be known (a
//! user's long-term key, or issued temporary credentials with their own session token), the
//! `X-Amz-Date` within 15 minutes of now, the credential scope well formed, and the signature
//! equal to the one aws-sigv4 computes from the request as received, with the caller's secret.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

use crate::account::{assumed_role_arn, user_arn, User};
use crate::errors::{bad_signature, bad_signature_msg, err, invalid_token, msg, StsError};
use crate::ids::stable_id;
use crate::request::{Incoming, SERVICE};
use crate::state::{KeyStatus, State, Temp};
use crate::xml::iso_format;

/// Allowed clock skew between `X-Amz-Date` and now.
const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// Who signed a request.
#[derive(Clone, Debug)]
pub(crate) enum Caller {
    /// An IAM user, with long-term keys.
    User(User),
    /// Temporary credentials the stand-in issued.
    Temp(Temp),
}

impl Caller {
    /// The IAM user at the root of the chain.
    pub(crate) fn user_name(&self) -> &str {
        match self {
            Caller::User(u) => &u.name,
            Caller::Temp(t) => &t.user,
        }
    }

    pub(crate) fn arn(&self) -> String {
        match self {
            Caller::User(u) => u.arn(),
            Caller::Temp(t) => match &t.role {
                Some((role, session)) => assumed_role_arn(role, session),
                None => user_arn(&t.user),
            },
        }
    }

    pub(crate) fn user_id(&self) -> String {
        match self {
            Caller::User(u) => stable_id("AIDA", &u.name),
            Caller::Temp(t) => match &t.role {
                Some((role, session)) => format!("{}:{session}", stable_id("AROA", role)),
                None => stable_id("AIDA", &t.user),
            },
        }
    }

    /// The secret the caller signs with (chunk signatures are checked with it).
    pub(crate) fn secret(&self) -> &str {
        match self {
            Caller::User(u) => &u.secret_access_key,
            Caller::Temp(t) => &t.secret,
        }
    }

    pub(crate) fn temp(&self) -> Option<&Temp> {
        match self {
            Caller::User(_) => None,
            Caller::Temp(t) => Some(t),
        }
    }
}

pub(crate) struct Authorization {
    pub(crate) access_key_id: String,
    date: String,
    pub(crate) region: String,
    pub(crate) service: String,
    signed_headers: Vec<String>,
    signature: String,
}

pub(crate) fn parse_authorization(value: &str) -> Result<Authorization, StsError> {
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

impl Authorization {
    pub(crate) fn signature(&self) -> &str {
        &self.signature
    }
}

/// X-Amz-Date as a time, for the payload's chunk signatures.
pub(crate) fn parse_amz_date_pub(s: &str) -> Option<SystemTime> {
    parse_amz_date(s)
}

/// Who signed, and for which service (`sts`, `iam` or `s3`).
pub(crate) fn authenticate(state: &State, rq: &Incoming) -> Result<(Caller, String), StsError> {
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
    let (caller, secret) = if let Some(key) = state.access_keys.get(&auth.access_key_id) {
        // IAM refuses an inactive key, and a new one until it has reached every endpoint
        // (eventual consistency), with the same words as an unknown one.
        if token.is_some() || key.status != KeyStatus::Active || SystemTime::now() < key.usable_from
        {
            return Err(invalid_token());
        }
        let Some(user) = state.config.user(&key.user) else {
            return Err(invalid_token());
        };
        let mut user = user.clone();
        user.access_key_id = auth.access_key_id.clone();
        user.secret_access_key = key.secret.clone();
        (Caller::User(user), key.secret.clone())
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
pub(crate) fn amz_format(t: SystemTime) -> String {
    iso_format(t).replace(['-', ':'], "")
}
