//! Checks of what users type or profiles hold, made before any network call: STS accepts
//! each MFA code once, so a mistake found here costs nothing, and one found by STS may cost a
//! code. The limits are STS's and IAM's own (lengths, character sets, ARN shapes).

use anyhow::{bail, Result};

/// An MFA code: six digits, as every TOTP device shows them.
pub(crate) fn validate_code(code: &str) -> Result<()> {
    if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        bail!("the MFA code must be exactly 6 digits (the current code of your MFA device)")
    }
}

const PARTITIONS: [&str; 3] = ["aws", "aws-cn", "aws-us-gov"];

/// `arn:<partition>:iam::<12-digit account>:<kind>/<name>`: the name. (Field by field with
/// `split_once`: `list` checks two ARNs a profile.)
fn iam_arn_parts<'a>(arn: &'a str, kind: &str) -> Option<&'a str> {
    let rest = arn.strip_prefix("arn:")?;
    let (partition, rest) = rest.split_once(':')?;
    let rest = rest.strip_prefix("iam::")?;
    let (account, resource) = rest.split_once(':')?;
    if !PARTITIONS.contains(&partition)
        || account.len() != 12
        || !account.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    resource
        .strip_prefix(kind)
        .and_then(|r| r.strip_prefix('/'))
        .filter(|name| !name.is_empty())
}

/// Whether every byte of `text` is an ASCII letter or digit or one of `others` (a test of
/// bytes: `list` checks every profile's serial and role ARNs).
fn only(text: &str, others: &[u8]) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || others.contains(&b))
}

pub(crate) fn validate_serial(serial: &str) -> Result<()> {
    let charset_ok = only(serial, b"_+=/:,.@-");
    let shape_ok = if serial.starts_with("arn:") {
        iam_arn_parts(serial, "mfa").is_some()
    } else {
        true
    };
    if (9..=256).contains(&serial.len()) && charset_ok && shape_ok {
        Ok(())
    } else {
        bail!("MFA serial '{serial}' is not valid: use the device ARN (arn:aws:iam::<account>:mfa/<device>) or a hardware serial like GAHT12345678")
    }
}

pub(crate) fn validate_role_arn(arn: &str) -> Result<()> {
    if (20..=2048).contains(&arn.len()) && iam_arn_parts(arn, "role").is_some() {
        Ok(())
    } else {
        bail!("role ARN '{arn}' is not valid: use arn:aws:iam::<12-digit account>:role/<name>")
    }
}

pub(crate) fn validate_session_name(name: &str) -> Result<()> {
    let ok = (2..=64).contains(&name.len()) && only(name, b"_+=,.@-");
    if ok {
        Ok(())
    } else {
        bail!("role session name '{name}' is not valid: 2–64 characters of letters, digits and _+=,.@-")
    }
}

pub(crate) fn validate_external_id(id: &str) -> Result<()> {
    let ok = (2..=1224).contains(&id.len()) && only(id, b"_+=,.@:/-");
    if ok {
        Ok(())
    } else {
        bail!("external id is not valid: 2–1224 characters of letters, digits and _+=,.@:/-")
    }
}

/// A region name (`us-east-1`, `cn-north-1`): anything else would become part of a host name.
pub(crate) fn validate_region(region: &str) -> Result<()> {
    let ok = !region.is_empty()
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        bail!("region '{region}' is not a region name like us-east-1; fix --region, AWS_REGION or the profile's region")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_exactly_six_digits() {
        assert!(validate_code("123456").is_ok());
        for bad in ["12345", "1234567", "12345a", " 123456", ""] {
            assert!(validate_code(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn arns_are_checked_for_shape() {
        assert!(validate_serial("arn:aws:iam::123456789012:mfa/alice").is_ok());
        assert!(validate_serial("GAHT12345678").is_ok());
        assert!(validate_serial("arn:aws:iam::1234:mfa/alice").is_err());
        assert!(validate_serial("arn:aws:iam::123456789012:role/x").is_err());
        assert!(validate_serial("short").is_err());
        assert!(validate_role_arn("arn:aws:iam::123456789012:role/path/x").is_ok());
        assert!(validate_role_arn("arn:aws-cn:iam::123456789012:role/x").is_ok());
        assert!(validate_role_arn("arn:aws:iam::123456789012:user/x").is_err());
        assert!(validate_role_arn("role/x").is_err());
        assert!(validate_session_name("ok-name").is_ok());
        assert!(validate_session_name("bad name").is_err());
        assert!(validate_external_id("partner-ext-id").is_ok());
        assert!(validate_external_id("x").is_err());
    }
}
