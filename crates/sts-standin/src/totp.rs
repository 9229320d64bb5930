//! TOTP (RFC 6238), as virtual MFA devices and authenticator apps compute it: the code of a
//! 30-second step, from the Base32 seed IAM hands out.

use std::time::{SystemTime, UNIX_EPOCH};

/// RFC 6238 code (SHA1, 6 digits, 30 s steps) of a base32 seed at `unix_time`.
pub fn totp_code(seed_base32: &str, unix_time: u64) -> String {
    let secret = totp_rs::Secret::Encoded(seed_base32.to_string())
        .to_bytes()
        .expect("TOTP seed must be valid base32");
    totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, secret).generate(unix_time)
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}
