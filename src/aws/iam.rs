//! IAM calls (a user's own MFA devices and access keys, made through [`super::query`]), and
//! what their failures mean to a user. Only commands that manage the user reach this module: the run path (and
//! its cache hit) never builds an IAM client.
//!
//! What an IAM call needs is a signer and where to send it, nothing of a command's settings:
//! a self-managed resource belongs to an IAM user, so a caller signs with that user's keys
//! (a profile's source credentials) or, where IAM's "self-manage" policies demand MFA
//! (deactivating a device), with an MFA session made from them.

use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;
use aws_smithy_types::date_time::{DateTime, Format};

use super::failure::{explain, source_failure, AwsFailure, Call, FailureKind};
use super::query::{Answer, Service};
use super::{sts_config, Signer};
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
    /// Where IAM requests go (its endpoint also named in messages), and their signing region.
    iam: Service,
    sts: aws_sdk_sts::Client,
    signer: Signer,
}

impl Iam {
    /// IAM (and STS) clients signing with `signer`.
    pub(crate) fn new(signer: Signer, place: &Place) -> Iam {
        // IAM is global in each partition: one endpoint and one signing region for all of its
        // regions (the SDK's endpoint rules for IAM say the same).
        let iam_region = match place.region.as_deref() {
            Some(r) if r.starts_with("cn-") => "cn-north-1",
            Some(r) if r.starts_with("us-gov-") => "us-gov-west-1",
            _ => IAM_REGION,
        }
        .to_string();
        let endpoint = place
            .iam_endpoint
            .clone()
            .unwrap_or_else(|| default_endpoint(&iam_region));
        let sts = sts_config(place.region.as_deref(), place.sts_endpoint.as_deref())
            .credentials_provider(signer.provider.clone());
        Iam {
            iam: Service {
                endpoint,
                region: iam_region,
            },
            sts: aws_sdk_sts::Client::from_conf(sts.build()),
            signer,
        }
    }

    /// Calls IAM's `action`, signed with the signer's credentials (loaded for each call: a
    /// credential_process's may have been renewed in between).
    async fn iam(
        &self,
        action: &'static str,
        params: &[(&str, &str)],
    ) -> Result<Answer, AwsFailure> {
        self.iam_for(action, params, "").await
    }

    /// [`Iam::iam`] for a call about the MFA device `serial` (named in its failures).
    async fn iam_for(
        &self,
        action: &'static str,
        params: &[(&str, &str)],
        serial: &str,
    ) -> Result<Answer, AwsFailure> {
        let credentials: Credentials = self
            .signer
            .provider
            .provide_credentials()
            .await
            .map_err(|e| source_failure(&e, &self.signer.name))?;
        self.iam
            .call(action, params, credentials)
            .await
            .map_err(|e| explain(e, &self.call(action, serial)))
    }

    fn call<'a>(&'a self, op: &'a str, serial: &'a str) -> Call<'a> {
        Call {
            service: "IAM",
            op,
            endpoint: &self.iam.endpoint,
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
        let pages = self.pages("ListAccessKeys", &[("UserName", user)]).await?;
        Ok(pages
            .iter()
            .map(|k| KeyInfo {
                id: k.get("AccessKeyId").cloned().unwrap_or_default(),
                active: k.get("Status").map(String::as_str) == Some("Active"),
                created: k
                    .get("CreateDate")
                    .and_then(|d| seconds(d))
                    .map_or(0, |s| u64::try_from(s).unwrap_or(0)),
            })
            .collect())
    }

    /// Every member of a listing, page after page (IsTruncated and Marker, as IAM pages).
    async fn pages(
        &self,
        action: &'static str,
        params: &[(&str, &str)],
    ) -> Result<Vec<std::collections::HashMap<String, String>>, AwsFailure> {
        let mut members = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut asked = params.to_vec();
            if let Some(m) = &marker {
                asked.push(("Marker", m));
            }
            let mut answer = self.iam(action, &asked).await?;
            members.append(&mut answer.members);
            match answer.field("Marker") {
                Some(m) if answer.field("IsTruncated") == Some("true") => {
                    marker = Some(m.to_string())
                }
                _ => break,
            }
        }
        Ok(members)
    }

    /// A new access key for the user; its secret is in the answer and nowhere else.
    pub(crate) async fn create_access_key(&self, user: &str) -> Result<NewKey, AwsFailure> {
        let answer = self.iam("CreateAccessKey", &[("UserName", user)]).await?;
        let (Some(id), Some(secret)) =
            (answer.field("AccessKeyId"), answer.field("SecretAccessKey"))
        else {
            return Err(AwsFailure::other(format!(
                "IAM at {} answered CreateAccessKey without a key",
                self.iam.endpoint
            )));
        };
        Ok(NewKey {
            id: id.to_string(),
            secret: secret.to_string(),
            created: answer
                .field("CreateDate")
                .and_then(seconds)
                .map_or_else(crate::clock::now, |s| u64::try_from(s).unwrap_or(0)),
        })
    }

    /// Deactivates the key (`keys rotate --keep-old`): it stays, and signs nothing.
    pub(crate) async fn deactivate_access_key(
        &self,
        user: &str,
        id: &str,
    ) -> Result<(), AwsFailure> {
        self.iam(
            "UpdateAccessKey",
            &[
                ("UserName", user),
                ("AccessKeyId", id),
                ("Status", "Inactive"),
            ],
        )
        .await?;
        Ok(())
    }

    pub(crate) async fn delete_access_key(&self, user: &str, id: &str) -> Result<(), AwsFailure> {
        self.iam(
            "DeleteAccessKey",
            &[("UserName", user), ("AccessKeyId", id)],
        )
        .await?;
        Ok(())
    }

    pub(crate) async fn create_device(&self, name: &str) -> Result<NewDevice, AwsFailure> {
        let answer = self
            .iam("CreateVirtualMFADevice", &[("VirtualMFADeviceName", name)])
            .await?;
        let Some(serial) = answer.field("SerialNumber") else {
            return Err(AwsFailure::other(format!(
                "IAM at {} answered CreateVirtualMFADevice without a device",
                self.iam.endpoint
            )));
        };
        // The seed and the PNG are blobs, base64 on the wire. The seed's bytes are the Base32
        // text itself.
        let blob = |name: &str| {
            answer
                .field(name)
                .and_then(|b64| aws_smithy_types::base64::decode(b64.trim()).ok())
                .unwrap_or_default()
        };
        let seed = String::from_utf8_lossy(&blob("Base32StringSeed"))
            .trim()
            .to_string();
        if seed.is_empty() {
            return Err(AwsFailure::other(format!(
                "IAM at {} created {serial} without returning its seed",
                self.iam.endpoint
            )));
        }
        Ok(NewDevice {
            serial: serial.to_string(),
            seed_base32: seed,
            qr_png: blob("QRCodePNG"),
        })
    }

    pub(crate) async fn enable(
        &self,
        user: &str,
        serial: &str,
        first: &str,
        second: &str,
    ) -> Result<(), AwsFailure> {
        self.iam_for(
            "EnableMFADevice",
            &[
                ("UserName", user),
                ("SerialNumber", serial),
                ("AuthenticationCode1", first),
                ("AuthenticationCode2", second),
            ],
            serial,
        )
        .await?;
        Ok(())
    }

    /// A user's MFA devices. IAM would take the signing user when UserName is left out; moto
    /// insists on it, so it is always sent.
    pub(crate) async fn list(&self, user: &str) -> Result<Vec<Device>, AwsFailure> {
        let pages = self.pages("ListMFADevices", &[("UserName", user)]).await?;
        Ok(pages
            .iter()
            .map(|d| Device {
                serial: d.get("SerialNumber").cloned().unwrap_or_default(),
                enabled: d.get("EnableDate").and_then(|t| seconds(t)).unwrap_or(0),
            })
            .collect())
    }

    pub(crate) async fn deactivate(&self, user: &str, serial: &str) -> Result<(), AwsFailure> {
        self.iam_for(
            "DeactivateMFADevice",
            &[("UserName", user), ("SerialNumber", serial)],
            serial,
        )
        .await?;
        Ok(())
    }

    pub(crate) async fn delete(&self, serial: &str) -> Result<(), AwsFailure> {
        self.iam_for(
            "DeleteVirtualMFADevice",
            &[("SerialNumber", serial)],
            serial,
        )
        .await?;
        Ok(())
    }
}

/// IAM's endpoint for its signing region when none is configured: the `aws` partition's, and
/// the China and GovCloud partitions' own.
fn default_endpoint(region: &str) -> String {
    match region {
        "cn-north-1" => "https://iam.cn-north-1.amazonaws.com.cn",
        "us-gov-west-1" => "https://iam.us-gov.amazonaws.com",
        _ => "https://iam.amazonaws.com",
    }
    .into()
}

/// Unix seconds of an IAM time (`2026-12-07T10:00:00Z`, ISO 8601 as the query protocol sends
/// it).
fn seconds(text: &str) -> Option<i64> {
    DateTime::from_str(text.trim(), Format::DateTime)
        .ok()
        .map(|t| t.secs())
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
