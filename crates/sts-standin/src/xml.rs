//! The Query protocol's XML: the replies and error replies STS and IAM send (each with a request
//! id), escaping, and reading one field back out for the client.

use std::time::SystemTime;

use crate::errors::StsError;
use crate::request::NAMESPACE;

/// An IAM-style reply: `Result` only when there is one (EnableMFADevice has none).
pub(crate) fn reply_xml_in(
    action: &str,
    result: Option<&str>,
    id: &str,
    namespace: &str,
) -> String {
    let result = result
        .map(|r| format!("\n  <{action}Result>\n    {r}\n  </{action}Result>"))
        .unwrap_or_default();
    format!(
        "<{action}Response xmlns=\"{namespace}\">{result}\n  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</{action}Response>\n",
        esc(id)
    )
}

pub(crate) fn reply_xml(action: &str, result: &str, id: &str) -> String {
    format!(
        "<{action}Response xmlns=\"{NAMESPACE}\">\n  <{action}Result>\n    {result}\n  </{action}Result>\n  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</{action}Response>\n",
        esc(id)
    )
}

pub(crate) fn error_xml(e: &StsError, id: &str) -> String {
    error_xml_in(e, id, NAMESPACE)
}

pub(crate) fn error_xml_in(e: &StsError, id: &str, namespace: &str) -> String {
    let kind = if e.status >= 500 {
        "Receiver"
    } else {
        "Sender"
    };
    format!(
        "<ErrorResponse xmlns=\"{namespace}\">\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{}</RequestId>\n</ErrorResponse>\n",
        esc(e.code),
        esc(&e.message),
        esc(id)
    )
}

/// XML-escapes text (`&`, `<`, `>`; the only attribute written is the namespace).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Reverses [`esc`] (and numeric character references).
pub(crate) fn unesc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let c = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Text of the first `<tag>…</tag>` (or `<tag attr…>…</tag>`) element in `xml`, unescaped.
pub(crate) fn xml_field(xml: &str, tag: &str) -> Option<String> {
    let open_plain = format!("<{tag}>");
    let open_attr = format!("<{tag} ");
    let start = match (xml.find(&open_plain), xml.find(&open_attr)) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    let content_start = start + xml[start..].find('>')? + 1;
    let end = content_start + xml[content_start..].find(&format!("</{tag}>"))?;
    Some(unesc(&xml[content_start..end]))
}

/// time → `2026-01-01T00:00:00Z`
pub fn iso_format(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}
