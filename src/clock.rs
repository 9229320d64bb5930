//! Time as credentials count it: unix seconds now, and RFC 3339 in UTC, the form STS,
//! `AWS_CREDENTIAL_EXPIRATION` and credential_process use. A leaf.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds now (0 if the clock is before 1970, which only makes things look expired).
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Unix seconds as RFC 3339 in UTC (`2026-01-02T03:04:05Z`); empty if out of range.
pub(crate) fn rfc3339(unix: u64) -> String {
    use aws_sdk_sts::primitives::{DateTime, DateTimeFormat};
    let Ok(secs) = i64::try_from(unix) else {
        return String::new();
    };
    DateTime::from_secs(secs)
        .fmt(DateTimeFormat::DateTime)
        .unwrap_or_default()
}
