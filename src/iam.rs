//! The IAM calls of `device add|list|remove` through aws-sdk-iam, and what their failures mean
//! to a user. Only the `device` subcommand reaches this module: the run path (and its cache
//! hit) never builds an IAM client.
//!
//! A virtual MFA device belongs to an IAM user, so every call here signs with that user's keys
//! (the profile's source credentials) or, where IAM's "self-manage MFA" policy demands MFA
//! (deactivating a device), with an MFA session made from them.

use aws_sdk_iam::config::{BehaviorVersion, Region, SharedCredentialsProvider};
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};

use crate::settings::DeviceSettings;
use crate::sts::{
    credentials_error, error_chain, retry_config, scrub, source_provider, sts_config,
    timeout_config,
};
use crate::temporary::Credentials;

/// IAM is global: its endpoint signs for us-east-1 in the `aws` partition.
const IAM_REGION: &str = "us-east-1";

/// A failed IAM (or STS) call: IAM's error code, where the caller branches on it, and one line
/// that says what to do.
#[derive(Debug)]
pub(crate) struct IamFailure {
    pub(crate) code: String,
    pub(crate) message: String,
}

impl std::fmt::Display for IamFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for IamFailure {}

/// The IAM user that signs.
#[derive(Debug, Clone)]
pub(crate) struct User {
    pub(crate) name: String,
    pub(crate) account: String,
}

/// A device just created. The seed is shown once, as a QR code; Debug never prints it.
pub(crate) struct NewDevice {
    pub(crate) serial: String,
    pub(crate) seed_base32: String,
    pub(crate) qr_png: Vec<u8>,
}

impl std::fmt::Debug for NewDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewDevice")
            .field("serial", &self.serial)
            .finish_non_exhaustive()
    }
}

/// An MFA device assigned to a user.
#[derive(Debug, Clone)]
pub(crate) struct Device {
    pub(crate) serial: String,
    /// Unix seconds.
    pub(crate) enabled: i64,
}

/// IAM (and STS, for "who am I") clients signing with one set of credentials.
#[derive(Clone)]
pub(crate) struct Iam {
    iam: aws_sdk_iam::Client,
    sts: aws_sdk_sts::Client,
    /// Where IAM requests go, for messages.
    endpoint: String,
    /// Which keys sign, for messages.
    signer: String,
}

impl Iam {
    /// Clients signing with the profile's source credentials.
    pub(crate) fn for_source(dev: &DeviceSettings) -> anyhow::Result<Iam> {
        let (provider, signer) = source_provider(&dev.source, dev.region.as_deref())?;
        Ok(Iam::with(dev, provider, signer))
    }

    /// Clients signing with an MFA session of that user.
    pub(crate) fn for_session(dev: &DeviceSettings, session: &Credentials) -> Iam {
        let creds = aws_sdk_iam::config::Credentials::new(
            &session.access_key_id,
            &session.secret_access_key,
            Some(session.session_token.clone()),
            None,
            "mfa-exec-session",
        );
        Iam::with(
            dev,
            SharedCredentialsProvider::new(creds),
            format!("the MFA session {}", session.access_key_id),
        )
    }

    fn with(dev: &DeviceSettings, provider: SharedCredentialsProvider, signer: String) -> Iam {
        // The aws-cn and aws-us-gov partitions have their own IAM endpoints.
        let iam_region = match dev.region.as_deref() {
            Some(r) if r.starts_with("cn-") || r.starts_with("us-gov-") => r.to_string(),
            _ => IAM_REGION.to_string(),
        };
        let mut iam = aws_sdk_iam::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(iam_region))
            .retry_config(retry_config())
            .timeout_config(timeout_config())
            .credentials_provider(provider.clone());
        if let Some(url) = &dev.iam_endpoint {
            iam = iam.endpoint_url(url);
        }
        let sts = sts_config(dev.region.as_deref(), dev.sts_endpoint.as_deref())
            .credentials_provider(provider);
        Iam {
            iam: aws_sdk_iam::Client::from_conf(iam.build()),
            sts: aws_sdk_sts::Client::from_conf(sts.build()),
            endpoint: dev
                .iam_endpoint
                .clone()
                .unwrap_or_else(|| "https://iam.amazonaws.com".into()),
            signer,
        }
    }

    /// The IAM user the keys belong to (GetCallerIdentity). A role session, the root user or a
    /// federated user owns no virtual device of its own: refused before anything is created.
    pub(crate) async fn caller_user(&self) -> Result<User, IamFailure> {
        let out = self
            .sts
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| self.explain(e, "sts", "GetCallerIdentity"))?;
        let arn = out.arn.unwrap_or_default();
        user_of_arn(&arn, &self.signer)
    }

    pub(crate) async fn create_device(&self, name: &str) -> Result<NewDevice, IamFailure> {
        let out = self
            .iam
            .create_virtual_mfa_device()
            .virtual_mfa_device_name(name)
            .send()
            .await
            .map_err(|e| self.explain(e, "iam", "CreateVirtualMFADevice"))?;
        let Some(device) = out.virtual_mfa_device else {
            return Err(IamFailure {
                code: "NoDevice".into(),
                message: format!(
                    "IAM at {} answered CreateVirtualMFADevice without a device",
                    self.endpoint
                ),
            });
        };
        // The seed and the PNG are blobs (base64 on the wire; the SDK decodes them). The seed's
        // bytes are the Base32 text itself.
        let seed = device
            .base32_string_seed
            .map(|b| String::from_utf8_lossy(b.as_ref()).trim().to_string())
            .unwrap_or_default();
        if seed.is_empty() {
            return Err(IamFailure {
                code: "NoSeed".into(),
                message: format!(
                    "IAM at {} created {} without returning its seed",
                    self.endpoint, device.serial_number
                ),
            });
        }
        Ok(NewDevice {
            serial: device.serial_number,
            seed_base32: seed,
            qr_png: device
                .qr_code_png
                .map(|b| b.into_inner())
                .unwrap_or_default(),
        })
    }

    pub(crate) async fn enable(
        &self,
        user: &str,
        serial: &str,
        first: &str,
        second: &str,
    ) -> Result<(), IamFailure> {
        self.iam
            .enable_mfa_device()
            .user_name(user)
            .serial_number(serial)
            .authentication_code1(first)
            .authentication_code2(second)
            .send()
            .await
            .map_err(|e| self.explain(e, "iam", "EnableMFADevice"))?;
        Ok(())
    }

    /// A user's MFA devices. IAM would take the signing user when UserName is left out; moto
    /// insists on it, so it is always sent.
    pub(crate) async fn list(&self, user: &str) -> Result<Vec<Device>, IamFailure> {
        let mut devices = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .iam
                .list_mfa_devices()
                .user_name(user)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| self.explain(e, "iam", "ListMFADevices"))?;
            devices.extend(out.mfa_devices.into_iter().map(|d| Device {
                serial: d.serial_number,
                enabled: d.enable_date.secs(),
            }));
            match out.marker {
                Some(m) if out.is_truncated => marker = Some(m),
                _ => break,
            }
        }
        Ok(devices)
    }

    pub(crate) async fn deactivate(&self, user: &str, serial: &str) -> Result<(), IamFailure> {
        self.iam
            .deactivate_mfa_device()
            .user_name(user)
            .serial_number(serial)
            .send()
            .await
            .map_err(|e| self.explain(e, "iam", "DeactivateMFADevice"))?;
        Ok(())
    }

    pub(crate) async fn delete(&self, serial: &str) -> Result<(), IamFailure> {
        self.iam
            .delete_virtual_mfa_device()
            .serial_number(serial)
            .send()
            .await
            .map_err(|e| self.explain(e, "iam", "DeleteVirtualMFADevice"))?;
        Ok(())
    }

    /// One line per failure. IAM's messages name users, devices and policies, never secrets,
    /// so quoting them is safe.
    fn explain<E>(
        &self,
        err: SdkError<E, aws_sdk_iam::config::http::HttpResponse>,
        service: &str,
        op: &str,
    ) -> IamFailure
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let fail = |code: &str, message: String| IamFailure {
            code: code.to_string(),
            message,
        };
        if let Some(cause) = credentials_error(&err) {
            let text = scrub(&error_chain(cause));
            let text = text
                .split("Stderr:")
                .next()
                .unwrap_or("")
                .trim_end_matches([' ', '.', ':']);
            return fail(
                "Credentials",
                format!(
                    "cannot get the source credentials ({}): {text}",
                    self.signer
                ),
            );
        }
        let SdkError::ServiceError(se) = &err else {
            let what = match &err {
                SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => "cannot reach",
                _ => "unexpected reply from",
            };
            let url = if service == "iam" {
                self.endpoint.clone()
            } else {
                "STS".into()
            };
            return fail(
                "Transport",
                format!(
                    "{op}: {what} {url}: {}; check the network or AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_{}",
                    scrub(&error_chain(&err)),
                    service.to_ascii_uppercase()
                ),
            );
        };
        let code = se.err().code().unwrap_or("Unknown").to_string();
        let message = se.err().message().unwrap_or("").to_string();
        let text = match code.as_str() {
            "InvalidClientTokenId" => format!(
                "AWS does not recognise {}: the key is wrong, inactive or deleted; update it (aws configure) and try again",
                self.signer
            ),
            "SignatureDoesNotMatch" => format!(
                "AWS rejected the signature of {}: the secret access key is wrong, or this machine's clock is off",
                self.signer
            ),
            "ExpiredToken" => format!("the credentials ({}) have expired; renew them and try again", self.signer),
            "AccessDenied" => format!(
                "IAM refused {op} to {}: {message}",
                self.signer
            ),
            _ => format!("IAM {op} failed: {code}: {message}"),
        };
        fail(&code, text)
    }
}

/// The IAM user of a caller ARN, or why a device cannot be registered for that caller.
fn user_of_arn(arn: &str, signer: &str) -> Result<User, IamFailure> {
    let refuse = |what: String| {
        IamFailure {
        code: "NotAUser".into(),
        message: format!(
            "{signer} {what}, which cannot own a virtual MFA device: use a profile with an IAM user's access keys (-p)"
        ),
    }
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let (account, resource) = match parts.as_slice() {
        ["arn", _, _, _, account, resource] => (*account, *resource),
        _ => return Err(refuse(format!("signs as '{arn}'"))),
    };
    if let Some(path_and_name) = resource.strip_prefix("user/") {
        let name = path_and_name.rsplit('/').next().unwrap_or(path_and_name);
        return Ok(User {
            name: name.to_string(),
            account: account.to_string(),
        });
    }
    Err(match resource {
        "root" => refuse(format!("belongs to the root user of account {account}")),
        r if r.starts_with("assumed-role/") => refuse(format!(
            "belongs to a role session ({})",
            r.trim_start_matches("assumed-role/")
        )),
        r if r.starts_with("federated-user/") => {
            refuse(format!("belongs to a federated user ({r})"))
        }
        _ => refuse(format!("signs as '{arn}'")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_iam_user_owns_a_device() {
        let user = user_of_arn("arn:aws:iam::123456789012:user/team/alice", "k").unwrap();
        assert_eq!(
            (user.name.as_str(), user.account.as_str()),
            ("alice", "123456789012")
        );
        for (arn, says) in [
            ("arn:aws:iam::123456789012:root", "root user"),
            (
                "arn:aws:sts::123456789012:assumed-role/admin/s",
                "role session (admin/s)",
            ),
            (
                "arn:aws:sts::123456789012:federated-user/bob",
                "federated user",
            ),
            ("nonsense", "signs as 'nonsense'"),
        ] {
            let err = user_of_arn(arn, "access key AKIA…").unwrap_err();
            assert!(err.message.contains(says), "{}", err.message);
            assert!(err.message.contains("IAM user's access keys"));
        }
    }
}
