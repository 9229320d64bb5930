//! S3 ListBuckets, for MFA-backed credentials only: like a bucket policy with
//! `"Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}`, it tells credentials that
//! carry MFA from those that do not.

use crate::account::ACCOUNT;
use crate::errors::{access_denied, err, StsError};
use crate::ids::stable_id;
use crate::request::Incoming;
use crate::sigv4::Caller;
use crate::xml::esc;

/// The buckets ListBuckets shows.
pub(crate) const BUCKETS: [&str; 2] = ["demo-reports", "demo-logs"];

/// Runs S3 action `action` (`ListBuckets`, the only one; after authentication).
pub(crate) fn action(caller: &Caller, rq: &Incoming, action: &str) -> Result<String, StsError> {
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
