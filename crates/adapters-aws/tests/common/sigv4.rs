//! S3's check of a presigned URL, which moto does not make: moto serves a presigned URL
//! whatever its signature and expiry say. The blob suite's presigned client runs this
//! check first, as S3 would, and forwards only URLs that pass it to moto.
//!
//! Written from the SigV4 query-string specification, not with the SDK's signer, so the
//! URLs the adapter makes are checked by an independent implementation: the method, the
//! path (bucket and key), every `X-Amz-*` parameter and the signed headers are covered by
//! the signature, and `X-Amz-Date + X-Amz-Expires` is the end of the URL's life.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Why S3 would refuse a presigned request, with the status it answers.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 400: not a SigV4 presigned URL, or a parameter that does not parse.
    Malformed(String),
    /// 403: the signature is not the one the secret key makes for this request.
    SignatureDoesNotMatch,
    /// 403: the URL's life is over.
    Expired,
}

impl Refusal {
    /// The HTTP status S3 answers with.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Malformed(_) => 400,
            Refusal::SignatureDoesNotMatch | Refusal::Expired => 403,
        }
    }
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Seconds since the epoch of a `YYYYMMDDTHHMMSSZ` date.
fn parse_amz_date(text: &str) -> Option<i64> {
    let digits = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    if text.len() != 16 || &text[8..9] != "T" || &text[15..16] != "Z" {
        return None;
    }
    let (y, m, d) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
    let (hh, mm, ss) = (digits(9..11)?, digits(11..13)?, digits(13..15)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks `method` on presigned `url`, sent with `headers`, as S3 does, with
/// `secret_key` as the secret of the access key the URL names: every header the URL
/// signs must be sent, with the value it was signed with.
pub fn verify(
    method: &str,
    url: &str,
    headers: &BTreeMap<String, String>,
    secret_key: &str,
) -> Result<(), Refusal> {
    let malformed = |what: &str| Refusal::Malformed(what.to_owned());
    let rest = url
        .split_once("://")
        .map(|(_, rest)| rest)
        .ok_or_else(|| malformed("no scheme"))?;
    let (authority, path_and_query) = rest
        .split_once('/')
        .map(|(authority, path)| (authority, format!("/{path}")))
        .ok_or_else(|| malformed("no path"))?;
    let (path, query) = path_and_query
        .split_once('?')
        .ok_or_else(|| malformed("no query"))?;
    let params: Vec<(&str, &str)> = query
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .collect();
    let param = |name: &str| {
        let mut found = params.iter().filter(|(n, _)| *n == name);
        match (found.next(), found.next()) {
            (Some((_, value)), None) => Ok(*value),
            _ => Err(Refusal::Malformed(format!("{name} must appear once"))),
        }
    };
    if param("X-Amz-Algorithm")? != "AWS4-HMAC-SHA256" {
        return Err(malformed("unsupported algorithm"));
    }
    let credential = percent_decode(param("X-Amz-Credential")?);
    let (_access_key, scope) = credential
        .split_once('/')
        .ok_or_else(|| malformed("bad credential"))?;
    let scope_parts: Vec<&str> = scope.split('/').collect();
    let [day, region, service, "aws4_request"] = scope_parts[..] else {
        return Err(malformed("bad credential scope"));
    };
    let amz_date = param("X-Amz-Date")?;
    let signed_at = parse_amz_date(amz_date).ok_or_else(|| malformed("bad X-Amz-Date"))?;
    if !amz_date.starts_with(day) {
        return Err(malformed("the scope's day is not X-Amz-Date's"));
    }
    let expires: i64 = param("X-Amz-Expires")?
        .parse()
        .map_err(|_| malformed("bad X-Amz-Expires"))?;
    if !(1..=604_800).contains(&expires) {
        return Err(malformed("X-Amz-Expires out of range"));
    }
    let signed_headers = percent_decode(param("X-Amz-SignedHeaders")?);
    let mut canonical_headers = String::new();
    for name in signed_headers.split(';') {
        let value = if name == "host" {
            authority
        } else {
            // A signed header the request does not carry: S3 cannot rebuild the
            // signature.
            let sent = headers
                .iter()
                .find(|(sent, _)| sent.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.trim());
            match sent {
                Some(value) => value,
                None => return Err(Refusal::SignatureDoesNotMatch),
            }
        };
        canonical_headers.push_str(&format!("{name}:{value}\n"));
    }
    let signature = param("X-Amz-Signature")?;

    let mut canonical_params: Vec<(&str, &str)> = params
        .iter()
        .copied()
        .filter(|(name, _)| *name != "X-Amz-Signature")
        .collect();
    canonical_params.sort();
    let canonical_query = canonical_params
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&");
    let payload = params
        .iter()
        .find(|(name, _)| *name == "X-Amz-Content-Sha256")
        .map_or("UNSIGNED-PAYLOAD", |(_, value)| value);
    let canonical_request = format!(
        "{method}\n{path}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload}"
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{secret_key}").as_bytes(), day);
    for part in [region, service, "aws4_request"] {
        key = hmac(&key, part);
    }
    if hex::encode(hmac(&key, &string_to_sign)) != signature {
        return Err(Refusal::SignatureDoesNotMatch);
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    if now >= (signed_at + expires) as f64 {
        return Err(Refusal::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_dates_parse_to_epoch_seconds() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date("20240229T123456Z"), Some(1_709_210_096));
        assert_eq!(parse_amz_date("2024-02-29"), None);
    }
}
