//! One vocabulary for AWS failures, STS's, IAM's and the console federation endpoint's alike: each becomes a [`FailureKind`] that
//! callers branch on (a refused code re-prompts, an unknown signer gets a new MFA session, a
//! device name taken is explained) and one line that says what to do.
//!
//! The SDK's own texts are never shown whole: some (a malformed endpoint, say) print the
//! request, MFA code included. Each case is said in words of our own; what AWS said is quoted
//! only from its error message, which names ARNs and account ids but never secrets.

use aws_sdk_sts::config::http::HttpResponse;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};

use crate::settings::duration::{human_duration, CHAINED_ROLE_MAX, ROLE_DURATION_RANGE};

/// Why an AWS call failed, where a caller branches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// A wrong, expired or already used MFA code (STS), or codes IAM did not accept for a new
    /// device: a fresh code may succeed.
    InvalidCode,
    /// The signing keys are unknown or expired (a revoked MFA session, say).
    BadSigner,
    /// IAM: the name is taken (a device of that name exists).
    AlreadyExists,
    /// IAM: no such entity (a device that is gone).
    NoSuchEntity,
    /// The keys are not an IAM user's (root, a role session, a federated user), so there is no
    /// user to own a device.
    NotAUser,
    Other,
}

/// A failed AWS call: its kind and one line that says what to do.
#[derive(Debug)]
pub(crate) struct AwsFailure {
    pub(crate) kind: FailureKind,
    pub(crate) message: String,
    /// The service answered with an error of the client's (HTTP 4xx with an AWS error code:
    /// AccessDenied, LimitExceeded, Throttling…): it did not do what was asked. False for a
    /// lost answer, a timeout or a 5xx, after which the request may have been carried out.
    pub(crate) refused: bool,
}

impl AwsFailure {
    pub(crate) fn new(kind: FailureKind, message: String) -> AwsFailure {
        AwsFailure {
            kind,
            message,
            refused: false,
        }
    }

    pub(crate) fn other(message: String) -> AwsFailure {
        AwsFailure::new(FailureKind::Other, message)
    }
}

impl std::fmt::Display for AwsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AwsFailure {}

/// The call that failed, for messages.
pub(crate) struct Call<'a> {
    /// "STS" or "IAM".
    pub(crate) service: &'static str,
    pub(crate) op: &'a str,
    /// Where requests go (a configured endpoint, else AWS's).
    pub(crate) endpoint: &'a str,
    /// Which keys sign: "access key AKIA… from profile base".
    pub(crate) signer: &'a str,
    /// The MFA device of an MFA call.
    pub(crate) serial: &'a str,
    /// The role of an AssumeRole.
    pub(crate) role: &'a str,
    /// The options and profile keys that scoped an AssumeRole (`--read-only`, `session_tags
    /// in [profile x]`); empty when nothing did.
    pub(crate) scope: &'a str,
}

/// Turns an SDK error into a kind and one line that says what to do.
pub(crate) fn explain<E>(err: SdkError<E, HttpResponse>, call: &Call<'_>) -> AwsFailure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let refused = matches!(
        &err,
        SdkError::ServiceError(se)
            if se.err().code().is_some() && se.raw().status().is_client_error()
    );
    AwsFailure {
        refused,
        ..described(err, call)
    }
}

fn described<E>(err: SdkError<E, HttpResponse>, call: &Call<'_>) -> AwsFailure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let Call {
        service,
        op,
        endpoint,
        signer,
        serial,
        role,
        scope,
    } = *call;
    let other = AwsFailure::other;
    // The source credentials (credential_process, SSO, IMDS…) failing to load surfaces as
    // a dispatch or construction failure; say what it is, not "cannot reach STS".
    if let Some(cause) = credentials_error(&err) {
        return source_failure(cause, signer);
    }
    let (code, message) = match &err {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            match se.err().code() {
                Some(code) => (
                    code.to_string(),
                    se.err().message().unwrap_or("").to_string(),
                ),
                // No AWS error in the body: a proxy's or load balancer's page, or an
                // endpoint that is not this service.
                None => return other(bare_status(call, status)),
            }
        }
        SdkError::ResponseError(re) => {
            return other(format!(
                "{service} at {endpoint} answered {op} with HTTP {} and a body that is not an {service} response; is the endpoint really {service}? (check AWS_ENDPOINT_URL / endpoint_url)",
                re.raw().status().as_u16()
            ))
        }
        SdkError::DispatchFailure(df) => {
            let why = if df.is_timeout() {
                "the connection timed out".to_string()
            } else if df.is_user() {
                "the request could not be sent there (is the endpoint URL valid?)".to_string()
            } else {
                io_reason(&err).unwrap_or_else(|| "the connection failed".to_string())
            };
            return other(format!(
                "cannot reach {service} at {endpoint}: {why}; check the network, the region, or AWS_ENDPOINT_URL / endpoint_url"
            ));
        }
        SdkError::TimeoutError(_) => {
            return other(format!(
                "{service} at {endpoint} did not answer in time; check the network or the endpoint"
            ))
        }
        SdkError::ConstructionFailure(_) => {
            // The request could not be built, which in practice is the source credentials
            // failing to load (credential_process, SSO, IMDS…).
            return other(format!(
                "cannot get the source credentials ({signer}): {}",
                scrub(&error_chain(&err))
            ));
        }
        _ => {
            return other(format!(
                "unexpected reply to {op} from {service} at {endpoint}; is the endpoint really {service}?"
            ))
        }
    };
    let message = scrub(&message);
    let message_lc = message.to_ascii_lowercase();
    match code.as_str() {
        "AccessDenied" if message_lc.contains("invalid mfa one time pass code") => AwsFailure::new(
            FailureKind::InvalidCode,
            format!(
                "STS refused the MFA code for {serial}: it is wrong, expired or already used; wait for the next code and try again"
            ),
        ),
        "AccessDenied" if message_lc.contains("unable to validate mfa code") => other(format!(
            "STS could not validate the code: MFA device {serial} is not associated with the user of {signer}; check mfa_serial (aws iam list-mfa-devices)"
        )),
        "AccessDenied" if message_lc.contains("getsessiontoken with session credentials") => other(format!(
            "the source credentials ({signer}) are temporary, and temporary credentials cannot call GetSessionToken; use an IAM user's long-term keys as the source"
        )),
        // A session policy or tag STS would not take: name what the user gave.
        "MalformedPolicyDocument"
            if message_lc.contains("does not exist") || message_lc.contains("not attachable") =>
        {
            other(format!(
                "STS does not know a managed policy of the session of {role} (from {scope}): {message}; check the ARN (aws iam get-policy --policy-arn ARN)"
            ))
        }
        "AccessDenied" if op == "AssumeRole" && message_lc.contains("sts:tagsession") => other(format!(
            "{role} does not take session tags (from {scope}): its trust policy does not allow sts:TagSession; drop the tags, or allow sts:TagSession in the role's trust policy"
        )),
        "AccessDenied" if op == "AssumeRole" && message_lc.contains("sts:setsourceidentity") => other(format!(
            "{role} does not take this source identity (from {scope}): its trust policy does not allow sts:SetSourceIdentity, or a role before it in the chain set another one; drop --source-identity/source_identity, or allow sts:SetSourceIdentity in the role's trust policy"
        )),
        "MalformedPolicyDocument" => other(format!(
            "STS refused the session policy of {role} as malformed (from {scope}): {message}; fix the policy JSON"
        )),
        "PackedPolicyTooLarge" => other(format!(
            "the session policies and tags of {role} are too large for STS once packed (from {scope}): {message}; use fewer statements, policy ARNs or tags"
        )),
        _ if op == "AssumeRole"
            && !scope.is_empty()
            && (message_lc.contains("policy") || message_lc.contains("tag") || message_lc.contains("sourceidentity") || message_lc.contains("source identity")) =>
        {
            other(format!(
                "STS refused the scope of {role} (from {scope}): {code}: {message}"
            ))
        }
        "AccessDenied" if op == "AssumeRole" => other(format!(
            "not allowed to assume {role}: its trust policy does not let this caller in (it may require MFA, an external id or another user); STS said: {message}"
        )),
        "AccessDenied" if service == "IAM" => other(format!(
            "IAM refused {op} to {signer}: {message}"
        )),
        "InvalidClientTokenId" => AwsFailure::new(
            FailureKind::BadSigner,
            format!(
                "{service} does not recognise {signer}: the key is wrong, inactive or deleted; update it (aws configure) and try again"
            ),
        ),
        "SignatureDoesNotMatch" => other(format!(
            "{service} rejected the signature of {signer}: the secret access key is wrong, or this machine's clock is off; fix the secret or the clock"
        )),
        "ExpiredToken" => AwsFailure::new(
            FailureKind::BadSigner,
            format!(
                "the source credentials ({signer}) have expired; renew them (e.g. aws sso login, or mfa-exec --refresh) and try again"
            ),
        ),
        "ValidationError" if message_lc.contains("role chaining") => other(format!(
            "the source credentials ({signer}) are temporary, and STS limits a role assumed with temporary credentials to {}: use --duration 1h or less, or long-term keys as the source",
            human_duration(CHAINED_ROLE_MAX)
        )),
        "ValidationError" if message_lc.contains("maxsessionduration") => other(format!(
            "{role} does not allow a session that long: use a shorter --duration (its maximum session duration is set on the role, at most {}); STS said: {message}",
            human_duration(ROLE_DURATION_RANGE.1)
        )),
        "ValidationError" if message_lc.contains("durationseconds") => other(format!(
            "STS refused the duration for {op}: {message}"
        )),
        "Throttling" | "ThrottlingException" | "RequestLimitExceeded" | "TooManyRequestsException" => other(format!(
            "{service} is throttling this account's requests ({code}); wait a minute and try again"
        )),
        // IAM's outcomes that `device` branches on; the words stay IAM's own.
        "InvalidAuthenticationCode" => AwsFailure::new(
            FailureKind::InvalidCode,
            format!("{service} {op} failed: {code}: {message}"),
        ),
        "EntityAlreadyExists" => AwsFailure::new(
            FailureKind::AlreadyExists,
            format!("{service} {op} failed: {code}: {message}"),
        ),
        "NoSuchEntity" => AwsFailure::new(
            FailureKind::NoSuchEntity,
            format!("{service} {op} failed: {code}: {message}"),
        ),
        _ if message.is_empty() => other(format!("{service} {op} failed: {code}")),
        _ => other(format!("{service} {op} failed: {code}: {message}")),
    }
}

/// Source credentials that could not be had (a credential_process that failed, SSO without a
/// login, no instance role), in one line that names the source and never its output.
pub(crate) fn source_failure(
    cause: &aws_credential_types::provider::error::CredentialsError,
    signer: &str,
) -> AwsFailure {
    let mut text = error_chain(cause);
    // A credential_process's stderr may carry anything, secrets included; only an inner
    // mfa-exec's own line about a loop is passed on (it names profiles and a file).
    if let Some(cut) = text.find("Stderr:") {
        let stderr = text[cut + "Stderr:".len()..].trim_start();
        if let Some(inner) = stderr.strip_prefix("mfa-exec: credential_process loop") {
            let line = inner.lines().next().unwrap_or_default().trim_end();
            return AwsFailure::other(format!("credential_process loop{line}"));
        }
        text.truncate(cut);
    }
    let text = scrub(text.trim_end_matches([' ', '.', ':']));
    let sso = if text.to_ascii_lowercase().contains("sso") {
        " (for SSO: run `aws sso login` for that profile)"
    } else {
        ""
    };
    AwsFailure::other(format!(
        "cannot get the source credentials ({signer}): {text}{sso}"
    ))
}

/// The console federation endpoint's refusal or failure, in one line. Its body is quoted only
/// when it is a short line of text (never a page), and the request (which holds the role's
/// keys) never.
pub(crate) fn federation_failure(endpoint: &str, status: Option<u16>, body: &str) -> AwsFailure {
    let Some(status) = status else {
        return AwsFailure::other(format!(
            "cannot reach the AWS sign-in endpoint at {endpoint}: {}; check the network, or AWS_ENDPOINT_URL_SIGNIN / AWS_ENDPOINT_URL",
            scrub(body)
        ));
    };
    let said = body.trim();
    let said = if !said.is_empty() && !said.contains('<') && said.len() <= 200 {
        format!(": {}", scrub(said))
    } else {
        String::new()
    };
    AwsFailure::other(match status {
        400 | 401 | 403 => format!(
            "the AWS sign-in endpoint at {endpoint} refused the role's credentials for a console session (HTTP {status}{said}); it takes only AssumeRole credentials, and --duration only for a role assumed from long-term keys: clear the cached role (mfa-exec cache clear -p PROFILE) and try again"
        ),
        500..=599 => format!(
            "the AWS sign-in endpoint at {endpoint} failed (HTTP {status}); try again in a moment"
        ),
        _ => format!(
            "the AWS sign-in endpoint at {endpoint} answered HTTP {status}{said} without a sign-in token; is it really the sign-in endpoint? (check AWS_ENDPOINT_URL_SIGNIN / AWS_ENDPOINT_URL)"
        ),
    })
}

/// An HTTP status without an AWS error code, in words.
fn bare_status(call: &Call<'_>, status: u16) -> String {
    let Call {
        service,
        op,
        endpoint: at,
        ..
    } = *call;
    match status {
        429 => format!(
            "{service} at {at} is throttling requests (HTTP 429); wait a minute and try again"
        ),
        500..=599 => format!(
            "{service} at {at} answered {op} with HTTP {status} (a server error); try again in a moment, and check the endpoint if it persists"
        ),
        _ => format!(
            "{service} at {at} answered {op} with HTTP {status} and no AWS error; is the endpoint really {service}? (check AWS_ENDPOINT_URL / endpoint_url)"
        ),
    }
}

/// The operating system's reason for a failed connection ("Connection refused"), if any.
fn io_reason(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            // "Connection refused (os error 111)" → "connection refused"
            return Some(crate::files::io_reason(io).to_lowercase());
        }
        current = e.source();
    }
    None
}

/// Text from the SDK or the endpoint, made fit for one line of a message: never a request
/// dump (which holds the MFA code), never an MFA code or a key, and not too long.
pub(crate) fn scrub(text: &str) -> String {
    let mut text = text.replace(['\n', '\r'], " ");
    for marker in ["Request {", "request `", "TokenCode", "Authorization"] {
        if let Some(cut) = text.find(marker) {
            text.truncate(cut);
        }
    }
    let text = text.trim_end_matches([' ', ':', '`', ',']);
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// The credential provider's own error, if that is what failed.
fn credentials_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a aws_credential_types::provider::error::CredentialsError> {
    let mut current: Option<&'a (dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(found) =
            e.downcast_ref::<aws_credential_types::provider::error::CredentialsError>()
        {
            // Its own source says what went wrong (the process's exit, the missing token).
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// "a: b: c" of an error and its sources, on one line.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ").replace('\n', " ")
}
