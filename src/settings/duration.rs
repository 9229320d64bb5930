//! Durations as users write them (`3600`, `90m`, `12h`) and as messages show them, and the
//! lifetimes STS allows.

use anyhow::{anyhow, bail, Result};

/// GetSessionToken's DurationSeconds range: 15 minutes to 36 hours.
pub(crate) const SESSION_DURATION_RANGE: (u64, u64) = (900, 129_600);
/// AssumeRole's DurationSeconds range; the role's own maximum may be lower.
pub(crate) const ROLE_DURATION_RANGE: (u64, u64) = (900, 43_200);
/// STS caps a role assumed with session or role credentials (role chaining) at one hour.
pub(crate) const CHAINED_ROLE_MAX: u64 = 3600;
/// Default lifetime of the MFA session that roles are assumed from.
pub(crate) const DEFAULT_SESSION_DURATION: u64 = 12 * 3600;
pub(crate) const DEFAULT_MIN_REMAINING: u64 = 5 * 60;
/// No STS credentials live longer than GetSessionToken's 36 hours, so a larger margin means
/// nothing (and once wrapped through a signed cast and made expired entries "fresh").
pub(crate) const MAX_MIN_REMAINING: u64 = SESSION_DURATION_RANGE.1;

/// Seconds, or a humantime duration (`90m`, `12h`, `1h30m`).
pub(crate) fn parse_duration(text: &str, what: &str) -> Result<u64> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(secs);
    }
    humantime::parse_duration(text)
        .map(|d| d.as_secs())
        .map_err(|_| {
            anyhow!(
                "{what} '{text}' is not a duration: use seconds (3600) or a value like 90m or 12h"
            )
        })
}

/// `3600` → `1h`, `5400` → `1h30m`, for messages.
pub(crate) fn human_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

pub(crate) fn check_range(value: u64, lo: u64, hi: u64, what: &str, flag: &str) -> Result<()> {
    if value < lo || value > hi {
        bail!(
            "{what} must be between {} and {} ({lo}–{hi} seconds), not {}; fix {flag} or the profile",
            human_duration(lo),
            human_duration(hi),
            human_duration(value)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_seconds_or_human_units() {
        assert_eq!(parse_duration("3600", "d").unwrap(), 3600);
        assert_eq!(parse_duration("90m", "d").unwrap(), 5400);
        assert_eq!(parse_duration("12h", "d").unwrap(), 43200);
        assert_eq!(parse_duration("1h30m", "d").unwrap(), 5400);
        assert!(parse_duration("soon", "d").is_err());
        assert_eq!(human_duration(5400), "1h30m");
        assert_eq!(human_duration(900), "15m");
    }
}
