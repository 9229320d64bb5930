//! aws-chunked bodies with chunk signatures (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`, and with
//! `-TRAILER` a signed trailer), re-signed as they stream: each chunk's signature is checked
//! with the run's secret, in the chain that starts at the request's signature, and replaced by
//! the real credentials' signature in the chain that starts at the forwarded request's.
//!
//! The S3 API reference ("Signature Calculations for the Authorization Header: Transferring
//! Payload in Multiple Chunks", "…including trailing headers") defines a chunk as
//! `hex-size;chunk-signature=SIG\r\nDATA\r\n`, the last one of size 0, and each SIG as the
//! HMAC of `AWS4-HMAC-SHA256-PAYLOAD\n{X-Amz-Date}\n{scope}\n{previous SIG}\n{sha256("")}\n
//! {sha256(DATA)}`; with a trailer, the 0-size chunk is followed by the trailing headers and
//! `x-amz-trailer-signature:SIG` over `AWS4-HMAC-SHA256-TRAILER\n{date}\n{scope}\n{previous}\n
//! {sha256(the trailing headers, "name:value\n" each)}`. A signature is 64 hex digits either
//! way, so the body keeps its length and Content-Length stays true. One chunk is held at a
//! time (the SDKs send 64 KiB to 8 MiB), never the body.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use hyper::body::{Body as HttpBody, Bytes, Frame};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::reply::Refusal;
use super::sigv4::{self, Signature, EMPTY_SHA256};
use super::{Body, BoxError};

/// A larger chunk is refused rather than held.
const MAX_CHUNK: usize = 16 << 20;
/// A chunk header or trailer line longer than this is malformed.
const MAX_LINE: usize = 4096;

/// One chain of chunk signatures: a signing key, the request's date and scope, and the last
/// signature.
pub(super) struct Chain {
    key: Vec<u8>,
    amz_date: String,
    scope: String,
    previous: String,
}

impl Chain {
    pub(super) fn new(secret: &str, sig: &Signature, seed: String) -> Chain {
        let at = sigv4::parse_amz_date(&sig.amz_date).unwrap_or(std::time::UNIX_EPOCH);
        let key = aws_sigv4::sign::v4::generate_signing_key(secret, at, &sig.region, &sig.service);
        Chain {
            key: key.as_ref().to_vec(),
            amz_date: sig.amz_date.clone(),
            scope: sig.scope(),
            previous: seed,
        }
    }

    /// The next signature of the chain over `kind` (`PAYLOAD` or `TRAILER`) and its hashes.
    fn next(&mut self, kind: &str, hashes: &str) -> String {
        let string = format!(
            "AWS4-HMAC-SHA256-{kind}\n{}\n{}\n{}\n{hashes}",
            self.amz_date, self.scope, self.previous
        );
        self.previous = aws_sigv4::sign::v4::calculate_signature(&self.key, string.as_bytes());
        self.previous.clone()
    }
}

/// The command's chain (checked) and the real one (written).
pub(super) struct Keys {
    pub(super) incoming: Chain,
    pub(super) outgoing: Chain,
}

enum State {
    Header,
    Data {
        size: usize,
        size_text: String,
        signature: String,
    },
    Trailer {
        canonical: Vec<(String, String)>,
        raw: Vec<u8>,
        /// The trailer's signature has been checked: only the empty line may follow.
        signed: bool,
    },
    Done,
}

/// The command's aws-chunked body, re-signed.
pub(super) struct Resigner {
    inner: Body,
    keys: Keys,
    trailer: bool,
    input: Vec<u8>,
    ended: bool,
    state: State,
    /// Why the body was refused, for the answer to the command (the forward fails with it).
    refused: Arc<Mutex<Option<Refusal>>>,
}

impl Resigner {
    pub(super) fn new(
        inner: Body,
        keys: Keys,
        trailer: bool,
        refused: Arc<Mutex<Option<Refusal>>>,
    ) -> Resigner {
        Resigner {
            inner,
            keys,
            trailer,
            input: Vec::new(),
            ended: false,
            state: State::Header,
            refused,
        }
    }

    /// Re-signs what the input holds, as far as it goes.
    fn process(&mut self, out: &mut Vec<u8>) -> Result<(), Refusal> {
        loop {
            match &mut self.state {
                State::Header => {
                    let Some(line) = take_line(&mut self.input)? else {
                        return Ok(());
                    };
                    let (size_text, signature) =
                        line.split_once(";chunk-signature=").ok_or_else(|| {
                            Refusal::malformed("an aws-chunked chunk has no chunk-signature")
                        })?;
                    let size = usize::from_str_radix(size_text, 16)
                        .ok()
                        .filter(|s| *s <= MAX_CHUNK)
                        .ok_or_else(|| {
                            Refusal::malformed(
                                "an aws-chunked chunk size is not a hex number up to 16 MiB",
                            )
                        })?;
                    self.state = State::Data {
                        size,
                        size_text: size_text.to_string(),
                        signature: signature.to_ascii_lowercase(),
                    };
                }
                State::Data {
                    size,
                    size_text,
                    signature,
                } => {
                    let last = *size == 0;
                    // The last chunk of a body with a trailer has no CRLF of its own.
                    let need = if last && self.trailer { 0 } else { *size + 2 };
                    if self.input.len() < need {
                        return Ok(());
                    }
                    if need > 0 && &self.input[*size..need] != b"\r\n" {
                        return Err(Refusal::malformed(
                            "an aws-chunked chunk does not end in CRLF",
                        ));
                    }
                    let data = &self.input[..*size];
                    let hashes = format!("{EMPTY_SHA256}\n{}", sigv4::hex(&Sha256::digest(data)));
                    let expected = self.keys.incoming.next("PAYLOAD", &hashes);
                    if !bool::from(expected.as_bytes().ct_eq(signature.as_bytes())) {
                        return Err(Refusal::BadSignature);
                    }
                    let resigned = self.keys.outgoing.next("PAYLOAD", &hashes);
                    out.extend_from_slice(
                        format!("{size_text};chunk-signature={resigned}\r\n").as_bytes(),
                    );
                    out.extend_from_slice(&self.input[..need]);
                    self.input.drain(..need);
                    self.state = match (last, self.trailer) {
                        (false, _) => State::Header,
                        (true, false) => State::Done,
                        (true, true) => State::Trailer {
                            canonical: Vec::new(),
                            raw: Vec::new(),
                            signed: false,
                        },
                    };
                }
                State::Trailer {
                    canonical,
                    raw,
                    signed,
                } => {
                    let Some(line) = take_line(&mut self.input)? else {
                        return Ok(());
                    };
                    // The trailer ends with its signature and then an empty line: S3 refuses
                    // a signed-trailer body without the signature, and nothing after it is
                    // signed, so a header there would reach S3 unchecked.
                    if *signed && !line.is_empty() {
                        return Err(Refusal::malformed(
                            "an aws-chunked trailer has lines after x-amz-trailer-signature",
                        ));
                    }
                    if let Some(signature) = line.strip_prefix("x-amz-trailer-signature:") {
                        canonical.sort();
                        let text: String = canonical
                            .iter()
                            .map(|(n, v)| format!("{n}:{v}\n"))
                            .collect();
                        let hash = sigv4::hex(&Sha256::digest(text.as_bytes()));
                        let expected = self.keys.incoming.next("TRAILER", &hash);
                        if !bool::from(
                            expected
                                .as_bytes()
                                .ct_eq(signature.trim().to_ascii_lowercase().as_bytes()),
                        ) {
                            return Err(Refusal::BadSignature);
                        }
                        let resigned = self.keys.outgoing.next("TRAILER", &hash);
                        out.append(raw);
                        out.extend_from_slice(
                            format!("x-amz-trailer-signature:{resigned}\r\n").as_bytes(),
                        );
                        *signed = true;
                    } else if line.is_empty() {
                        if !*signed {
                            return Err(Refusal::malformed(
                                "an aws-chunked trailer ends without x-amz-trailer-signature",
                            ));
                        }
                        out.append(raw);
                        out.extend_from_slice(b"\r\n");
                        self.state = State::Done;
                    } else {
                        let (name, value) = line.split_once(':').ok_or_else(|| {
                            Refusal::malformed("an aws-chunked trailer line is not name:value")
                        })?;
                        canonical
                            .push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
                        raw.extend_from_slice(line.as_bytes());
                        raw.extend_from_slice(b"\r\n");
                    }
                }
                State::Done => {
                    if !self.input.is_empty() {
                        return Err(Refusal::malformed("bytes after the last aws-chunked chunk"));
                    }
                    return Ok(());
                }
            }
        }
    }

    fn refuse(&self, refusal: Refusal) -> BoxError {
        let text = format!("the mfa-exec proxy refused the body: {refusal:?}");
        if let Ok(mut slot) = self.refused.lock() {
            *slot = Some(refusal);
        }
        text.into()
    }
}

/// The next CRLF-ended line of the input, taken out of it; None until it has arrived whole.
fn take_line(input: &mut Vec<u8>) -> Result<Option<String>, Refusal> {
    match input.windows(2).position(|w| w == b"\r\n") {
        Some(end) => {
            let line = String::from_utf8(input[..end].to_vec())
                .map_err(|_| Refusal::malformed("an aws-chunked line is not text"))?;
            input.drain(..end + 2);
            Ok(Some(line))
        }
        None if input.len() > MAX_LINE => {
            Err(Refusal::malformed("an aws-chunked line is too long"))
        }
        None => Ok(None),
    }
}

impl HttpBody for Resigner {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            let mut out = Vec::new();
            if let Err(refusal) = this.process(&mut out) {
                return Poll::Ready(Some(Err(this.refuse(refusal))));
            }
            if !out.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
            }
            if this.ended {
                return Poll::Ready(match this.state {
                    State::Done => None,
                    _ => Some(Err(
                        this.refuse(Refusal::malformed("the aws-chunked body ended early"))
                    )),
                });
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        this.input.extend_from_slice(&data);
                    }
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => this.ended = true,
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        // Every signature keeps its length: the body is as long as the command's.
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    fn sig(amz_date: &str) -> Signature {
        let (parts, ()) = http::Request::builder()
            .header("host", "h")
            .header("x-amz-date", amz_date)
            .header(
                "authorization",
                format!("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/{}/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9", &amz_date[..8]),
            )
            .body(())
            .unwrap()
            .into_parts();
        sigv4::parse(&parts).unwrap()
    }

    /// The S3 API reference's example: a 66,560-byte object of 'a's in 64 KiB chunks, seed
    /// 4f232c43…, first chunk signature ad80c730…, second 0055627c…, last b6c6ea8a….
    #[test]
    fn the_s3_reference_example_verifies_and_is_re_signed_in_the_other_chain() {
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        let s = sig("20130524T000000Z");
        let mut body = Vec::new();
        for (size, signature) in [
            (
                65536,
                "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
            ),
            (
                1024,
                "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
            ),
            (
                0,
                "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
            ),
        ] {
            body.extend_from_slice(format!("{size:x};chunk-signature={signature}\r\n").as_bytes());
            body.extend(std::iter::repeat_n(b'a', size));
            body.extend_from_slice(b"\r\n");
        }
        let run = |body: Vec<u8>| resign(secret, &s, body, false);
        let (out, refused) = run(body.clone());
        let out = out.unwrap();
        assert_eq!(refused, None);
        assert_eq!(out.len(), body.len());
        assert!(
            !out.windows(16).any(|w| w == b"ad80c730a21e5b8d"),
            "the command's signatures are gone"
        );
        let mut tampered = body;
        tampered[200] = b'b';
        let (out, refused) = run(tampered);
        assert!(out.is_err());
        assert_eq!(refused, Some(Refusal::BadSignature));
    }

    /// `body` through a [`Resigner`] that checks it in `secret`'s chain (`trailer`: it must end
    /// with a signed trailer) and signs it again with another: what comes out, and why it
    /// refused, if it did.
    fn resign(
        secret: &str,
        s: &Signature,
        body: Vec<u8>,
        trailer: bool,
    ) -> (Result<Bytes, BoxError>, Option<Refusal>) {
        let keys = Keys {
            incoming: Chain::new(secret, s, s.signature.clone()),
            outgoing: Chain::new("another secret", s, "0".repeat(64)),
        };
        let inner = http_body_util::Full::new(Bytes::from(body))
            .map_err(|n| match n {})
            .boxed_unsync();
        let refused = Arc::new(Mutex::new(None));
        let out = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(Resigner::new(inner, keys, trailer, refused.clone()).collect())
            .map(|c| c.to_bytes());
        let refused = refused.lock().unwrap().clone();
        (out, refused)
    }

    /// A body of one chunk and a trailer, signed in the run's chain, its trailer lines as given
    /// (`SIG` stands for the trailer's signature).
    fn trailer_body(secret: &str, s: &Signature, trailer: &[&str]) -> Vec<u8> {
        let mut chain = Chain::new(secret, s, s.signature.clone());
        let mut body = Vec::new();
        for data in [&b"hello"[..], b""] {
            let hashes = format!("{EMPTY_SHA256}\n{}", sigv4::hex(&Sha256::digest(data)));
            let signature = chain.next("PAYLOAD", &hashes);
            body.extend_from_slice(
                format!("{:x};chunk-signature={signature}\r\n", data.len()).as_bytes(),
            );
            body.extend_from_slice(data);
            if !data.is_empty() {
                body.extend_from_slice(b"\r\n");
            }
        }
        let signed = "x-amz-checksum-crc32:NhCmhg==\n";
        let signature = chain.next("TRAILER", &sigv4::hex(&Sha256::digest(signed.as_bytes())));
        for line in trailer {
            body.extend_from_slice(line.replace("SIG", &signature).as_bytes());
            body.extend_from_slice(b"\r\n");
        }
        body
    }

    #[test]
    fn a_trailer_must_end_with_its_signature_and_nothing_after_it() {
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        let s = sig("20130524T000000Z");
        let run = |body: Vec<u8>| {
            let (out, refused) = resign(secret, &s, body, true);
            (out.is_ok(), refused)
        };
        let crc = "x-amz-checksum-crc32:NhCmhg==";
        let good = trailer_body(secret, &s, &[crc, "x-amz-trailer-signature:SIG", ""]);
        assert_eq!(run(good), (true, None));
        for (why, lines) in [
            ("no signature", vec![crc, ""]),
            (
                "a header after the signature",
                vec![crc, "x-amz-trailer-signature:SIG", "x-amz-meta-extra:1", ""],
            ),
            (
                "a second signature",
                vec![
                    crc,
                    "x-amz-trailer-signature:SIG",
                    "x-amz-trailer-signature:SIG",
                    "",
                ],
            ),
        ] {
            let (ok, refused) = run(trailer_body(secret, &s, &lines));
            assert!(!ok, "{why} was accepted");
            assert!(
                matches!(refused, Some(Refusal::Malformed(_))),
                "{why}: {refused:?}"
            );
        }
    }
}
