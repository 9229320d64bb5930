//! The proxy's own answers, in the error shape the command's SDK parses for the service it
//! called, so a refusal reads as an AWS error with a message saying mfa-exec refused it: S3's
//! `<Error><Code>`, the query protocols' `<ErrorResponse><Error>` (STS, IAM, EC2…), and
//! `{"__type", "message"}` for the JSON protocols (a request with `X-Amz-Target` or a JSON
//! body).

use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Bytes;

use super::Body;

/// Why the proxy answers a request itself instead of forwarding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refusal {
    /// No Authorization header and no presigned query.
    Unsigned,
    Malformed(String),
    /// Signed with a key that is not this run's.
    UnknownKey,
    BadSignature,
    Skewed,
    Expired,
    /// An event-stream request body: its messages are signed in a chain the proxy does not
    /// re-sign.
    EventStream,
    /// A body too large to read whole for a service that signs the body's hash.
    TooLarge,
    /// An operation whose answer is credentials or a login that would outlive the run
    /// (`sts:AssumeRole`, `iam:CreateAccessKey`…), named.
    MintsCredentials(String),
    /// A presigned URL dated in the future (AWS: "Request is not valid yet").
    NotYetValid,
    /// A declared `x-amz-content-sha256` that is not the body's hash.
    HashMismatch,
    /// A service whose host cannot be told from the request (and no endpoint is configured
    /// for it): the reason, naming the variable that would tell it.
    UnknownHost(String),
    /// A `.` or `..` path segment under an endpoint with a base path.
    DotSegments,
    /// The real credentials could not be had (renewal failed).
    NoCredentials(String),
    /// The real endpoint could not be reached.
    Unreachable(String),
}

impl Refusal {
    pub(super) fn malformed(why: &str) -> Refusal {
        Refusal::Malformed(why.to_string())
    }

    /// Status, AWS error code, message.
    fn parts(&self, s3: bool) -> (StatusCode, &'static str, String) {
        let forbidden = StatusCode::FORBIDDEN;
        match self {
            Refusal::Unsigned => (
                forbidden,
                if s3 { "AccessDenied" } else { "MissingAuthenticationToken" },
                "the request is not signed; sign it with the AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY mfa-exec gave the command".into(),
            ),
            Refusal::Malformed(why) => (
                forbidden,
                if s3 { "AuthorizationHeaderMalformed" } else { "IncompleteSignature" },
                format!("the request's signature is malformed: {why}"),
            ),
            Refusal::UnknownKey => (
                forbidden,
                if s3 { "InvalidAccessKeyId" } else { "InvalidClientTokenId" },
                "the request is signed with an access key that is not this run's; use the AWS_ACCESS_KEY_ID mfa-exec gave the command".into(),
            ),
            Refusal::BadSignature => (
                forbidden,
                "SignatureDoesNotMatch",
                "the request signature does not match the one computed with this run's secret key".into(),
            ),
            Refusal::Skewed => (
                forbidden,
                "RequestTimeTooSkewed",
                "the request's X-Amz-Date is more than 15 minutes from the proxy's time".into(),
            ),
            Refusal::Expired => (
                forbidden,
                "AccessDenied",
                "the presigned request has expired".into(),
            ),
            Refusal::MintsCredentials(op) => (
                forbidden,
                "AccessDenied",
                format!("{op} would hand the command credentials that outlive the run, so the proxy refuses it; run the command without --proxy to call it"),
            ),
            Refusal::NotYetValid => (
                forbidden,
                "AccessDenied",
                "Request is not valid yet: the presigned request's X-Amz-Date is more than 15 minutes after the proxy's time".into(),
            ),
            Refusal::HashMismatch => (
                StatusCode::BAD_REQUEST,
                "XAmzContentSHA256Mismatch",
                "the provided x-amz-content-sha256 header does not match what was computed".into(),
            ),
            Refusal::EventStream => (
                StatusCode::NOT_IMPLEMENTED,
                "NotImplemented",
                "event-stream request bodies (application/vnd.amazon.eventstream) cannot be signed again by the proxy; run this command without --proxy".into(),
            ),
            Refusal::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                format!("a request body over {} MiB to a service other than S3 cannot be re-signed", super::MAX_BUFFERED >> 20),
            ),
            Refusal::UnknownHost(why) => (StatusCode::NOT_IMPLEMENTED, "NotImplemented", why.clone()),
            Refusal::DotSegments => (
                StatusCode::BAD_REQUEST,
                "InvalidURI",
                "the path has a . or .. segment, which the proxy does not forward under an endpoint URL with a base path".into(),
            ),
            Refusal::NoCredentials(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "CredentialsUnavailable",
                format!("no credentials to sign with: {why}"),
            ),
            Refusal::Unreachable(why) => (StatusCode::BAD_GATEWAY, "BadGateway", why.clone()),
        }
    }
}

/// The protocol family the answer is shaped for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    S3,
    Query,
    Json,
}

impl Shape {
    /// From the service the signature names (when known) and the request's headers.
    pub(super) fn of(service: Option<&str>, headers: &HeaderMap) -> Shape {
        let content_type = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if headers.contains_key("x-amz-target") || content_type.contains("json") {
            Shape::Json
        } else if service == Some("s3")
            || (service.is_none() && headers.contains_key("x-amz-content-sha256"))
        {
            Shape::S3
        } else if service.is_none() && !content_type.contains("x-www-form-urlencoded") {
            // An unsigned request with nothing else to go by: S3's is the most common REST
            // shape, and the query protocols' clients read its Code too.
            Shape::S3
        } else {
            Shape::Query
        }
    }
}

/// The answer to a refused request, and the request id it carries.
pub(super) fn refusal(refusal: &Refusal, shape: Shape) -> http::Response<Body> {
    let (status, code, message) = refusal.parts(shape == Shape::S3);
    let message = format!("mfa-exec proxy: {message}");
    let id = request_id();
    let (content_type, body) = match shape {
        Shape::S3 => (
            "application/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message><RequestId>{id}</RequestId></Error>",
                xml_escape(&message)
            ),
        ),
        Shape::Query => (
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>{id}</RequestId></ErrorResponse>",
                xml_escape(&message)
            ),
        ),
        Shape::Json => (
            "application/x-amz-json-1.1",
            serde_json::json!({"__type": code, "message": message}).to_string(),
        ),
    };
    let mut response = http::Response::new(
        http_body_util::Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    headers.insert("x-amzn-errortype", HeaderValue::from_static(code));
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert("x-amzn-requestid", v.clone());
        headers.insert("x-amz-request-id", v);
    }
    response
}

fn request_id() -> String {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("mfa-exec-proxy-{hex}")
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.insert(
                http::header::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn each_protocol_gets_the_error_shape_its_sdk_parses() {
        assert_eq!(Shape::of(Some("s3"), &headers(&[])), Shape::S3);
        assert_eq!(
            Shape::of(
                Some("sts"),
                &headers(&[("content-type", "application/x-www-form-urlencoded")])
            ),
            Shape::Query
        );
        assert_eq!(
            Shape::of(
                Some("dynamodb"),
                &headers(&[("x-amz-target", "DynamoDB_20120810.ListTables")])
            ),
            Shape::Json
        );
        assert_eq!(
            Shape::of(
                None,
                &headers(&[("content-type", "application/x-amz-json-1.0")])
            ),
            Shape::Json
        );
    }
}
