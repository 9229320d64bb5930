//! The body of an S3 request, checked as S3 checks it before it stores a byte:
//! `x-amz-content-sha256` (required with SigV4 header authentication) must be the body's hex
//! SHA-256, `UNSIGNED-PAYLOAD`, or a streaming form; `Content-MD5` and an
//! `x-amz-checksum-crc32` header must match the body; and an `aws-chunked` body is decoded:
//! `STREAMING-UNSIGNED-PAYLOAD-TRAILER` with its trailing checksum checked, and signed chunks
//! (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`) each checked in the chain of signatures
//! that starts at the request's own, the trailer's signature and checksum too (`--proxy`
//! re-signs such bodies; ECDSA chunks are answered 501). It also computes the MD5 that S3's
//! ETag and `Content-MD5` are made of.
//! (S3 API reference: "Common Request Headers", "Signature Calculations for the Authorization
//! Header: Transferring Payload in Multiple Chunks", "Checking object integrity".)

use sha2::Digest;

use crate::errors::{err, StsError};
use crate::ids::base64;
use crate::request::Incoming;
use crate::sigv4::parse_authorization;

/// The body a request carries, decoded (aws-chunked undone) and checked.
/// `secret`: the signer's secret access key, which signed chunks are checked with.
pub(crate) fn checked_body(rq: &Incoming, secret: &str) -> Result<Vec<u8>, StsError> {
    let Some(claimed) = rq.header("x-amz-content-sha256") else {
        return Err(err(
            400,
            "InvalidRequest",
            "Missing required header for this request: x-amz-content-sha256",
        ));
    };
    let body = match claimed {
        "UNSIGNED-PAYLOAD" => rq.body.clone(),
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER" => unchunk(rq, None)?,
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" | "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" => {
            let chain = Chain::of(rq, secret)?;
            unchunk(rq, Some(chain))?
        }
        "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"
        | "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER" => {
            return Err(err(
                501,
                "NotImplemented",
                format!("The stand-in's S3 does not verify SigV4a chunks ({claimed}); send the body's SHA-256, UNSIGNED-PAYLOAD or an aws-chunked body signed with SigV4"),
            ))
        }
        hash if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            if !hex(&sha2::Sha256::digest(&rq.body)).eq_ignore_ascii_case(hash) {
                return Err(err(
                    400,
                    "XAmzContentSHA256Mismatch",
                    "The provided 'x-amz-content-sha256' header does not match what was computed.",
                ));
            }
            rq.body.clone()
        }
        _ => {
            return Err(err(
                400,
                "InvalidArgument",
                "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER or a valid sha256 value.",
            ))
        }
    };
    if let Some(md5) = rq.header("content-md5") {
        if md5.trim() != base64(&md5_digest(&body)) {
            return Err(err(
                400,
                "BadDigest",
                "The Content-MD5 you specified did not match what we received.",
            ));
        }
    }
    if let Some(crc) = rq.header("x-amz-checksum-crc32") {
        check_crc32(crc, &body)?;
    }
    Ok(body)
}

fn check_crc32(claimed: &str, body: &[u8]) -> Result<(), StsError> {
    if claimed.trim() != base64(&crc32fast::hash(body).to_be_bytes()) {
        return Err(err(
            400,
            "BadDigest",
            "The CRC32 you specified did not match the calculated checksum.",
        ));
    }
    Ok(())
}

/// The chain of chunk signatures of a request: each chunk's signature is the HMAC, with the
/// request's signing key, of `AWS4-HMAC-SHA256-PAYLOAD\n{X-Amz-Date}\n{scope}\n{previous
/// signature}\n{sha256("")}\n{sha256(chunk)}`, the first "previous" being the request's own
/// signature; the trailer's is over `AWS4-HMAC-SHA256-TRAILER\n…\n{sha256(trailing headers)}`.
struct Chain {
    key: Vec<u8>,
    amz_date: String,
    scope: String,
    previous: String,
}

impl Chain {
    fn of(rq: &Incoming, secret: &str) -> Result<Chain, StsError> {
        let auth = rq
            .header("authorization")
            .map(parse_authorization)
            .transpose()?
            .ok_or_else(|| err(403, "AccessDenied", "Signed chunks need a signed request"))?;
        let amz_date = rq.header("x-amz-date").unwrap_or_default().to_string();
        let time = crate::sigv4::parse_amz_date_pub(&amz_date)
            .ok_or_else(|| err(400, "IncompleteSignature", "X-Amz-Date is not valid"))?;
        let key =
            aws_sigv4::sign::v4::generate_signing_key(secret, time, &auth.region, &auth.service);
        Ok(Chain {
            key: key.as_ref().to_vec(),
            scope: format!(
                "{}/{}/{}/aws4_request",
                &amz_date[..8],
                auth.region,
                auth.service
            ),
            amz_date,
            previous: auth.signature().to_string(),
        })
    }

    /// Checks the next signature of the chain.
    fn check(&mut self, kind: &str, hashes: &str, claimed: &str) -> Result<(), StsError> {
        let string = format!(
            "AWS4-HMAC-SHA256-{kind}\n{}\n{}\n{}\n{hashes}",
            self.amz_date, self.scope, self.previous
        );
        let expected = aws_sigv4::sign::v4::calculate_signature(&self.key, string.as_bytes());
        if expected != claimed.trim() {
            return Err(err(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. Check your key and signing method.",
            ));
        }
        self.previous = expected;
        Ok(())
    }
}

const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Undoes `Content-Encoding: aws-chunked`: `hex-size[;chunk-signature=SIG]\r\nDATA\r\n`
/// chunks, a 0-size chunk, then trailing headers (`x-amz-checksum-crc32:BASE64`, and with
/// signed chunks `x-amz-trailer-signature:SIG`) and `\r\n`. With a `chain`, every chunk's
/// signature (and the trailer's, when there is a trailer) must be the chain's next. The
/// decoded length must equal `x-amz-decoded-content-length`.
fn unchunk(rq: &Incoming, mut chain: Option<Chain>) -> Result<Vec<u8>, StsError> {
    let bad = || {
        err(
            400,
            "IncompleteBody",
            "The request body terminated unexpectedly",
        )
    };
    let mut data = rq.body.as_slice();
    let mut out = Vec::new();
    loop {
        let end = data.windows(2).position(|w| w == b"\r\n").ok_or_else(bad)?;
        let line = std::str::from_utf8(&data[..end]).map_err(|_| bad())?;
        let (size, signature) = line.split_once(';').unwrap_or((line, ""));
        let size = usize::from_str_radix(size.trim(), 16).map_err(|_| bad())?;
        data = &data[end + 2..];
        let chunk = data.get(..size).ok_or_else(bad)?;
        if let Some(chain) = chain.as_mut() {
            let signature = signature.strip_prefix("chunk-signature=").ok_or_else(bad)?;
            let hashes = format!("{EMPTY_SHA256}\n{}", hex(&sha2::Sha256::digest(chunk)));
            chain.check("PAYLOAD", &hashes, signature)?;
        }
        if size == 0 {
            break;
        }
        out.extend_from_slice(chunk);
        data = data.get(size..).ok_or_else(bad)?;
        data = data.strip_prefix(b"\r\n").ok_or_else(bad)?;
    }
    let trailer = String::from_utf8_lossy(data);
    let mut trailing = Vec::new();
    let mut trailer_signature = None;
    for line in trailer.split("\r\n").filter(|l| !l.is_empty()) {
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            if name == "x-amz-trailer-signature" {
                trailer_signature = Some(value.trim().to_string());
                continue;
            }
            if name == "x-amz-checksum-crc32" {
                check_crc32(value, &out)?;
            }
            trailing.push((name, value.trim().to_string()));
        }
    }
    let signed_trailer =
        rq.header("x-amz-content-sha256") == Some("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER");
    if let (Some(chain), true) = (chain.as_mut(), signed_trailer) {
        let signature = trailer_signature.ok_or_else(bad)?;
        trailing.sort();
        let text: String = trailing.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
        chain.check(
            "TRAILER",
            &hex(&sha2::Sha256::digest(text.as_bytes())),
            &signature,
        )?;
    }
    let decoded: Option<usize> = rq
        .header("x-amz-decoded-content-length")
        .and_then(|v| v.trim().parse().ok());
    if decoded != Some(out.len()) {
        return Err(bad());
    }
    Ok(out)
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// MD5 (RFC 1321): S3's ETag of a single-part object is its hex, `Content-Md5` its base64.
pub(crate) fn md5_digest(data: &[u8]) -> [u8; 16] {
    const S: [u32; 64] = [
        7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5,
        9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10,
        15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
    ];
    let k: Vec<u32> = (0..64)
        .map(|i| ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32)
        .collect();
    let mut message = data.to_vec();
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_le_bytes());
    let mut h: [u32; 4] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
    for block in message.chunks(64) {
        let m: Vec<u32> = block
            .chunks(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect();
        let [mut a, mut b, mut c, mut d] = h;
        for i in 0..64 {
            let (f, g) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((d & b) | (!d & c), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let rotated = a
                .wrapping_add(f)
                .wrapping_add(k[i])
                .wrapping_add(m[g])
                .rotate_left(S[i]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(rotated);
        }
        h = [
            h[0].wrapping_add(a),
            h[1].wrapping_add(b),
            h[2].wrapping_add(c),
            h[3].wrapping_add(d),
        ];
    }
    let mut out = [0u8; 16];
    for (i, word) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&word.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_rfc_1321() {
        assert_eq!(hex(&md5_digest(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(
            hex(&md5_digest(b"The quick brown fox jumps over the lazy dog")),
            "9e107d9d372bb6826bd81d3542a419d6"
        );
        // RFC 1321's longest test: more than one 64-byte block.
        assert_eq!(
            hex(&md5_digest(
                b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"
            )),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }

    #[test]
    fn an_unsigned_chunked_body_is_decoded_and_its_trailer_checked() {
        let crc = base64(&crc32fast::hash(b"hello world").to_be_bytes());
        let body = format!("5\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:{crc}\r\n\r\n");
        let rq = Incoming {
            method: "PUT".into(),
            url: "/b/k".into(),
            headers: vec![
                (
                    "x-amz-content-sha256".into(),
                    "STREAMING-UNSIGNED-PAYLOAD-TRAILER".into(),
                ),
                ("x-amz-decoded-content-length".into(), "11".into()),
            ],
            body: body.into_bytes(),
        };
        assert_eq!(checked_body(&rq, "secret").unwrap(), b"hello world");
        let mut wrong = rq;
        wrong.body = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n".to_vec();
        wrong.headers[1].1 = "5".into();
        assert_eq!(
            checked_body(&wrong, "secret").unwrap_err().code,
            "BadDigest"
        );
    }

    /// The S3 API reference's signed-chunk example: 66,560 bytes of 'a' in two chunks and the
    /// final one, seeded by the request's signature 4f232c43….
    #[test]
    fn signed_chunks_are_checked_in_their_chain() {
        let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
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
        let rq = Incoming {
            method: "PUT".into(),
            url: "/examplebucket/chunkObject.txt".into(),
            headers: vec![
                ("authorization".into(), "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9".into()),
                ("x-amz-date".into(), "20130524T000000Z".into()),
                ("x-amz-content-sha256".into(), "STREAMING-AWS4-HMAC-SHA256-PAYLOAD".into()),
                ("x-amz-decoded-content-length".into(), "66560".into()),
            ],
            body,
        };
        assert_eq!(checked_body(&rq, secret).unwrap().len(), 66560);
        assert_eq!(
            checked_body(&rq, "another secret").unwrap_err().code,
            "SignatureDoesNotMatch"
        );
        let mut tampered = rq;
        tampered.body[100] = b'b';
        assert_eq!(
            checked_body(&tampered, secret).unwrap_err().code,
            "SignatureDoesNotMatch"
        );
    }
}
