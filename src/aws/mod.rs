//! AWS itself: the STS and IAM calls mfa-exec makes (`sts`, `iam`), the console federation
//! endpoint (`signin`), one client configuration
//! and one runtime for both, the credentials they sign with, and one place (`failure`) that
//! turns their failures into kinds a caller can branch on and words a user can act on.
//!
//! aws-config resolves *source* credentials (static keys, credential_process, SSO, the
//! instance or container) but ignores `mfa_serial`, so the MFA calls are made here. Region and
//! endpoints were resolved by the settings; nothing here waits on the EC2 metadata service
//! unless a profile asked for it with `credential_source`. Only a cache miss gets this far: a
//! cache hit builds no client and starts no runtime.

pub(crate) mod failure;
pub(crate) mod iam;
mod query;
pub(crate) mod signin;
pub(crate) mod sts;

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Result;
use aws_config::provider_config::ProviderConfig;
use aws_sdk_sts::config::{BehaviorVersion, Region, SharedCredentialsProvider, SharedHttpClient};
use tokio::runtime::Runtime;

use crate::secrets::Credentials;
use crate::settings::source::Source;
use crate::settings::RESOLVING_VAR;
use failure::{source_failure, AwsFailure};

/// STS's global endpoint region, used when no region is configured (as the AWS CLI does).
const FALLBACK_REGION: &str = "us-east-1";

/// The single-threaded runtime the SDK's calls run on, started only when a call is needed
/// (never on a cache hit).
pub(crate) fn new_runtime() -> Result<Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))
}

/// The region requests are signed for: the configured one, else STS's global endpoint's.
fn region_or_fallback(region: Option<&str>) -> Region {
    Region::new(region.unwrap_or(FALLBACK_REGION).to_string())
}

/// The HTTPS client every AWS client here uses: the SDK's default one (hyper 1, rustls, the
/// system's roots, `HTTPS_PROXY`/`NO_PROXY` from the environment as the SDK reads them since
/// behavior version 2025-08-07), with ring as rustls's crypto instead of aws-lc, whose C build
/// was the longest step of a release build. It is made once: its connections are pooled.
pub(crate) fn http_client() -> SharedHttpClient {
    static CLIENT: OnceLock<SharedHttpClient> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            use aws_smithy_http_client::proxy::ProxyConfig;
            use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
            use aws_smithy_http_client::{Builder, Connector};
            // As aws-smithy-runtime builds its default client, with the crypto swapped.
            Builder::new().build_with_connector_fn(|settings, components| {
                let mut connector =
                    Connector::builder().tls_provider(Provider::Rustls(CryptoMode::Ring));
                connector.set_connector_settings(settings.cloned());
                if let Some(components) = components {
                    connector.set_sleep_impl(components.sleep_impl());
                }
                connector.set_proxy_config(Some(ProxyConfig::from_env()));
                connector.build()
            })
        })
        .clone()
}

/// The TLS crypto every HTTPS connection here uses: ring (see [`http_client`]), named
/// explicitly for the connectors built with hyper-rustls (`console`, `--proxy`).
pub(crate) fn tls_crypto() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

/// What aws-config's credential providers (SSO, the instance, the container) are built with:
/// the region and [`http_client`].
fn provider_config(region: Option<&str>) -> ProviderConfig {
    ProviderConfig::default()
        .with_region(Some(region_or_fallback(region)))
        .with_http_client(http_client())
}

/// An STS client configuration: the region (us-east-1 when none is set), the configured
/// endpoint, and mfa-exec's retry and timeout policy.
fn sts_config(region: Option<&str>, endpoint: Option<&str>) -> aws_sdk_sts::config::Builder {
    let mut builder = aws_sdk_sts::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http_client())
        .region(region_or_fallback(region))
        .retry_config(retry_config())
        .timeout_config(timeout_config());
    if let Some(url) = endpoint {
        builder = builder.endpoint_url(url);
    }
    builder
}

/// Two attempts: a refused code is not retried, a dropped connection is, once.
fn retry_config() -> aws_sdk_sts::config::retry::RetryConfig {
    aws_sdk_sts::config::retry::RetryConfig::standard().with_max_attempts(2)
}

/// A dead endpoint must fail in seconds, with its URL named, not hang the command.
fn timeout_config() -> aws_sdk_sts::config::timeout::TimeoutConfig {
    aws_sdk_sts::config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(20))
        .build()
}

/// The credentials a client signs with, and how messages name them ("access key AKIA… from
/// profile base").
#[derive(Clone)]
pub(crate) struct Signer {
    provider: SharedCredentialsProvider,
    pub(crate) name: String,
}

impl Signer {
    /// The source credentials of a profile. Keys in the OS keyring are read here, on a miss,
    /// so a cache hit never opens the keyring.
    pub(crate) fn source(source: &Source, region: Option<&str>) -> Result<Signer> {
        let keys = |id: &str, secret: &str, token: Option<String>, from: &'static str| {
            SharedCredentialsProvider::new(aws_sdk_sts::config::Credentials::new(
                id, secret, token, None, from,
            ))
        };
        Ok(match source {
            Source::Keyring(k) => {
                let loaded = k.load()?;
                Signer {
                    provider: keys(
                        &loaded.access_key_id,
                        &loaded.secret_access_key,
                        None,
                        "mfa-exec-keyring",
                    ),
                    name: format!(
                        "access key {} from the OS keyring (profile {})",
                        loaded.access_key_id, k.profile
                    ),
                }
            }
            Source::Keys { origin, keys: k } => {
                // A profile's secret may be read from the files only now (a cache miss).
                let k = k.load()?;
                Signer {
                    provider: keys(
                        &k.access_key_id,
                        &k.secret_access_key,
                        k.session_token.clone(),
                        "mfa-exec-source",
                    ),
                    name: format!("access key {} from {origin}", k.access_key_id),
                }
            }
            Source::Process {
                profile,
                command,
                marker,
            } => Signer {
                // The marker lets an mfa-exec that this command runs see the loop (see
                // settings::RESOLVING_VAR); profile names hold no quote to escape.
                provider: SharedCredentialsProvider::new(
                    aws_config::credential_process::CredentialProcessProvider::new(format!(
                        "export {RESOLVING_VAR}='{marker}'; {command}"
                    )),
                ),
                name: format!("the credential_process of profile {profile}"),
            },
            Source::Provider { profile, .. } => {
                let conf = provider_config(region);
                Signer {
                    provider: SharedCredentialsProvider::new(
                        aws_config::profile::ProfileFileCredentialsProvider::builder()
                            .profile_name(profile)
                            .configure(&conf)
                            .build(),
                    ),
                    name: format!("the credentials of profile {profile}"),
                }
            }
            Source::Ec2InstanceMetadata => Signer {
                provider: SharedCredentialsProvider::new(
                    aws_config::imds::credentials::ImdsCredentialsProvider::builder()
                        .configure(&provider_config(region))
                        .build(),
                ),
                name: "the EC2 instance's credentials".to_string(),
            },
            Source::EcsContainer => Signer {
                provider: SharedCredentialsProvider::new(
                    aws_config::ecs::EcsCredentialsProvider::builder()
                        .configure(&provider_config(region))
                        .build(),
                ),
                name: "the container's credentials".to_string(),
            },
        })
    }

    /// Loads the credentials once (a credential_process runs, SSO's token is read, the instance
    /// is asked), before any code is asked for: every call then signs with the same keys, and
    /// whether they are an IAM user's long-term keys is known. Returns that signer and whether
    /// they are long-term (no session token).
    pub(crate) async fn load(&self) -> Result<(Signer, bool), AwsFailure> {
        use aws_credential_types::provider::ProvideCredentials;
        let creds = self
            .provider
            .provide_credentials()
            .await
            .map_err(|e| source_failure(&e, &self.name))?;
        let long_term = creds.session_token().is_none();
        let signer = Signer {
            provider: SharedCredentialsProvider::new(creds),
            name: self.name.clone(),
        };
        Ok((signer, long_term))
    }

    /// The credentials themselves, as the command gets them (a web identity profile's role).
    pub(crate) async fn credentials(&self) -> Result<Credentials, AwsFailure> {
        use aws_credential_types::provider::ProvideCredentials;
        let creds = self
            .provider
            .provide_credentials()
            .await
            .map_err(|e| source_failure(&e, &self.name))?;
        let now = crate::clock::now();
        let expiration = creds
            .expiry()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(now + 3600, |d| d.as_secs());
        Ok(Credentials {
            access_key_id: creds.access_key_id().to_string(),
            secret_access_key: creds.secret_access_key().to_string(),
            session_token: creds.session_token().unwrap_or_default().to_string(),
            expiration,
            issued: now,
        })
    }

    /// A role session's credentials (the previous step of a chain).
    pub(crate) fn role(creds: &Credentials, arn: &str) -> Signer {
        Signer {
            provider: SharedCredentialsProvider::new(aws_sdk_sts::config::Credentials::new(
                &creds.access_key_id,
                &creds.secret_access_key,
                Some(creds.session_token.clone()),
                None,
                "mfa-exec-role",
            )),
            name: format!("the session of role {arn}"),
        }
    }

    /// An MFA session's temporary credentials.
    pub(crate) fn session(session: &Credentials) -> Signer {
        Signer {
            provider: SharedCredentialsProvider::new(aws_sdk_sts::config::Credentials::new(
                &session.access_key_id,
                &session.secret_access_key,
                Some(session.session_token.clone()),
                None,
                "mfa-exec-session",
            )),
            name: format!("the MFA session {}", session.access_key_id),
        }
    }
}
