//! The secret values mfa-exec handles: the keys that sign an MFA call, and the temporary
//! credentials the cache stores, STS returns and every output mode hands on. Debug never prints
//! a secret. A leaf below everything that moves credentials (the cache, the AWS calls, the
//! settings that find the source keys), so none of them imports from a step above it.

use serde::{Deserialize, Serialize};

use crate::clock::{now, rfc3339};

/// Keys mfa-exec can sign with directly: an IAM user's long-term keys, or keys that are
/// ready to use as they are (from the environment or a profile).
#[derive(Clone)]
pub(crate) struct StaticKeys {
    pub(crate) access_key_id: String,
    pub(crate) secret_access_key: String,
    pub(crate) session_token: Option<String>,
}

/// Temporary AWS credentials. Debug never shows the secret or the token.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Credentials {
    pub(crate) access_key_id: String,
    pub(crate) secret_access_key: String,
    pub(crate) session_token: String,
    /// Unix seconds.
    pub(crate) expiration: u64,
    /// Unix seconds when they were obtained (0 in entries written before this was kept):
    /// with the expiration, their lifetime, which bounds the refresh margin.
    #[serde(default)]
    pub(crate) issued: u64,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    pub(crate) fn from_sdk(c: Option<aws_sdk_sts::types::Credentials>) -> Option<Credentials> {
        let c = c?;
        Some(Credentials {
            expiration: u64::try_from(c.expiration.secs()).ok()?,
            issued: now(),
            access_key_id: c.access_key_id,
            secret_access_key: c.secret_access_key,
            session_token: c.session_token,
        })
    }

    /// RFC 3339 in UTC, as `AWS_CREDENTIAL_EXPIRATION` and credential_process want it.
    pub(crate) fn expiration_rfc3339(&self) -> String {
        rfc3339(self.expiration)
    }

    /// Seconds left, 0 once expired.
    pub(crate) fn seconds_left(&self) -> u64 {
        self.expiration.saturating_sub(now())
    }

    /// Whether they are still good for `margin` seconds. The margin is capped at half their
    /// lifetime: with credentials shorter than the margin (a 15-minute role and a 10-minute
    /// margin, say) every use would otherwise fetch new ones. Saturating arithmetic, so no
    /// margin, however large, makes expired credentials fresh.
    pub(crate) fn fresh_for(&self, margin: u64) -> bool {
        let margin = if self.issued > 0 && self.issued < self.expiration {
            margin.min((self.expiration - self.issued) / 2)
        } else {
            margin
        };
        self.expiration > now().saturating_add(margin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(issued: u64, expiration: u64) -> Credentials {
        Credentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: "secret".into(),
            session_token: "token".into(),
            expiration,
            issued,
        }
    }

    #[test]
    fn no_margin_makes_expired_credentials_fresh() {
        let t = now();
        for margin in [0, 1, 300, u64::MAX / 2, i64::MAX as u64 + 1, u64::MAX] {
            assert!(!creds(t - 100, t - 1).fresh_for(margin), "{margin}");
            assert!(!creds(0, t - 1).fresh_for(margin), "{margin}");
            assert!(!creds(0, 0).fresh_for(margin), "{margin}");
        }
    }

    #[test]
    fn the_margin_is_at_most_half_the_lifetime() {
        let t = now();
        // 3-second credentials with a 5-minute margin: fresh for their first half.
        assert!(creds(t, t + 3).fresh_for(300));
        assert!(!creds(t - 2, t + 1).fresh_for(300));
        // An hour with the default margin: the margin holds.
        assert!(creds(t - 3000, t + 600).fresh_for(300));
        assert!(!creds(t - 3400, t + 200).fresh_for(300));
        // Unknown lifetime (an older entry): the margin as given.
        assert!(!creds(0, t + 200).fresh_for(300));
    }
}
