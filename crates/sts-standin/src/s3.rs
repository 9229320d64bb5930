//! S3, as far as `aws s3 ls` and `aws s3 cp` need it: ListBuckets (`GET /`), ListObjectsV2
//! (`GET /bucket?list-type=2`), PutObject (`PUT /bucket/key`), GetObject and HeadObject, on the
//! demo buckets, with objects kept in memory. Buckets are addressed path-style (what the SDKs do
//! with an IP endpoint such as the stand-in's) or virtual-hosted (`bucket.localhost:PORT`).
//!
//! Who may do what is decided as AWS does. Every request needs credentials that carry MFA, like a
//! bucket policy that denies when `aws:MultiFactorAuthPresent` is not true. A role session may
//! do only what its role's permission policies allow and, when it was scoped by session policies,
//! what they allow too; an explicit Deny in either wins ("Policy evaluation logic", IAM User
//! Guide). The demo's IAM users may do everything here. Refusals are S3's `AccessDenied` XML.

use std::time::SystemTime;

use crate::account::ACCOUNT;
use crate::errors::{access_denied, err, StsError};
use crate::ids::stable_id;
use crate::payload::{checked_body, hex, md5_digest};
use crate::policy::{decide, Decision};
use crate::request::{Incoming, Outgoing};
use crate::sigv4::Caller;
use crate::state::{State, StoredObject};
use crate::xml::esc;

/// The buckets of the demo account.
pub(crate) const BUCKETS: [&str; 2] = ["demo-reports", "demo-logs"];

/// S3's namespace for its XML replies.
const S3_NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// What a request asks of S3.
enum Op {
    ListBuckets,
    ListObjectsV2 { bucket: String },
    PutObject { bucket: String, key: String },
    GetObject { bucket: String, key: String },
    HeadObject { bucket: String, key: String },
    Unknown,
}

impl Op {
    fn of(rq: &Incoming) -> Op {
        let (bucket, key) = target(rq);
        let list_type = rq
            .query_params()
            .into_iter()
            .find(|(n, _)| n == "list-type")
            .map(|(_, v)| v);
        // A query string with a sub-resource (`?acl`, `?tagging`, `?uploads`…) is another
        // operation; `x-id` is what some SDKs add to name the one they call.
        let sub_resource = rq
            .query_params()
            .iter()
            .any(|(n, _)| !matches!(n.as_str(), "x-id"));
        match (rq.method.as_str(), bucket, key) {
            ("GET", None, None) if !sub_resource => Op::ListBuckets,
            ("GET", Some(bucket), None) if list_type.as_deref() == Some("2") => {
                Op::ListObjectsV2 { bucket }
            }
            ("PUT", Some(bucket), Some(key)) if !sub_resource => Op::PutObject { bucket, key },
            ("GET", Some(bucket), Some(key)) if !sub_resource => Op::GetObject { bucket, key },
            ("HEAD", Some(bucket), Some(key)) if !sub_resource => Op::HeadObject { bucket, key },
            _ => Op::Unknown,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Op::ListBuckets => "ListBuckets",
            Op::ListObjectsV2 { .. } => "ListObjectsV2",
            Op::PutObject { .. } => "PutObject",
            Op::GetObject { .. } => "GetObject",
            Op::HeadObject { .. } => "HeadObject",
            Op::Unknown => "",
        }
    }
}

/// The operation's name for the request counts (`ListBuckets`, `PutObject`…), or
/// `s3:METHOD /path` for one the stand-in does not know.
pub(crate) fn operation(rq: &Incoming) -> String {
    match Op::of(rq) {
        Op::Unknown => format!("s3:{} {}", rq.method, rq.path()),
        op => op.name().to_string(),
    }
}

/// (bucket, key) the request addresses: virtual-hosted when the Host starts with a demo
/// bucket's name, else path-style. The key is percent-decoded.
fn target(rq: &Incoming) -> (Option<String>, Option<String>) {
    let host = rq.header("host").unwrap_or("");
    let path = rq.path().trim_start_matches('/');
    let hosted = BUCKETS.iter().find(|b| {
        host.strip_prefix(**b)
            .is_some_and(|rest| rest.starts_with('.'))
    });
    let (bucket, key) = match hosted {
        Some(b) => (Some(b.to_string()), path),
        None => {
            let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
            ((!bucket.is_empty()).then(|| percent_decode(bucket)), key)
        }
    };
    (bucket, (!key.is_empty()).then(|| percent_decode(key)))
}

/// `%XX` → byte (S3 keys in a path are percent-encoded; `+` stays a plus).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Runs an S3 request (after authentication).
pub(crate) fn action(
    state: &mut State,
    caller: &Caller,
    rq: &Incoming,
) -> Result<Outgoing, StsError> {
    let op = Op::of(rq);
    if let Op::Unknown = op {
        return Err(err(
            501,
            "NotImplemented",
            format!(
                "The stand-in's S3 knows ListBuckets, ListObjectsV2, PutObject, GetObject and HeadObject, not {} {}",
                rq.method, rq.url
            ),
        ));
    }
    // Like a bucket policy with `"Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}`.
    if !caller.temp().is_some_and(|t| t.mfa) {
        return Err(access_denied("Access Denied"));
    }
    // S3 reads and checks the payload with the request's authentication.
    let body = checked_body(rq, caller.secret())?;
    match op {
        Op::ListBuckets => {
            authorize(state, caller, "s3:ListAllMyBuckets", "*")?;
            Ok(list_buckets())
        }
        Op::ListObjectsV2 { bucket } => {
            existing(&bucket)?;
            authorize(
                state,
                caller,
                "s3:ListBucket",
                &format!("arn:aws:s3:::{bucket}"),
            )?;
            Ok(list_objects_v2(state, rq, &bucket))
        }
        Op::PutObject { bucket, key } => {
            existing(&bucket)?;
            authorize(state, caller, "s3:PutObject", &object_arn(&bucket, &key))?;
            Ok(put_object(state, rq, bucket, key, body))
        }
        Op::GetObject { bucket, key } | Op::HeadObject { bucket, key } => {
            existing(&bucket)?;
            authorize(state, caller, "s3:GetObject", &object_arn(&bucket, &key))?;
            let Some(object) = state.objects.get(&(bucket.clone(), key.clone())) else {
                // S3 says NoSuchKey only to those who may list the bucket; others learn nothing.
                let list = authorize(
                    state,
                    caller,
                    "s3:ListBucket",
                    &format!("arn:aws:s3:::{bucket}"),
                );
                return Err(match list {
                    Ok(()) => err(404, "NoSuchKey", "The specified key does not exist."),
                    Err(denied) => denied,
                });
            };
            Ok(get_object(object))
        }
        Op::Unknown => unreachable!("refused above"),
    }
}

fn object_arn(bucket: &str, key: &str) -> String {
    format!("arn:aws:s3:::{bucket}/{key}")
}

fn existing(bucket: &str) -> Result<(), StsError> {
    if BUCKETS.contains(&bucket) {
        Ok(())
    } else {
        Err(err(
            404,
            "NoSuchBucket",
            "The specified bucket does not exist",
        ))
    }
}

/// Whether `caller` may do `action` on `resource`: a role session needs its role's permissions
/// and (when it has them) its session policies to allow it, and no Deny in either.
fn authorize(state: &State, caller: &Caller, action: &str, resource: &str) -> Result<(), StsError> {
    let Some(temp) = caller.temp() else {
        return Ok(());
    };
    let Some((role_name, _)) = &temp.role else {
        return Ok(());
    };
    let permissions = state
        .config
        .role(role_name)
        .map(|r| r.permissions.clone())
        .unwrap_or_default();
    let by_role = decide(&permissions, action, resource);
    let by_session = match &temp.session.scope {
        Some(scope) => decide(scope, action, resource),
        None => Decision::Allow,
    };
    if by_role == Decision::Allow && by_session == Decision::Allow {
        Ok(())
    } else {
        Err(access_denied("Access Denied"))
    }
}

fn list_buckets() -> Outgoing {
    let buckets: String = BUCKETS
        .iter()
        .map(|b| {
            format!(
                "<Bucket><Name>{b}</Name><CreationDate>2026-01-01T00:00:00.000Z</CreationDate></Bucket>"
            )
        })
        .collect();
    s3_xml(format!(
        "<ListAllMyBucketsResult xmlns=\"{S3_NAMESPACE}\"><Owner><ID>{}</ID><DisplayName>demo</DisplayName></Owner><Buckets>{buckets}</Buckets></ListAllMyBucketsResult>",
        stable_id("", ACCOUNT).to_ascii_lowercase()
    ))
}

fn s3_xml(body: String) -> Outgoing {
    let mut out = Outgoing::xml(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}"
    ));
    out.content_type = "application/xml".to_string();
    out
}

/// ListObjectsV2: `prefix`, `delimiter` (rolled up into CommonPrefixes), `max-keys` (1000 at
/// most), `start-after`, `continuation-token` (the stand-in's is the last key returned, in
/// hex) and `encoding-type=url` (keys percent-encoded in the reply; the AWS CLI asks for it).
fn list_objects_v2(state: &State, rq: &Incoming, bucket: &str) -> Outgoing {
    let q = rq.query_params();
    let get = |name: &str| q.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    let prefix = get("prefix").unwrap_or_default();
    let delimiter = get("delimiter").filter(|d| !d.is_empty());
    let max_keys: usize = get("max-keys")
        .and_then(|m| m.parse().ok())
        .unwrap_or(1000)
        .min(1000);
    let url = get("encoding-type").as_deref() == Some("url");
    let token = get("continuation-token");
    let start_after = get("start-after");
    let after = token
        .as_deref()
        .and_then(unhex)
        .or_else(|| start_after.clone());
    let enc = |s: &str| if url { url_encode(s) } else { esc(s) };

    // Keys in UTF-8 binary order, as S3 lists them; a delimiter rolls keys up to one prefix.
    let mut entries: Vec<(String, Option<&StoredObject>)> = Vec::new();
    for ((b, key), object) in &state.objects {
        if b != bucket || !key.starts_with(&prefix) || after.as_ref().is_some_and(|a| key <= a) {
            continue;
        }
        let rolled = delimiter.as_ref().and_then(|d| {
            key[prefix.len()..]
                .find(d.as_str())
                .map(|i| key[..prefix.len() + i + d.len()].to_string())
        });
        match rolled {
            Some(common) => {
                if entries.last().map(|(k, o)| (k.as_str(), o.is_none())) != Some((&common, true)) {
                    entries.push((common, None));
                }
            }
            None => entries.push((key.clone(), Some(object))),
        }
    }
    let truncated = entries.len() > max_keys;
    entries.truncate(max_keys);
    let mut contents = String::new();
    let mut common = String::new();
    for (key, object) in &entries {
        match object {
            Some(o) => contents.push_str(&format!(
                "<Contents><Key>{}</Key><LastModified>{}</LastModified><ETag>{}</ETag><Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
                enc(key),
                iso_millis(o.last_modified),
                esc(&o.etag).replace('"', "&quot;"),
                o.body.len()
            )),
            None => common.push_str(&format!(
                "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
                enc(key)
            )),
        }
    }
    let mut head = format!("<Name>{bucket}</Name><Prefix>{}</Prefix>", enc(&prefix));
    if let Some(d) = &delimiter {
        head.push_str(&format!("<Delimiter>{}</Delimiter>", enc(d)));
    }
    head.push_str(&format!("<MaxKeys>{max_keys}</MaxKeys>"));
    if url {
        head.push_str("<EncodingType>url</EncodingType>");
    }
    head.push_str(&format!(
        "<KeyCount>{}</KeyCount><IsTruncated>{truncated}</IsTruncated>",
        entries.len()
    ));
    if let Some(t) = &token {
        head.push_str(&format!(
            "<ContinuationToken>{}</ContinuationToken>",
            esc(t)
        ));
    }
    if truncated {
        if let Some((last, _)) = entries.last() {
            head.push_str(&format!(
                "<NextContinuationToken>{}</NextContinuationToken>",
                hex(last.as_bytes())
            ));
        }
    }
    if let Some(s) = &start_after {
        head.push_str(&format!("<StartAfter>{}</StartAfter>", enc(s)));
    }
    s3_xml(format!(
        "<ListBucketResult xmlns=\"{S3_NAMESPACE}\">{head}{contents}{common}</ListBucketResult>"
    ))
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

/// Percent-encodes all but unreserved characters and `/` (what botocore decodes back).
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `2026-01-01T00:00:00.000Z`, S3's timestamps in XML.
fn iso_millis(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn put_object(
    state: &mut State,
    rq: &Incoming,
    bucket: String,
    key: String,
    body: Vec<u8>,
) -> Outgoing {
    let etag = format!("\"{}\"", hex(&md5_digest(&body)));
    let content_type = rq
        .header("content-type")
        .unwrap_or("binary/octet-stream")
        .to_string();
    let object = StoredObject {
        bucket: bucket.clone(),
        key: key.clone(),
        body,
        content_type,
        etag: etag.clone(),
        last_modified: SystemTime::now(),
    };
    state.objects.insert((bucket, key), object);
    Outgoing {
        status: 200,
        content_type: "application/xml".to_string(),
        body: Vec::new(),
        headers: vec![("ETag".to_string(), etag)],
    }
}

/// GetObject's reply (HeadObject's too: the server sends no body for HEAD).
fn get_object(object: &StoredObject) -> Outgoing {
    Outgoing {
        status: 200,
        content_type: object.content_type.clone(),
        body: object.body.clone(),
        headers: vec![
            ("ETag".to_string(), object.etag.clone()),
            (
                "Last-Modified".to_string(),
                httpdate::fmt_http_date(object.last_modified),
            ),
            ("Accept-Ranges".to_string(), "bytes".to_string()),
        ],
    }
}

/// S3's error reply (unlike STS's and IAM's, no namespace and no `Type`).
pub(crate) fn error_xml(e: &StsError, id: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><RequestId>{}</RequestId><HostId>{}</HostId></Error>",
        esc(e.code),
        esc(&e.message),
        esc(id),
        esc(id)
    )
}
