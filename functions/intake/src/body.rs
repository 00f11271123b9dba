//! The request body as the caller wrote it. Apex's `HttpRequest.setCompressed(true)` sends the
//! body gzip-compressed with `Content-Encoding: gzip`; it is decoded here, never to more than the
//! body limit (a decompression bomb is refused as too large), and the signature is then checked
//! over the decoded bytes, which are what Apex signed.

use std::borrow::Cow;
use std::io::Read;

use lambda_http::http::HeaderMap;
use lambda_http::http::header::CONTENT_ENCODING;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the body decodes to more than {limit} bytes, the limit")]
    TooLarge { limit: usize },
    #[error("the gzip body cannot be decoded: {0}")]
    Undecodable(String),
    #[error(
        "Content-Encoding {0:?} is not supported; send the body as it is, or gzip-compressed (Content-Encoding: gzip)"
    )]
    UnsupportedEncoding(String),
}

/// `body` decoded as its `Content-Encoding` says (none, `identity` or `gzip`), at most `limit`
/// bytes.
pub fn decoded<'a>(
    headers: &HeaderMap,
    body: &'a [u8],
    limit: usize,
) -> Result<Cow<'a, [u8]>, BodyError> {
    let encodings: Vec<String> = headers
        .get_all(CONTENT_ENCODING)
        .iter()
        .flat_map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split(',')
                .map(|e| e.trim().to_ascii_lowercase())
                .filter(|e| !e.is_empty() && e != "identity")
                .collect::<Vec<_>>()
        })
        .collect();
    match encodings.as_slice() {
        [] => Ok(Cow::Borrowed(body)),
        [one] if one == "gzip" || one == "x-gzip" => gunzip(body, limit).map(Cow::Owned),
        other => {
            let shown: String = other.join(", ").chars().take(64).collect();
            Err(BodyError::UnsupportedEncoding(shown))
        }
    }
}

fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::GzDecoder::new(body)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| BodyError::Undecodable(e.to_string()))?;
    if out.len() > limit {
        return Err(BodyError::TooLarge { limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use lambda_http::http::HeaderValue;

    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn encoded(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_ENCODING, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn a_gzip_body_is_decoded_and_a_plain_one_kept() {
        let body = br#"{"opportunityId":"006A000010khO8J"}"#;
        let compressed = gzip(body);
        let d = decoded(&encoded("gzip"), &compressed, 1024).unwrap();
        assert_eq!(d.as_ref(), body);
        let d = decoded(&encoded("GZip"), &compressed, 1024).unwrap();
        assert_eq!(d.as_ref(), body);
        assert_eq!(
            decoded(&HeaderMap::new(), body, 1024).unwrap().as_ref(),
            body
        );
        assert_eq!(
            decoded(&encoded("identity"), body, 1024).unwrap().as_ref(),
            body
        );
    }

    #[test]
    fn a_bomb_a_broken_stream_and_other_encodings_are_refused() {
        let bomb = gzip(&vec![b' '; 10 * 1024 * 1024]);
        assert!(bomb.len() < 20 * 1024);
        assert_eq!(
            decoded(&encoded("gzip"), &bomb, 1024 * 1024).unwrap_err(),
            BodyError::TooLarge { limit: 1024 * 1024 }
        );
        assert!(matches!(
            decoded(&encoded("gzip"), b"not gzip", 1024),
            Err(BodyError::Undecodable(_))
        ));
        assert!(matches!(
            decoded(&encoded("br"), b"x", 1024),
            Err(BodyError::UnsupportedEncoding(_))
        ));
        assert!(matches!(
            decoded(&encoded("gzip, gzip"), &gzip(b"x"), 1024),
            Err(BodyError::UnsupportedEncoding(_))
        ));
    }
}
