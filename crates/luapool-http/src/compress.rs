//! Response compression (`compression = true`): the encoding a request's
//! `Accept-Encoding` prefers among zstd, brotli and gzip ([`negotiate`]), and a reply's
//! body compressed with it ([`compress`]) when its type is text-like, its body at least
//! `compression_min_size` bytes, and the handler did not encode it already.
//!
//! | encoding | level | why |
//! |---|---|---|
//! | zstd | 3 (zstd's default) | the fastest of the three at a ratio close to brotli's |
//! | br | quality 4, the window no larger than the body | the usual quality for dynamic responses (11 is for static files, far slower) |
//! | gzip | 6 (zlib's default) | |

use std::cell::RefCell;
use std::io::Write;

use bytes::Bytes;
use http::header::{
    HeaderValue, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE,
    ETAG, VARY,
};
use http::{HeaderMap, StatusCode};

/// A content coding the server compresses with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// `zstd`.
    Zstd,
    /// `br`.
    Brotli,
    /// `gzip`.
    Gzip,
}

/// zstd's level.
const ZSTD_LEVEL: i32 = 3;
/// brotli's quality.
const BROTLI_QUALITY: i32 = 4;
/// brotli's largest window (log2 of its size in bytes), for bodies of 4 MiB and more.
const BROTLI_WINDOW: i32 = 22;
/// brotli's smallest window.
const BROTLI_MIN_WINDOW: i32 = 10;
/// gzip's level.
const GZIP_LEVEL: u32 = 6;

impl Encoding {
    /// Every encoding, the server's preference first (for equal q-values).
    const ALL: [Encoding; 3] = [Encoding::Zstd, Encoding::Brotli, Encoding::Gzip];

    /// Its name in `Content-Encoding`.
    fn name(self) -> &'static str {
        match self {
            Encoding::Zstd => "zstd",
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
        }
    }

    /// `body` compressed, or `None` if compressing failed.
    fn compress(self, body: &[u8]) -> Option<Vec<u8>> {
        match self {
            Encoding::Zstd => {
                thread_local! {
                    // One context per worker thread, reused: creating one per response
                    // costs more than compressing a small body.
                    static ZSTD: RefCell<Option<zstd::bulk::Compressor<'static>>> =
                        const { RefCell::new(None) };
                }
                ZSTD.with(|cell| {
                    let mut cell = cell.borrow_mut();
                    if cell.is_none() {
                        *cell = zstd::bulk::Compressor::new(ZSTD_LEVEL).ok();
                    }
                    cell.as_mut()?.compress(body).ok()
                })
            }
            Encoding::Brotli => {
                // A window no larger than the body (as brotli's one-shot C API picks
                // it): the encoder's buffers and tables are sized by it.
                let fits = usize::BITS - body.len().max(1).leading_zeros();
                let lgwin = (fits as i32).clamp(BROTLI_MIN_WINDOW, BROTLI_WINDOW);
                let params = brotli::enc::BrotliEncoderParams {
                    quality: BROTLI_QUALITY,
                    lgwin,
                    size_hint: body.len(),
                    ..Default::default()
                };
                let mut out = Vec::with_capacity(body.len() / 2);
                brotli::BrotliCompress(&mut &body[..], &mut out, &params).ok()?;
                Some(out)
            }
            Encoding::Gzip => {
                let out = Vec::with_capacity(body.len() / 2);
                let mut encoder =
                    flate2::write::GzEncoder::new(out, flate2::Compression::new(GZIP_LEVEL));
                encoder.write_all(body).ok()?;
                encoder.finish().ok()
            }
        }
    }

    /// The encoding a coding named in `Accept-Encoding` stands for.
    fn named(coding: &str) -> Option<Encoding> {
        [
            ("zstd", Encoding::Zstd),
            ("br", Encoding::Brotli),
            ("gzip", Encoding::Gzip),
            ("x-gzip", Encoding::Gzip),
        ]
        .into_iter()
        .find(|(name, _)| coding.eq_ignore_ascii_case(name))
        .map(|(_, e)| e)
    }
}

/// The encoding to compress with for a request's `Accept-Encoding` values: the
/// supported coding with the highest q-value (`*` stands for those not named; `q=0`
/// refuses), the server's preference (zstd, br, gzip) among equal ones; `None` if the
/// client accepts none of them.
pub(crate) fn negotiate<'a>(accept: impl IntoIterator<Item = &'a HeaderValue>) -> Option<Encoding> {
    // q-values in thousandths, as RFC 9110 writes them (at most three decimals).
    let mut q: [Option<u16>; 3] = [None; 3];
    let mut star: Option<u16> = None;
    for value in accept {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim();
            let weight = parts
                .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
                .next()
                .map_or(Some(1000), parse_q);
            let Some(weight) = weight else { continue };
            if coding == "*" {
                star = Some(weight);
            } else if let Some(e) = Encoding::named(coding) {
                let slot = &mut q[Encoding::ALL.iter().position(|x| *x == e).unwrap_or(0)];
                // The highest of repeated mentions (`gzip` and `x-gzip`).
                *slot = Some(slot.map_or(weight, |w| w.max(weight)));
            }
        }
    }
    let mut best: Option<(Encoding, u16)> = None;
    for (e, q) in Encoding::ALL.into_iter().zip(q) {
        let weight = q.or(star).unwrap_or(0);
        if weight > 0 && best.is_none_or(|(_, w)| weight > w) {
            best = Some((e, weight));
        }
    }
    best.map(|(e, _)| e)
}

/// A q-value (`0` to `1`, up to three decimals) in thousandths; `None` if malformed.
fn parse_q(text: &str) -> Option<u16> {
    let text = text.trim();
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = match int {
        "0" => frac
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(3)
            .fold(0u16, |n, b| n * 10 + u16::from(b - b'0')),
        "1" if frac.bytes().all(|b| b == b'0') => 1000,
        _ => return None,
    };
    Some(thousandths)
}

/// Whether a response of this type is worth compressing: text, JSON, JavaScript, XML,
/// SVG (not images, archives or anything already compressed).
fn compressible(content_type: &[u8]) -> bool {
    let essence = content_type
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let Ok(essence) = std::str::from_utf8(essence) else {
        return false;
    };
    let essence = essence.to_ascii_lowercase();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    match kind {
        "text" => true,
        "application" => {
            matches!(
                subtype,
                "json" | "javascript" | "x-javascript" | "ecmascript" | "xml" | "xhtml+xml"
            ) || subtype.ends_with("+json")
                || subtype.ends_with("+xml")
        }
        "image" => subtype == "svg+xml",
        _ => false,
    }
}

/// A reply's body, compressed with `accepted` when compression applies to it (see the
/// module's docs), with `headers` updated to match: `content-encoding`, a weak `etag`,
/// no `content-length`; `vary: accept-encoding` is added to every response that would
/// be compressed for a client that accepts it.
pub(crate) fn compress(
    status: StatusCode,
    headers: &mut HeaderMap,
    body: Bytes,
    accepted: Option<Encoding>,
    min_size: usize,
) -> Bytes {
    let eligible = body.len() >= min_size.max(1)
        && status.is_success()
        && status != StatusCode::NO_CONTENT
        && status != StatusCode::PARTIAL_CONTENT
        && !headers.contains_key(CONTENT_ENCODING)
        && !headers.contains_key(CONTENT_RANGE)
        && headers
            .get(CONTENT_TYPE)
            .is_some_and(|t| compressible(t.as_bytes()))
        && !headers.get_all(CACHE_CONTROL).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.to_ascii_lowercase().contains("no-transform"))
        });
    if !eligible {
        return body;
    }
    add_vary(headers);
    let Some(encoding) = accepted else {
        return body;
    };
    let Some(compressed) = encoding.compress(&body) else {
        return body;
    };
    if compressed.len() >= body.len() {
        return body;
    }
    headers.insert(CONTENT_ENCODING, HeaderValue::from_static(encoding.name()));
    headers.remove(CONTENT_LENGTH);
    if let Some(etag) = headers.get(ETAG) {
        // The compressed body is not byte-for-byte the tagged one.
        if etag.as_bytes().starts_with(b"\"") {
            let mut weak = b"W/".to_vec();
            weak.extend_from_slice(etag.as_bytes());
            if let Ok(weak) = HeaderValue::from_bytes(&weak) {
                headers.insert(ETAG, weak);
            }
        }
    }
    Bytes::from(compressed)
}

/// Adds `accept-encoding` to `vary` unless it is there already (or `vary` is `*`).
fn add_vary(headers: &mut HeaderMap) {
    let present = headers.get_all(VARY).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',').any(|f| {
                let f = f.trim();
                f == "*" || f.eq_ignore_ascii_case("accept-encoding")
            })
        })
    });
    if !present {
        headers.append(VARY, HeaderValue::from_static("accept-encoding"));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::io::Read;

    fn pick(accept: &str) -> Option<Encoding> {
        negotiate([&HeaderValue::from_str(accept).unwrap()])
    }

    #[test]
    fn accept_encoding_is_negotiated_with_q_values() {
        assert_eq!(pick("gzip"), Some(Encoding::Gzip));
        assert_eq!(pick("gzip, deflate, br, zstd"), Some(Encoding::Zstd));
        assert_eq!(pick("gzip, br"), Some(Encoding::Brotli));
        assert_eq!(pick("zstd;q=0.5, gzip;q=0.8"), Some(Encoding::Gzip));
        assert_eq!(pick("gzip;q=0, br;q=0"), None);
        assert_eq!(pick("*"), Some(Encoding::Zstd));
        assert_eq!(pick("*;q=0"), None);
        assert_eq!(pick("*, zstd;q=0, br;q=0"), Some(Encoding::Gzip));
        assert_eq!(pick("identity"), None);
        assert_eq!(pick("deflate"), None);
        assert_eq!(pick("GZIP; Q=1.0"), Some(Encoding::Gzip));
        assert_eq!(pick("x-gzip;q=0.1"), Some(Encoding::Gzip));
        assert_eq!(pick("gzip;q=2"), None);
        assert_eq!(pick("gzip;q=0.001"), Some(Encoding::Gzip));
        assert_eq!(negotiate([]), None);
    }

    #[test]
    fn q_values_parse() {
        assert_eq!(parse_q("1"), Some(1000));
        assert_eq!(parse_q("1.000"), Some(1000));
        assert_eq!(parse_q("0.5"), Some(500));
        assert_eq!(parse_q("0.25"), Some(250));
        assert_eq!(parse_q("0"), Some(0));
        assert_eq!(parse_q("0.0001"), None);
        assert_eq!(parse_q("1.5"), None);
        assert_eq!(parse_q("x"), None);
    }

    #[test]
    fn only_text_like_types_are_compressible() {
        for t in [
            "text/html; charset=utf-8",
            "application/json",
            "application/problem+json",
            "application/javascript",
            "application/xml",
            "image/svg+xml",
            "Text/Plain",
        ] {
            assert!(compressible(t.as_bytes()), "{t}");
        }
        for t in [
            "image/png",
            "application/octet-stream",
            "application/zip",
            "json",
        ] {
            assert!(!compressible(t.as_bytes()), "{t}");
        }
    }

    #[test]
    fn headers_follow_the_body() {
        let body = Bytes::from("{\"a\":1}".repeat(400));
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(ETAG, HeaderValue::from_static("\"v1\""));
        h.insert(VARY, HeaderValue::from_static("Origin"));
        let out = compress(
            StatusCode::OK,
            &mut h,
            body.clone(),
            Some(Encoding::Gzip),
            1024,
        );
        assert!(out.len() < body.len());
        assert_eq!(h[CONTENT_ENCODING], "gzip");
        assert_eq!(h[ETAG], "W/\"v1\"");
        let vary: Vec<_> = h.get_all(VARY).iter().collect();
        assert_eq!(vary, ["Origin", "accept-encoding"]);
        let mut d = flate2::read::GzDecoder::new(&out[..]);
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut d, &mut text).unwrap();
        assert_eq!(text, body);
        // Not for a client that accepts none: the same body, but `vary` all the same.
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let out = compress(StatusCode::OK, &mut h, body.clone(), None, 1024);
        assert_eq!(out, body);
        assert_eq!(h[VARY], "accept-encoding");
        assert!(!h.contains_key(CONTENT_ENCODING));
        // Small, a status without a body to compress, already encoded: untouched.
        for (status, extra) in [
            (StatusCode::OK, Some((CONTENT_ENCODING, "br"))),
            (StatusCode::PARTIAL_CONTENT, None),
            (StatusCode::NOT_MODIFIED, None),
            (StatusCode::OK, Some((CACHE_CONTROL, "no-transform"))),
        ] {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            if let Some((name, value)) = extra.clone() {
                h.insert(name, HeaderValue::from_static(value));
            }
            let before = h.clone();
            let out = compress(status, &mut h, body.clone(), Some(Encoding::Zstd), 1024);
            assert_eq!(out, body, "{status} {extra:?}");
            assert_eq!(h, before, "{status} {extra:?}");
        }
    }

    #[test]
    fn every_encoding_round_trips() {
        let varied: String = (0..40_000)
            .map(|i| format!("{},", i * 7919 % 10007))
            .collect();
        for body in [
            "x".to_string(),
            "hello, compressed world. ".repeat(100),
            varied,
        ] {
            let zstd = Encoding::Zstd.compress(body.as_bytes()).unwrap();
            assert_eq!(
                zstd::bulk::decompress(&zstd, 1 << 20).unwrap(),
                body.as_bytes()
            );
            let br = Encoding::Brotli.compress(body.as_bytes()).unwrap();
            let mut out = Vec::new();
            brotli::BrotliDecompress(&mut &br[..], &mut out).unwrap();
            assert_eq!(out, body.as_bytes());
            let gz = Encoding::Gzip.compress(body.as_bytes()).unwrap();
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&gz[..])
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, body.as_bytes());
        }
    }
}
