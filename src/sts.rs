//! The two MFA STS calls (GetSessionToken, AssumeRole) through aws-sdk-sts, and what their
//! failures mean to a user.
//!
//! aws-config resolves the *source* credentials (static keys, credential_process, SSO), but it
//! ignores `mfa_serial`, so the MFA calls are made here. Region and endpoint were resolved by
//! the settings module; nothing here waits on the EC2 metadata service unless a profile asked
//! for it with `credential_source`.

use std::time::Duration;

use aws_config::provider_config::ProviderConfig;
use aws_sdk_sts::config::{BehaviorVersion, Region, SharedCredentialsProvider};
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sts::Client;

use crate::settings::{human_duration, Settings, Source, CHAINED_ROLE_MAX, ROLE_DURATION_RANGE};
use crate::temporary::{now, Credentials};

/// STS's global endpoint region, used when no region is configured (as the AWS CLI does).
const FALLBACK_REGION: &str = "us-east-1";

/// Why an STS call failed, where the caller branches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// Wrong, expired or already used code: a fresh code may succeed.
    InvalidCode,
    /// The signing keys are unknown or expired (a revoked MFA session, say).
    BadSigner,
    Other,
}

#[derive(Debug)]
pub(crate) struct StsFailure {
    pub(crate) kind: FailureKind,
    pub(crate) message: String,
}

impl std::fmt::Display for StsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StsFailure {}

/// An STS client signing with one set of credentials.
pub(crate) struct Sts {
    client: Client,
    /// Where requests go, for messages.
    endpoint: String,
    /// Which keys sign, for messages: "AKIA… from profile base".
    signer: String,
}

/// Timeouts and retries: a dead endpoint must fail in seconds, with its URL named.
fn base_config(settings: &Settings) -> aws_sdk_sts::config::Builder {
    sts_config(settings.region.as_deref(), settings.endpoint.as_deref())
}

/// An STS client configuration: the region (us-east-1 when none is set), the configured
/// endpoint, and mfa-exec's retry and timeout policy. Shared with `device`'s IAM client.
pub(crate) fn sts_config(
    region: Option<&str>,
    endpoint: Option<&str>,
) -> aws_sdk_sts::config::Builder {
    let mut builder = aws_sdk_sts::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.unwrap_or(FALLBACK_REGION).to_string()))
        .retry_config(retry_config())
        .timeout_config(timeout_config());
    if let Some(url) = endpoint {
        builder = builder.endpoint_url(url);
    }
    builder
}

/// Two attempts: a refused code is not retried, a dropped connection is, once.
pub(crate) fn retry_config() -> aws_sdk_sts::config::retry::RetryConfig {
    aws_sdk_sts::config::retry::RetryConfig::standard().with_max_attempts(2)
}

pub(crate) fn timeout_config() -> aws_sdk_sts::config::timeout::TimeoutConfig {
    aws_sdk_sts::config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(20))
        .build()
}

fn endpoint_name(settings: &Settings) -> String {
    match &settings.endpoint {
        Some(url) => url.clone(),
        None => format!(
            "https://sts.{}.amazonaws.com",
            settings.region.as_deref().unwrap_or(FALLBACK_REGION)
        ),
    }
}

/// The credentials provider of a source, and how messages name it ("access key AKIA… from
/// profile base"). Also signs `device`'s IAM calls.
pub(crate) fn source_provider(
    source: &Source,
    region: Option<&str>,
) -> anyhow::Result<(SharedCredentialsProvider, String)> {
    Ok(match source {
        Source::Keyring(k) => {
            let keys = k.load()?;
            (
                SharedCredentialsProvider::new(aws_sdk_sts::config::Credentials::new(
                    &keys.access_key_id,
                    &keys.secret_access_key,
                    None,
                    None,
                    "mfa-exec-keyring",
                )),
                format!(
                    "access key {} from the OS keyring (profile {})",
                    keys.access_key_id, k.profile
                ),
            )
        }
        Source::Keys { origin, keys } => (
            SharedCredentialsProvider::new(aws_sdk_sts::config::Credentials::new(
                &keys.access_key_id,
                &keys.secret_access_key,
                keys.session_token.clone(),
                None,
                "mfa-exec-source",
            )),
            format!("access key {} from {origin}", keys.access_key_id),
        ),
        Source::Provider { profile } => {
            let conf = ProviderConfig::default().with_region(Some(Region::new(
                region.unwrap_or(FALLBACK_REGION).to_string(),
            )));
            (
                SharedCredentialsProvider::new(
                    aws_config::profile::ProfileFileCredentialsProvider::builder()
                        .profile_name(profile)
                        .configure(&conf)
                        .build(),
                ),
                format!("the credentials of profile {profile}"),
            )
        }
        Source::Ec2InstanceMetadata => (
            SharedCredentialsProvider::new(
                aws_config::imds::credentials::ImdsCredentialsProvider::builder().build(),
            ),
            "the EC2 instance's credentials".to_string(),
        ),
        Source::EcsContainer => (
            SharedCredentialsProvider::new(
                aws_config::ecs::EcsCredentialsProvider::builder().build(),
            ),
            "the container's credentials".to_string(),
        ),
    })
}

impl Sts {
    /// A client that signs with the settings' source credentials. Keys in the OS keyring are
    /// read here, on a miss, so a cache hit never opens the keyring.
    pub(crate) fn for_source(settings: &Settings) -> anyhow::Result<Sts> {
        let (provider, signer) = source_provider(&settings.source, settings.region.as_deref())?;
        Ok(Sts {
            client: Client::from_conf(base_config(settings).credentials_provider(provider).build()),
            endpoint: endpoint_name(settings),
            signer,
        })
    }

    /// A client that signs with temporary credentials (an MFA session).
    pub(crate) fn for_session(settings: &Settings, session: &Credentials) -> Sts {
        let creds = aws_sdk_sts::config::Credentials::new(
            &session.access_key_id,
            &session.secret_access_key,
            Some(session.session_token.clone()),
            None,
            "mfa-exec-session",
        );
        Sts {
            client: Client::from_conf(base_config(settings).credentials_provider(creds).build()),
            endpoint: endpoint_name(settings),
            signer: format!("the MFA session {}", session.access_key_id),
        }
    }

    pub(crate) async fn get_session_token(
        &self,
        serial: &str,
        code: &str,
        duration: Option<u64>,
    ) -> Result<Credentials, StsFailure> {
        let out = self
            .client
            .get_session_token()
            .serial_number(serial)
            .token_code(code)
            .set_duration_seconds(duration.map(|d| d as i32))
            .send()
            .await
            .map_err(|e| self.explain(e, "GetSessionToken", serial, None))?;
        Credentials::from_sdk(out.credentials).ok_or_else(|| self.malformed("GetSessionToken"))
    }

    /// AssumeRole; `mfa` is `(serial, code)` for a direct call, None when signing with an MFA
    /// session (which carries the MFA context, so the role's trust condition is met).
    pub(crate) async fn assume_role(
        &self,
        settings: &Settings,
        mfa: Option<(&str, &str)>,
    ) -> Result<Credentials, StsFailure> {
        let role = settings
            .role
            .as_ref()
            .expect("assume_role is only called for a role");
        let session_name = role
            .session_name
            .clone()
            .unwrap_or_else(default_session_name);
        let out = self
            .client
            .assume_role()
            .role_arn(&role.arn)
            .role_session_name(session_name)
            .set_external_id(role.external_id.clone())
            .set_serial_number(mfa.map(|(s, _)| s.to_string()))
            .set_token_code(mfa.map(|(_, c)| c.to_string()))
            .set_duration_seconds(settings.duration.map(|d| d as i32))
            .send()
            .await
            .map_err(|e| self.explain(e, "AssumeRole", &settings.serial, Some(&role.arn)))?;
        Credentials::from_sdk(out.credentials).ok_or_else(|| self.malformed("AssumeRole"))
    }

    fn malformed(&self, op: &str) -> StsFailure {
        StsFailure {
            kind: FailureKind::Other,
            message: format!(
                "STS at {} answered {op} without credentials; is the endpoint really STS?",
                self.endpoint
            ),
        }
    }

    /// Turns an SDK error into one line that says what to do. STS messages name ARNs and
    /// account ids but never secrets, so quoting them is safe.
    fn explain<E>(
        &self,
        err: SdkError<E, aws_sdk_sts::config::http::HttpResponse>,
        op: &str,
        serial: &str,
        role: Option<&str>,
    ) -> StsFailure
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let other = |message: String| StsFailure {
            kind: FailureKind::Other,
            message,
        };
        // The source credentials (credential_process, SSO, IMDS…) failing to load surfaces as
        // a dispatch or construction failure; say what it is, not "cannot reach STS".
        if let Some(cause) = credentials_error(&err) {
            let mut text = error_chain(cause);
            // A credential_process's stderr may carry anything, secrets included.
            if let Some(cut) = text.find("Stderr:") {
                text.truncate(cut);
            }
            let text = scrub(text.trim_end_matches([' ', '.', ':']));
            let sso = if text.to_ascii_lowercase().contains("sso") {
                " (for SSO: run `aws sso login` for that profile)"
            } else {
                ""
            };
            return other(format!(
                "cannot get the source credentials ({}): {text}{sso}",
                self.signer
            ));
        }
        // The SDK's own texts are never shown whole: some (a malformed endpoint, say) print
        // the request, MFA code included. Each case is said in words of our own.
        let (code, message) = match &err {
            SdkError::ServiceError(se) => {
                let status = se.raw().status().as_u16();
                match se.err().code() {
                    Some(code) => (code.to_string(), se.err().message().unwrap_or("").to_string()),
                    // No AWS error in the body: a proxy's or load balancer's page, or an
                    // endpoint that is not STS.
                    None => return other(self.bare_status(op, status)),
                }
            }
            SdkError::ResponseError(re) => {
                return other(format!(
                    "STS at {} answered {op} with HTTP {} and a body that is not an STS response; is the endpoint really STS? (check AWS_ENDPOINT_URL / endpoint_url)",
                    self.endpoint,
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
                    "cannot reach STS at {}: {why}; check the network, the region, or AWS_ENDPOINT_URL / endpoint_url",
                    self.endpoint,
                ));
            }
            SdkError::TimeoutError(_) => {
                return other(format!(
                    "STS at {} did not answer in time; check the network or the endpoint",
                    self.endpoint
                ))
            }
            SdkError::ConstructionFailure(_) => {
                // The request could not be built, which in practice is the source
                // credentials failing to load (credential_process, SSO, IMDS…).
                return other(format!(
                    "cannot get the source credentials ({}): {}",
                    self.signer,
                    scrub(&error_chain(&err))
                ));
            }
            _ => {
                return other(format!(
                    "unexpected reply to {op} from STS at {}; is the endpoint really STS?",
                    self.endpoint,
                ))
            }
        };
        let message = scrub(&message);
        let role = role.unwrap_or("");
        let message_lc = message.to_ascii_lowercase();
        match code.as_str() {
            "AccessDenied" if message_lc.contains("invalid mfa one time pass code") => StsFailure {
                kind: FailureKind::InvalidCode,
                message: format!(
                    "STS refused the MFA code for {serial}: it is wrong, expired or already used; wait for the next code and try again"
                ),
            },
            "AccessDenied" if message_lc.contains("unable to validate mfa code") => other(format!(
                "STS could not validate the code: MFA device {serial} is not associated with the user of {}; check mfa_serial (aws iam list-mfa-devices)",
                self.signer
            )),
            "AccessDenied" if message_lc.contains("getsessiontoken with session credentials") => other(format!(
                "the source credentials ({}) are temporary, and temporary credentials cannot call GetSessionToken; use an IAM user's long-term keys as the source",
                self.signer
            )),
            "AccessDenied" if op == "AssumeRole" => other(format!(
                "not allowed to assume {role}: its trust policy does not let this caller in (it may require MFA, an external id or another user); STS said: {message}"
            )),
            "InvalidClientTokenId" => StsFailure {
                kind: FailureKind::BadSigner,
                message: format!(
                    "STS does not recognise {}: the key is wrong, inactive or deleted; update it (aws configure) and try again",
                    self.signer
                ),
            },
            "SignatureDoesNotMatch" => other(format!(
                "STS rejected the signature of {}: the secret access key is wrong, or this machine's clock is off; fix the secret or the clock",
                self.signer
            )),
            "ExpiredToken" => StsFailure {
                kind: FailureKind::BadSigner,
                message: format!(
                    "the source credentials ({}) have expired; renew them (e.g. aws sso login, or mfa-exec --refresh) and try again",
                    self.signer
                ),
            },
            "ValidationError" if message_lc.contains("role chaining") => other(format!(
                "the source credentials ({}) are temporary, and STS limits a role assumed with temporary credentials to {}: use --duration 1h or less, or long-term keys as the source",
                self.signer,
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
                "STS is throttling this account's requests ({code}); wait a minute and try again"
            )),
            _ if message.is_empty() => other(format!("STS {op} failed: {code}")),
            _ => other(format!("STS {op} failed: {code}: {message}")),
        }
    }

    /// An HTTP status without an AWS error code, in words.
    fn bare_status(&self, op: &str, status: u16) -> String {
        let at = &self.endpoint;
        match status {
            429 => format!("STS at {at} is throttling requests (HTTP 429); wait a minute and try again"),
            500..=599 => format!(
                "STS at {at} answered {op} with HTTP {status} (a server error); try again in a moment, and check the endpoint if it persists"
            ),
            _ => format!(
                "STS at {at} answered {op} with HTTP {status} and no AWS error; is the endpoint really STS? (check AWS_ENDPOINT_URL / endpoint_url)"
            ),
        }
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

/// The default RoleSessionName, as the issue asks: `mfa-exec-<unix seconds>`.
fn default_session_name() -> String {
    format!("mfa-exec-{}", now())
}

/// The credential provider's own error, if that is what failed.
pub(crate) fn credentials_error<'a>(
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
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
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
