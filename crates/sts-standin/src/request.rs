//! A request as the services see it, apart from tiny_http: its method, URL, headers and body
//! ([`Incoming`]), its Query-protocol parameters, and the STS API that a request addresses unless
//! it names another (its version, signing name and reply namespace). It sits below the server
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
