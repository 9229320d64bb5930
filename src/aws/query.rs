//! The AWS query protocol, as IAM speaks it, on the SDK's own runtime.
//!
//! mfa-exec makes nine IAM calls (its user's MFA devices and access keys). aws-sdk-iam, which
//! generates all of IAM's 170-odd operations, was the longest crate of a release build (70 s
//! of one core, on its critical path: BENCHMARKS.md, "Build time"), so those nine are made here
//! with the pieces the SDK's clients are made of: aws-smithy-runtime's orchestrator (retries,
//! timeouts, the HTTPS client of [`super::http_client`], the SDK's `SdkError`), aws-sigv4 (the
//! signature, on every attempt), aws-smithy-query (the form) and aws-smithy-xml (the answer).
//!
//! On the wire a call is `POST /` with the form `Action=ListAccessKeys&Version=2010-05-08&…`,
//! signed for the service `iam`. The answer is `<ListAccessKeysResponse><ListAccessKeysResult>`
//! with the result's fields; a list is a sequence of `<member>` elements. A failure is an
//! `<ErrorResponse><Error><Code>…</Code><Message>…</Message></Error>` with a 4xx or 5xx status,
//! which becomes the same `SdkError::ServiceError` (its code and message in an
//! [`ErrorMetadata`]) that [`super::failure::explain`] reads for every other AWS call.

use std::collections::HashMap;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_runtime::retries::classifiers::AwsErrorCodeClassifier;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use aws_smithy_runtime::client::orchestrator::operation::Operation;
use aws_smithy_runtime::client::retries::classifiers::{
    HttpStatusCodeClassifier, TransientErrorClassifier,
};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse, OrchestratorError};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::metadata::ErrorMetadata;
use aws_smithy_xml::decode::{try_data, Document, ScopedDecoder, XmlDecodeError};

use super::{http_client, retry_config, timeout_config};

/// IAM's API version, sent with every call.
const VERSION: &str = "2010-05-08";

/// Where and as whom IAM calls are made.
#[derive(Clone)]
pub(crate) struct Service {
    /// The endpoint (`https://iam.amazonaws.com`, or the configured one).
    pub(crate) endpoint: String,
    /// The region requests are signed for (IAM's: us-east-1 in the `aws` partition).
    pub(crate) region: String,
}

/// A successful answer: the result's fields by name (`<AccessKey><AccessKeyId>` is
/// `AccessKeyId`), and each `<member>` of its list as fields of its own.
#[derive(Debug, Default)]
pub(crate) struct Answer {
    pub(crate) fields: HashMap<String, String>,
    pub(crate) members: Vec<HashMap<String, String>>,
}

impl Answer {
    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// The elements that hold text in the answers mfa-exec reads; every other element holds
/// elements (a result, a structure, a list, a `member`).
const LEAVES: &[&str] = &[
    "AccessKeyId",
    "SecretAccessKey",
    "Status",
    "CreateDate",
    "UserName",
    "IsTruncated",
    "Marker",
    "SerialNumber",
    "Base32StringSeed",
    "QRCodePNG",
    "EnableDate",
];

impl Service {
    /// Calls `action` with `params` (name, value; a value is sent as given) signed with
    /// `credentials`, as the SDK would: two attempts, a dropped connection, a 5xx or a
    /// throttling error retried once, the connection and attempt timeouts of every call.
    pub(crate) async fn call(
        &self,
        action: &'static str,
        params: &[(&str, &str)],
        credentials: Credentials,
    ) -> Result<Answer, SdkError<ErrorMetadata, HttpResponse>> {
        let operation = Operation::builder()
            .service_name("iam")
            .operation_name(action)
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .http_client(http_client())
            .endpoint_url(&self.endpoint)
            .no_auth()
            .interceptor(Sign {
                credentials,
                region: self.region.clone(),
            })
            .standard_retry(&retry_config())
            .retry_classifier(HttpStatusCodeClassifier::default())
            .retry_classifier(TransientErrorClassifier::<ErrorMetadata>::new())
            .retry_classifier(AwsErrorCodeClassifier::<ErrorMetadata>::new())
            .timeout_config(timeout_config())
            .serializer(move |form: String| {
                let mut request = HttpRequest::new(SdkBody::from(form));
                request.set_method("POST").expect("a valid method");
                request.set_uri("/").expect("a valid path");
                request
                    .headers_mut()
                    .insert("content-type", "application/x-www-form-urlencoded");
                Ok(request)
            })
            .deserializer(move |response: &HttpResponse| read_answer(action, response))
            .build();
        let mut form = String::new();
        let mut writer = aws_smithy_query::QueryWriter::new(&mut form, action, VERSION);
        for (name, value) in params {
            writer.prefix(name).string(value);
        }
        writer.finish();
        operation.invoke(form).await
    }
}

/// The answer to `action`, or IAM's error (a 4xx or 5xx with `<ErrorResponse>`).
fn read_answer(
    action: &str,
    response: &HttpResponse,
) -> Result<Answer, OrchestratorError<ErrorMetadata>> {
    let body = response.body().bytes().unwrap_or_default();
    if !response.status().is_success() {
        // Without an AWS error in the body (a proxy's page) the error has no code, and
        // `explain` names the status instead.
        let metadata = error_metadata(body).unwrap_or_else(|_| ErrorMetadata::builder().build());
        return Err(OrchestratorError::operation(metadata));
    }
    parse_answer(action, body).map_err(|e| OrchestratorError::other(e.to_string()))
}

/// `<ErrorResponse><Error><Code>…</Code><Message>…</Message></Error>…`.
fn error_metadata(body: &[u8]) -> Result<ErrorMetadata, XmlDecodeError> {
    let mut doc = Document::try_from(body)?;
    let mut root = doc.root_element()?;
    let mut metadata = ErrorMetadata::builder();
    while let Some(mut tag) = root.next_tag() {
        if tag.start_el().local() == "Error" {
            while let Some(mut field) = tag.next_tag() {
                match field.start_el().local() {
                    "Code" => metadata = metadata.code(try_data(&mut field)?),
                    "Message" => metadata = metadata.message(try_data(&mut field)?),
                    _ => {}
                }
            }
        }
    }
    Ok(metadata.build())
}

/// `<ACTIONResponse><ACTIONResult>…</ACTIONResult>…`: the result's fields and members.
fn parse_answer(action: &str, body: &[u8]) -> Result<Answer, XmlDecodeError> {
    let mut doc = Document::try_from(body)?;
    let mut root = doc.root_element()?;
    if root.start_el().local() != format!("{action}Response") {
        return Err(XmlDecodeError::custom(format!(
            "the answer is no {action}Response"
        )));
    }
    let mut answer = Answer::default();
    let result = format!("{action}Result");
    while let Some(mut tag) = root.next_tag() {
        if tag.start_el().local() == result {
            read_fields(&mut tag, &mut answer, None)?;
        }
    }
    Ok(answer)
}

/// Reads an element's leaves into the answer's fields, or into `member`'s when inside one.
fn read_fields(
    scope: &mut ScopedDecoder<'_, '_>,
    answer: &mut Answer,
    mut member: Option<&mut HashMap<String, String>>,
) -> Result<(), XmlDecodeError> {
    while let Some(mut tag) = scope.next_tag() {
        let name = tag.start_el().local().to_string();
        if LEAVES.contains(&name.as_str()) {
            let value = try_data(&mut tag)?.into_owned();
            match member.as_deref_mut() {
                Some(fields) => fields.insert(name, value),
                None => answer.fields.insert(name, value),
            };
        } else if name == "member" && member.is_none() {
            let mut fields = HashMap::new();
            read_fields(&mut tag, answer, Some(&mut fields))?;
            answer.members.push(fields);
        } else {
            read_fields(&mut tag, answer, member.as_deref_mut())?;
        }
    }
    Ok(())
}

/// Signs each attempt (a retry is signed anew, with its own time) with SigV4 for `iam`.
#[derive(Debug)]
struct Sign {
    credentials: Credentials,
    region: String,
}

impl Intercept for Sign {
    fn name(&self) -> &'static str {
        "mfa-exec SigV4 for IAM"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        let identity = self.credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("iam")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()?
            .into();
        let body = request.body().bytes().unwrap_or_default();
        let headers: Vec<(&str, &str)> = request.headers().iter().collect();
        let signable = SignableRequest::new(
            request.method(),
            request.uri(),
            headers.into_iter(),
            SignableBody::Bytes(body),
        )?;
        let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)?.into_parts();
        let (headers, _) = instructions.into_parts();
        for header in headers {
            request
                .headers_mut()
                .insert(header.name(), header.value().to_string());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_answer_reads_as_its_members_and_its_marker() {
        let body = br#"<ListAccessKeysResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <ListAccessKeysResult>
    <AccessKeyMetadata>
      <member><UserName>alice</UserName><AccessKeyId>AKIA1</AccessKeyId><Status>Active</Status><CreateDate>2026-01-02T03:04:05Z</CreateDate></member>
      <member><UserName>alice</UserName><AccessKeyId>AKIA2</AccessKeyId><Status>Inactive</Status><CreateDate>2026-02-02T03:04:05Z</CreateDate></member>
    </AccessKeyMetadata>
    <IsTruncated>true</IsTruncated>
    <Marker>next page</Marker>
  </ListAccessKeysResult>
  <ResponseMetadata><RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId></ResponseMetadata>
</ListAccessKeysResponse>"#;
        let answer = parse_answer("ListAccessKeys", body).unwrap();
        assert_eq!(answer.members.len(), 2);
        assert_eq!(answer.members[1]["AccessKeyId"], "AKIA2");
        assert_eq!(answer.members[1]["Status"], "Inactive");
        assert_eq!(answer.field("IsTruncated"), Some("true"));
        assert_eq!(answer.field("Marker"), Some("next page"));
        // A member's fields stay in the member.
        assert_eq!(answer.field("AccessKeyId"), None);
    }

    #[test]
    fn a_structure_answer_reads_as_fields_and_another_actions_answer_is_refused() {
        let body = br#"<CreateAccessKeyResponse><CreateAccessKeyResult><AccessKey>
<UserName>alice</UserName><AccessKeyId>AKIANEW</AccessKeyId><Status>Active</Status>
<SecretAccessKey>s3cr3t</SecretAccessKey><CreateDate>2026-12-07T10:00:00Z</CreateDate>
</AccessKey></CreateAccessKeyResult></CreateAccessKeyResponse>"#;
        let answer = parse_answer("CreateAccessKey", body).unwrap();
        assert_eq!(answer.field("SecretAccessKey"), Some("s3cr3t"));
        assert!(answer.members.is_empty());
        assert!(parse_answer("DeleteAccessKey", body).is_err());
    }

    #[test]
    fn an_error_answer_gives_its_code_and_message() {
        let body = br#"<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>The user with name bob cannot be found.</Message></Error><RequestId>x</RequestId></ErrorResponse>"#;
        let metadata = error_metadata(body).unwrap();
        assert_eq!(metadata.code(), Some("NoSuchEntity"));
        assert_eq!(
            metadata.message(),
            Some("The user with name bob cannot be found.")
        );
    }
}
