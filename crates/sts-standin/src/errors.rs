//! The errors the stand-in answers with, in AWS's words: the code, the HTTP status and the
//! message STS and IAM send, including the Query protocol's "N validation errors detected: …"
//! for parameters that break the service model's constraints.

/// Fixed messages of STS errors.
pub(crate) mod msg {
    pub const MISSING_AUTH: &str = "Request is missing Authentication Token";
    pub const INVALID_TOKEN: &str = "The security token included in the request is invalid.";
    pub const BAD_SIGNATURE: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
    pub const EXPIRED_TOKEN: &str = "The security token included in the request is expired";
    pub const MFA_BAD_SERIAL: &str = "MultiFactorAuthentication failed, unable to validate MFA code.  Please verify your MFA serial number is valid and associated with this user.";
    pub const MFA_BAD_CODE: &str =
        "MultiFactorAuthentication failed with invalid MFA one time pass code.";
    pub const GST_WITH_SESSION: &str = "Cannot call GetSessionToken with session credentials";
    pub const ROLE_MAX_DURATION: &str =
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.";
    pub const ROLE_CHAINING: &str = "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.";
    // Session tags, as STS answers (InvalidParameterValue, 400); recorded from AWS in
    // localstack's snapshot tests (tests/aws/services/sts/test_sts.snapshot.json).
    pub const TRANSITIVE_NOT_IN_TAGS: &str =
        "The specified transitive tag key must be included in the requested tags.";
    pub const DUPLICATE_TAG_KEYS: &str =
        "Duplicate tag keys found. Please note that Tag keys are case insensitive.";
    pub const TRANSITIVE_CONFLICT: &str = "One of the specified transitive tag keys can't be set because it conflicts with a transitive tag key from the calling session.";
}

/// An error reply: written in STS's shape, IAM's (another namespace) or S3's by the service the
/// request was signed for.
#[derive(Debug)]
pub(crate) struct StsError {
    pub(crate) status: u16,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

pub(crate) fn err(status: u16, code: &'static str, message: impl Into<String>) -> StsError {
    StsError {
        status,
        code,
        message: message.into(),
    }
}

pub(crate) fn access_denied(message: impl Into<String>) -> StsError {
    err(403, "AccessDenied", message)
}

pub(crate) fn invalid_token() -> StsError {
    err(403, "InvalidClientTokenId", msg::INVALID_TOKEN)
}

pub(crate) fn bad_signature() -> StsError {
    err(403, "SignatureDoesNotMatch", msg::BAD_SIGNATURE)
}

/// `N validation error(s) detected: a; b`
pub(crate) fn validation(errors: &[String]) -> StsError {
    let n = errors.len();
    let s = if n == 1 { "" } else { "s" };
    err(
        400,
        "ValidationError",
        format!("{n} validation error{s} detected: {}", errors.join("; ")),
    )
}

pub(crate) fn bad_signature_msg(message: String) -> StsError {
    err(403, "SignatureDoesNotMatch", message)
}

pub(crate) fn null_error(member: &str) -> String {
    format!("Value null at '{member}' failed to satisfy constraint: Member must not be null")
}

pub(crate) fn check_length(
    member: &str,
    value: &str,
    min: usize,
    max: usize,
    errors: &mut Vec<String>,
) {
    let n = value.chars().count();
    if n < min {
        errors.push(format!("Value '{value}' at '{member}' failed to satisfy constraint: Member must have length greater than or equal to {min}"));
    } else if n > max {
        errors.push(format!("Value '{value}' at '{member}' failed to satisfy constraint: Member must have length less than or equal to {max}"));
    }
}

/// `pattern` is what the message shows; a value passes if every char is `\w` or in `extra`.
pub(crate) fn check_pattern(
    member: &str,
    value: &str,
    pattern: &str,
    extra: &str,
    errors: &mut Vec<String>,
) {
    check_chars(
        member,
        value,
        pattern,
        |c| c.is_alphanumeric() || c == '_' || extra.contains(c),
        errors,
    );
}

/// Like [`check_pattern`] for a character class `ok` tells: the value passes if every char does.
pub(crate) fn check_chars(
    member: &str,
    value: &str,
    pattern: &str,
    ok: impl Fn(char) -> bool,
    errors: &mut Vec<String>,
) {
    if !value.chars().all(ok) {
        errors.push(format!("Value '{value}' at '{member}' failed to satisfy constraint: Member must satisfy regular expression pattern: {pattern}"));
    }
}

/// A list parameter longer than the service model allows. The message shows the list as
/// `[a, b, …]`: STS prints the value of a list in its own Java form, which the stand-in does not
/// copy, so compare such messages by their start and end only.
pub(crate) fn check_count(member: &str, items: &[String], max: usize, errors: &mut Vec<String>) {
    if items.len() > max {
        errors.push(format!(
            "Value '[{}]' at '{member}' failed to satisfy constraint: Member must have length less than or equal to {max}",
            items.join(", ")
        ));
    }
}
