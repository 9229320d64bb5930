//! The console's federation endpoint: role credentials in, a sign-in token out, and the login
//! URL made of it. A plain HTTPS GET through the same hyper + rustls stack as the SDK's client.
//!
//! The token (and so the URL) signs whoever holds it in to the console for 15 minutes: it is a
//! secret, never put in a message.

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::failure::{federation_failure, AwsFailure};
use crate::secrets::Credentials;

/// Who the console says sent the user (the login's `Issuer`).
const ISSUER: &str = "mfa-exec";

/// `GET {endpoint}/federation?Action=getSigninToken[&SessionDuration=S]&Session=<JSON>`:
/// the sign-in token for these role credentials.
pub(crate) async fn signin_token(
    endpoint: &str,
    creds: &Credentials,
    session_duration: Option<u64>,
) -> Result<String, AwsFailure> {
    let session = serde_json::json!({
        "sessionId": creds.access_key_id,
        "sessionKey": creds.secret_access_key,
        "sessionToken": creds.session_token,
    })
    .to_string();
    let mut url = format!("{endpoint}/federation?Action=getSigninToken");
    if let Some(d) = session_duration {
        url.push_str(&format!("&SessionDuration={d}"));
    }
    url.push_str(&format!("&Session={}", percent_encode(&session)));
    let fail = |status, body: &str| federation_failure(endpoint, status, body);
    let uri: http::Uri = url
        .parse()
        .map_err(|_| fail(None, "the endpoint URL is not valid"))?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(crate::aws::tls_crypto())
        .map_err(|e| fail(None, &format!("no TLS root certificates ({e})")))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let exchange = async {
        let response = client.get(uri).await.map_err(|e| {
            let why = if e.is_connect() {
                "the connection failed"
            } else {
                "the request failed"
            };
            fail(None, why)
        })?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|_| fail(None, "the reply was cut short"))?
            .to_bytes();
        Ok::<_, AwsFailure>((status, String::from_utf8_lossy(&body).into_owned()))
    };
    let (status, body) = tokio::time::timeout(Duration::from_secs(20), exchange)
        .await
        .map_err(|_| fail(None, "it did not answer in 20 seconds"))??;
    if status != 200 {
        return Err(fail(Some(status), &body));
    }
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("SigninToken")?.as_str().map(String::from))
        .filter(|t| !t.is_empty())
        .ok_or_else(|| fail(Some(status), "a reply without a SigninToken"))
}

/// `{endpoint}/federation?Action=login&Issuer=mfa-exec&Destination=…&SigninToken=…`
pub(crate) fn login_url(endpoint: &str, destination: &str, token: &str) -> String {
    format!(
        "{endpoint}/federation?Action=login&Issuer={ISSUER}&Destination={}&SigninToken={}",
        percent_encode(destination),
        percent_encode(token)
    )
}

/// RFC 3986 percent-encoding of everything but the unreserved characters (also SigV4's
/// encoding of query names and values and of path segments, for `--proxy`).
pub(crate) fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_url_encodes_the_destination_and_the_token() {
        let url = login_url(
            "https://signin.aws.amazon.com",
            "https://console.aws.amazon.com/s3/home?region=eu-west-1",
            "a+b/c=",
        );
        assert_eq!(
            url,
            "https://signin.aws.amazon.com/federation?Action=login&Issuer=mfa-exec&Destination=https%3A%2F%2Fconsole.aws.amazon.com%2Fs3%2Fhome%3Fregion%3Deu-west-1&SigninToken=a%2Bb%2Fc%3D"
        );
    }
}
