//! The MFA calls to STS, GetSessionToken and AssumeRole (of every role of a chain), through
//! aws-sdk-sts.

use aws_sdk_sts::types::{PolicyDescriptorType, Tag};
use aws_sdk_sts::Client;

use super::failure::{explain, AwsFailure, Call};
use super::{sts_config, Signer, FALLBACK_REGION};
use crate::clock::now;
use crate::secrets::Credentials;
use crate::settings::scope::Scope;
use crate::settings::{RoleSettings, Settings};

/// An STS client signing with one set of credentials.
pub(crate) struct Sts {
    client: Client,
    /// Where requests go, for messages.
    endpoint: String,
    signer: Signer,
    /// The MFA device of the run, for messages.
    serial: Option<String>,
}

impl Sts {
    /// A client of the settings' endpoint and region that signs with `signer`.
    pub(crate) fn with(settings: &Settings, signer: Signer) -> Sts {
        let config = sts_config(settings.region.as_deref(), settings.endpoint.as_deref())
            .credentials_provider(signer.provider.clone())
            .build();
        Sts {
            client: Client::from_conf(config),
            endpoint: endpoint_name(settings),
            serial: settings.serial.clone(),
            signer,
        }
    }

    fn call<'a>(&'a self, op: &'a str, serial: &'a str, role: &'a str) -> Call<'a> {
        Call {
            service: "STS",
            op,
            endpoint: &self.endpoint,
            signer: &self.signer.name,
            serial,
            role,
            scope: "",
        }
    }

    pub(crate) async fn get_session_token(
        &self,
        serial: &str,
        code: &str,
        duration: Option<u64>,
    ) -> Result<Credentials, AwsFailure> {
        let out = self
            .client
            .get_session_token()
            .serial_number(serial)
            .token_code(code)
            .set_duration_seconds(duration.map(|d| d as i32))
            .send()
            .await
            .map_err(|e| explain(e, &self.call("GetSessionToken", serial, "")))?;
        Credentials::from_sdk(out.credentials).ok_or_else(|| self.malformed("GetSessionToken"))
    }

    /// AssumeRole; `mfa` is `(serial, code)` for a direct call, None when signing with an MFA
    /// session or a role session that carries MFA (so the role's trust condition is met).
    pub(crate) async fn assume_role(
        &self,
        role: &RoleSettings,
        duration: Option<u64>,
        mfa: Option<(&str, &str)>,
        scope: Option<&Scope>,
    ) -> Result<Credentials, AwsFailure> {
        let serial = mfa.map_or(self.serial.as_deref().unwrap_or_default(), |(s, _)| s);
        let session_name = role
            .session_name
            .clone()
            .unwrap_or_else(default_session_name);
        let tagging = &role.tagging;
        let tags = tagging
            .tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect::<Result<Vec<Tag>, _>>()
            .map_err(|e| AwsFailure::other(format!("cannot build the session tags: {e}")))?;
        let policy_arns = scope.map(|s| {
            s.policy_arns
                .iter()
                .map(|(arn, _)| PolicyDescriptorType::builder().arn(arn).build())
                .collect::<Vec<_>>()
        });
        let out = self
            .client
            .assume_role()
            .role_arn(&role.arn)
            .role_session_name(session_name)
            .set_external_id(role.external_id.clone())
            .set_serial_number(mfa.map(|(s, _)| s.to_string()))
            .set_token_code(mfa.map(|(_, c)| c.to_string()))
            .set_duration_seconds(duration.map(|d| d as i32))
            .set_policy(scope.and_then(|s| s.policy.as_ref().map(|(p, _)| p.clone())))
            .set_policy_arns(policy_arns.filter(|a| !a.is_empty()))
            .set_tags((!tags.is_empty()).then_some(tags))
            .set_transitive_tag_keys(
                (!tagging.transitive.is_empty()).then(|| tagging.transitive.clone()),
            )
            .set_source_identity(tagging.source_identity.clone())
            .send()
            .await
            .map_err(|e| {
                let origins = scoped_by(role, scope);
                explain(
                    e,
                    &Call {
                        scope: &origins,
                        ..self.call("AssumeRole", serial, &role.arn)
                    },
                )
            })?;
        Credentials::from_sdk(out.credentials).ok_or_else(|| self.malformed("AssumeRole"))
    }

    fn malformed(&self, op: &str) -> AwsFailure {
        AwsFailure::other(format!(
            "STS at {} answered {op} without credentials; is the endpoint really STS?",
            self.endpoint
        ))
    }
}

/// What the AssumeRole was asked to carry, named as the user gave it, for STS's refusals.
fn scoped_by(role: &RoleSettings, scope: Option<&Scope>) -> String {
    let mut parts = Vec::new();
    if let Some(scope) = scope {
        parts.push(scope.origins());
    }
    if !role.tagging.tags.is_empty() {
        parts.push("--tag, session_tags".to_string());
    }
    if role.tagging.source_identity.is_some() {
        parts.push("--source-identity, source_identity".to_string());
    }
    parts.join(", ")
}

/// The STS endpoint requests go to, for messages.
fn endpoint_name(settings: &Settings) -> String {
    match &settings.endpoint {
        Some(url) => url.clone(),
        None => format!(
            "https://sts.{}.amazonaws.com",
            settings.region.as_deref().unwrap_or(FALLBACK_REGION)
        ),
    }
}

/// The RoleSessionName when none is configured: `mfa-exec-<unix seconds>`, which CloudTrail
/// shows as who assumed the role.
fn default_session_name() -> String {
    format!("mfa-exec-{}", now())
}
