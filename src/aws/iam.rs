//! IAM calls through aws-sdk-iam (a user's own MFA devices and access keys), and what their
//! failures mean to a user. Only commands that manage the user reach this module: the run path (and
//! its cache hit) never builds an IAM client.
//!
//! What an IAM call needs is a signer and where to send it, nothing of a command's settings:
//! a self-managed resource belongs to an IAM user, so a caller signs with that user's keys
//! (a profile's source credentials) or, where IAM's "self-manage" policies demand MFA
//! (deactivating a device), with an MFA session made from them.

use aws_sdk_iam::config::{BehaviorVersion, Region};

use super::failure::{explain, AwsFailure, Call, FailureKind};
use super::{retry_config, sts_config, timeout_config, Signer};
use crate::settings::endpoints::Place;

/// IAM is global: its endpoint signs for us-east-1 in the `aws` partition.
const IAM_REGION: &str = "us-east-1";

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

/// An access key as ListAccessKeys shows it.
#[derive(Debug, Clone)]
pub(crate) struct KeyInfo {
    pub(crate) id: String,
    pub(crate) active: bool,
    /// Unix seconds.
    pub(crate) created: u64,
}

/// A key just made by CreateAccessKey: IAM returns its secret this once. Debug never prints it.
pub(crate) struct NewKey {
    pub(crate) id: String,
    pub(crate) secret: String,
    /// Unix seconds.
    pub(crate) created: u64,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// IAM (and STS, for "who am I") clients signing with one set of credentials.
#[derive(Clone)]
pub(crate) struct Iam {
    iam: aws_sdk_iam::Client,
    sts: aws_sdk_sts::Client,
    /// Where IAM requests go, for messages.
    endpoint: String,
    signer: Signer,
}

impl Iam {
    /// IAM (and STS) clients signing with `signer`.
    pub(crate) fn new(signer: Signer, place: &Place) -> Iam {
        // The aws-cn and aws-us-gov partitions have their own IAM endpoints.
        let iam_region = match place.region.as_deref() {
            Some(r) if r.starts_with("cn-") || r.starts_with("us-gov-") => r.to_string(),
            _ => IAM_REGION.to_string(),
        };
        let mut iam = aws_sdk_iam::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(super::http_client())
            .region(Region::new(iam_region))
            .retry_config(retry_config())
            .timeout_config(timeout_config())
            .credentials_provider(signer.provider.clone());
        if let Some(url) = &place.iam_endpoint {
            iam = iam.endpoint_url(url);
        }
        let sts = sts_config(place.region.as_deref(), place.sts_endpoint.as_deref())
            .credentials_provider(signer.provider.clone());
        Iam {
            iam: aws_sdk_iam::Client::from_conf(iam.build()),
            sts: aws_sdk_sts::Client::from_conf(sts.build()),
            endpoint: place
                .iam_endpoint
                .clone()
                .unwrap_or_else(|| "https://iam.amazonaws.com".into()),
            signer,
        }
    }

    fn call<'a>(&'a self, op: &'a str, serial: &'a str) -> Call<'a> {
        Call {
            service: "IAM",
            op,
            endpoint: &self.endpoint,
            signer: &self.signer.name,
            serial,
            role: "",
            scope: "",
        }
    }

    /// The IAM user the keys belong to (GetCallerIdentity). A role session, the root user or a
    /// federated user owns no virtual device of its own: refused before anything is created.
    pub(crate) async fn caller_user(&self) -> Result<User, AwsFailure> {
        let out = self.sts.get_caller_identity().send().await.map_err(|e| {
            explain(
                e,
                &Call {
                    service: "STS",
                    ..self.call("GetCallerIdentity", "")
                },
            )
        })?;
        let arn = out.arn.unwrap_or_default();
        user_of_arn(&arn, &self.signer.name)
    }

    /// The ARN the keys sign as (GetCallerIdentity): an access key just made answers only once
    /// IAM has spread it, so this is also how a caller tells that it works.
    pub(crate) async fn caller_arn(&self) -> Result<String, AwsFailure> {
        let out = self.sts.get_caller_identity().send().await.map_err(|e| {
            explain(
                e,
                &Call {
                    service: "STS",
                    ..self.call("GetCallerIdentity", "")
                },
            )
        })?;
        Ok(out.arn.unwrap_or_default())
    }

    /// The user's access keys (at most two: IAM's quota).
    pub(crate) async fn access_keys(&self, user: &str) -> Result<Vec<KeyInfo>, AwsFailure> {
        let mut keys = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .iam
                .list_access_keys()
                .user_name(user)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| explain(e, &self.call("ListAccessKeys", "")))?;
            keys.extend(out.access_key_metadata.into_iter().map(|k| {
                KeyInfo {
                    id: k.access_key_id.unwrap_or_default(),
                    active: k.status == Some(aws_sdk_iam::types::StatusType::Active),
                    created: k
                        .create_date
                        .map_or(0, |d| u64::try_from(d.secs()).unwrap_or(0)),
                }
            }));
            match out.marker {
                Some(m) if out.is_truncated => marker = Some(m),
                _ => break,
            }
        }
        Ok(keys)
    }

    /// A new access key for the user; its secret is in the answer and nowhere else.
    pub(crate) async fn create_access_key(&self, user: &str) -> Result<NewKey, AwsFailure> {
        let out = self
            .iam
            .create_access_key()
            .user_name(user)
            .send()
            .await
            .map_err(|e| explain(e, &self.call("CreateAccessKey", "")))?;
        let Some(key) = out.access_key else {
            return Err(AwsFailure::other(format!(
                "IAM at {} answered CreateAccessKey without a key",
                self.endpoint
            )));
        };
        Ok(NewKey {
            id: key.access_key_id,
            secret: key.secret_access_key,
            created: key
                .create_date
                .map_or_else(crate::clock::now, |d| u64::try_from(d.secs()).unwrap_or(0)),
        })
    }

    /// Deactivates the key (`keys rotate --keep-old`): it stays, and signs nothing.
    pub(crate) async fn deactivate_access_key(
        &self,
        user: &str,
        id: &str,
    ) -> Result<(), AwsFailure> {
        self.iam
            .update_access_key()
            .user_name(user)
            .access_key_id(id)
            .status(aws_sdk_iam::types::StatusType::Inactive)
            .send()
            .await
            .map_err(|e| explain(e, &self.call("UpdateAccessKey", "")))?;
        Ok(())
    }

    pub(crate) async fn delete_access_key(&self, user: &str, id: &str) -> Result<(), AwsFailure> {
        self.iam
            .delete_access_key()
            .user_name(user)
            .access_key_id(id)
            .send()
            .await
            .map_err(|e| explain(e, &self.call("DeleteAccessKey", "")))?;
        Ok(())
    }

    pub(crate) async fn create_device(&self, name: &str) -> Result<NewDevice, AwsFailure> {
        let out = self
            .iam
            .create_virtual_mfa_device()
            .virtual_mfa_device_name(name)
            .send()
            .await
            .map_err(|e| explain(e, &self.call("CreateVirtualMFADevice", "")))?;
        let Some(device) = out.virtual_mfa_device else {
            return Err(AwsFailure::other(format!(
                "IAM at {} answered CreateVirtualMFADevice without a device",
                self.endpoint
            )));
        };
        // The seed and the PNG are blobs (base64 on the wire; the SDK decodes them). The seed's
        // bytes are the Base32 text itself.
        let seed = device
            .base32_string_seed
            .map(|b| String::from_utf8_lossy(b.as_ref()).trim().to_string())
            .unwrap_or_default();
        if seed.is_empty() {
            return Err(AwsFailure::other(format!(
                "IAM at {} created {} without returning its seed",
                self.endpoint, device.serial_number
            )));
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
    ) -> Result<(), AwsFailure> {
        self.iam
            .enable_mfa_device()
            .user_name(user)
            .serial_number(serial)
            .authentication_code1(first)
            .authentication_code2(second)
            .send()
            .await
            .map_err(|e| explain(e, &self.call("EnableMFADevice", serial)))?;
        Ok(())
    }

    /// A user's MFA devices. IAM would take the signing user when UserName is left out; moto
    /// insists on it, so it is always sent.
    pub(crate) async fn list(&self, user: &str) -> Result<Vec<Device>, AwsFailure> {
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
                .map_err(|e| explain(e, &self.call("ListMFADevices", "")))?;
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

    pub(crate) async fn deactivate(&self, user: &str, serial: &str) -> Result<(), AwsFailure> {
        self.iam
            .deactivate_mfa_device()
            .user_name(user)
            .serial_number(serial)
            .send()
            .await
            .map_err(|e| explain(e, &self.call("DeactivateMFADevice", serial)))?;
        Ok(())
    }

    pub(crate) async fn delete(&self, serial: &str) -> Result<(), AwsFailure> {
        self.iam
            .delete_virtual_mfa_device()
            .serial_number(serial)
            .send()
            .await
            .map_err(|e| explain(e, &self.call("DeleteVirtualMFADevice", serial)))?;
        Ok(())
    }
}

/// The IAM user of a caller ARN, or why a device cannot be registered for that caller.
pub(crate) fn user_of_arn(arn: &str, signer: &str) -> Result<User, AwsFailure> {
    let refuse = |what: String| {
        AwsFailure::new(
            FailureKind::NotAUser,
            format!(
                "{signer} {what}, which cannot own a virtual MFA device: use a profile with an IAM user's access keys (-p)"
            ),
        )
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
