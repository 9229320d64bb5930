//! A request as the services see it, apart from tiny_http: its method, URL, headers and body
//! ([`Incoming`]), its Query-protocol parameters, the reply a service gives ([`Outgoing`]), and
//! the STS API that a request addresses unless it names another (its version, signing name and
//! reply namespace). It sits below the server
//! and the services: `server` makes an `Incoming` and dispatches it, and `sts`, `iam`, `s3`,
//! `federation` and `sigv4` only read it, so no service imports the server that calls it.

/// XML namespace of every STS reply.
pub const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// The only API version STS knows.
pub const VERSION: &str = "2011-06-15";
/// Signing service name STS requires in the credential scope.
pub const SERVICE: &str = "sts";

/// What a received request looks like, independent of tiny_http.
pub(crate) struct Incoming {
    pub(crate) method: String,
    pub(crate) url: String,
    /// Header names lower-cased, in received order.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

/// A successful reply, as a service makes it (errors are [`crate::errors::StsError`]s).
pub(crate) struct Outgoing {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) body: Vec<u8>,
    /// Headers besides `Content-Type` (and the request id the server adds).
    pub(crate) headers: Vec<(String, String)>,
}

impl Outgoing {
    /// `200` with an XML body: every STS and IAM reply, and S3's listings.
    pub(crate) fn xml(body: String) -> Outgoing {
        Outgoing {
            status: 200,
            content_type: "text/xml".to_string(),
            body: body.into_bytes(),
            headers: Vec::new(),
        }
    }
}

impl Incoming {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The URL without its query string.
    pub(crate) fn path(&self) -> &str {
        self.url.split('?').next().unwrap_or("")
    }

    /// The query string's parameters.
    pub(crate) fn query_params(&self) -> Vec<(String, String)> {
        self.url
            .split_once('?')
            .map(|(_, query)| {
                form_urlencoded::parse(query.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Query-string parameters, then (for a form-encoded POST) body parameters.
    pub(crate) fn params(&self) -> Vec<(String, String)> {
        let mut params = self.query_params();
        if self.method == "POST" && is_form(self.header("content-type")) {
            params.extend(form_urlencoded::parse(&self.body).into_owned());
        }
        params
    }
}

fn is_form(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// The value of parameter `name`.
pub(crate) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A Query-protocol list: the values of `{list}.member.N{field}` (`field` is `""` for a list of
/// strings, `".Key"` for a member's field), ordered by N as the SDKs number them from 1.
pub(crate) fn members(params: &[(String, String)], list: &str, field: &str) -> Vec<(u32, String)> {
    let prefix = format!("{list}.member.");
    let mut found: Vec<(u32, String)> = params
        .iter()
        .filter_map(|(name, value)| {
            let rest = name.strip_prefix(&prefix)?;
            let n = if field.is_empty() {
                rest
            } else {
                rest.strip_suffix(field)?
            };
            Some((n.parse().ok()?, value.clone()))
        })
        .collect();
    found.sort_by_key(|(n, _)| *n);
    found
}
