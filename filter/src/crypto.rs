//! AES-128 for HLS (RFC 8216 §4.3.2.4, §5.2): whole-segment AES-128-CBC with PKCS#7, keys derived
//! per rotation period without a key server, and HMAC tokens that guard key delivery.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::{Endpoint, KeyMaterial};
use crate::error::FilterError;

type HmacSha256 = Hmac<Sha256>;

fn keyed(secret: &[u8], parts: &[&[u8]]) -> Result<HmacSha256, FilterError> {
    let mut mac = HmacSha256::new_from_slice(secret)
        .map_err(|_| FilterError::BadGateway("HMAC key rejected".into()))?;
    for p in parts {
        mac.update(p);
    }
    Ok(mac)
}

fn hmac(secret: &[u8], parts: &[&[u8]]) -> Result<[u8; 32], FilterError> {
    Ok(keyed(secret, parts)?.finalize().into_bytes().into())
}

/// The HMAC a key token carries for `path` and `expiry`.
fn token_mac(secret: &str, path: &str, expiry: u64) -> Result<HmacSha256, FilterError> {
    let e = expiry.to_string();
    keyed(secret.as_bytes(), &[path.as_bytes(), b"\n", e.as_bytes()])
}

/// Encrypts a whole segment: AES-128-CBC, PKCS#7 padding.
pub fn encrypt_segment(key: &[u8; 16], iv: &[u8; 16], data: &[u8]) -> Vec<u8> {
    crate::aes128::cbc_pkcs7_encrypt(key, iv, data)
}

/// The key of a period: the static key, or the first 16 bytes of
/// HMAC-SHA256(secret, "{channel}/{endpoint}/{period}"). Every edge computes the same key.
pub fn key_for(endpoint: &Endpoint, period: u64) -> Result<[u8; 16], FilterError> {
    let keys = endpoint
        .keys()
        .ok_or_else(|| FilterError::NotFound("this endpoint is not encrypted".into()))?;
    match &keys.material {
        KeyMaterial::Static(k) => Ok(*k),
        KeyMaterial::Derived { secret } => {
            let label = format!("{}/{}/{period}", endpoint.channel, endpoint.name);
            let mac = hmac(secret.as_bytes(), &[label.as_bytes()])?;
            let mut key = [0u8; 16];
            key.copy_from_slice(&mac[..16]);
            Ok(key)
        }
    }
}

/// The IV of a segment: the constant IV, or its media sequence number as a 128-bit big-endian
/// integer.
pub fn iv_for(endpoint: &Endpoint, sequence: u64) -> [u8; 16] {
    endpoint
        .keys()
        .and_then(|k| k.constant_iv)
        .unwrap_or_else(|| u128::from(sequence).to_be_bytes())
}

/// A key-delivery token for `path`, valid until `expiry` (epoch seconds):
/// `{expiry}-{hex(HMAC-SHA256(secret, path "\n" expiry))[..32]}`.
pub fn token(secret: &str, path: &str, expiry: u64) -> Result<String, FilterError> {
    let mac = token_mac(secret, path, expiry)?.finalize().into_bytes();
    Ok(format!("{expiry}-{}", hex::encode(&mac[..16])))
}

/// Expiry of tokens minted now: rounded up to the minute so every edge and every request within
/// a minute mints the same token (playlists stay cacheable and identical across edges).
pub fn token_expiry(now_ms: i64, ttl_seconds: u64) -> u64 {
    let now = (now_ms.max(0) as u64) / 1000;
    (now + ttl_seconds).div_ceil(60) * 60
}

/// The one answer to a token that does not open this path: malformed, made with another secret
/// or for another path, or presented to a path that has no token secret (unknown channel or
/// endpoint, a clear endpoint). The same words whichever it was, so an unauthenticated caller
/// cannot tell an endpoint or key period that exists from one that does not.
pub const INVALID_TOKEN: &str = "invalid key token";

/// What a token is checked against on a path with no token secret: the same HMAC is computed
/// (and then refused whatever it says), so such a request costs what a wrong token costs.
const NO_SECRET: &str = "edgepack: no token secret for this path";

/// `{expiry}-{32 hex}` → (expiry, the 16 MAC bytes), if well-formed.
fn parse_token(t: &str) -> Option<(u64, [u8; 16])> {
    let (expiry, mac) = t.split_once('-')?;
    let expiry: u64 = expiry.parse().ok()?;
    let mut out = [0u8; 16];
    hex::decode_to_slice(mac, &mut out).ok()?;
    Some((expiry, out))
}

/// Checks a key-delivery or license token for `path`. `secret` is the endpoint's token secret,
/// `None` when the path has none (unknown channel or endpoint, clear endpoint). Every refusal is
/// 403: no token; [`INVALID_TOKEN`] for a malformed token, a wrong MAC or no secret (each costs
/// one HMAC-SHA256 and a constant-time comparison); "expired" only once the MAC is right (only a
/// caller who was given this token can see it) and the clock is past `expiry` (epoch seconds):
/// a token is valid through the last millisecond of its expiry second.
pub fn verify_token(
    secret: Option<&str>,
    path: &str,
    token_value: Option<&str>,
    now_ms: i64,
) -> Result<(), FilterError> {
    let t = token_value.ok_or_else(|| {
        FilterError::Forbidden(
            "key request without a token; use the key URI from the playlist".into(),
        )
    })?;
    let parsed = parse_token(t);
    let (expiry, mac) = parsed.unwrap_or((0, [0u8; 16]));
    // Constant-time comparison of the 16-byte prefix (hmac's `verify_truncated_left`, `subtle`).
    let mac_ok = token_mac(secret.unwrap_or(NO_SECRET), path, expiry)?
        .verify_truncated_left(&mac)
        .is_ok();
    if !(mac_ok && parsed.is_some() && secret.is_some()) {
        return Err(FilterError::Forbidden(INVALID_TOKEN.into()));
    }
    if (now_ms.max(0) as u64) / 1000 > expiry {
        return Err(FilterError::Forbidden(
            "key token expired; reload the playlist for a fresh one".into(),
        ));
    }
    Ok(())
}

/// The key id (KID) of a key period on an endpoint: 8 bytes naming the endpoint, then the period
/// (big-endian), so a license request names its period and needs no lookup table. Key ids are
/// not secret.
pub fn kid_for(endpoint: &Endpoint, period: u64) -> [u8; 16] {
    let label = format!("edgepack-kid\n{}/{}", endpoint.channel, endpoint.name);
    let digest = <Sha256 as sha2::Digest>::digest(label.as_bytes());
    let mut kid = [0u8; 16];
    kid[..8].copy_from_slice(&digest[..8]);
    kid[8..].copy_from_slice(&period.to_be_bytes());
    kid
}

/// The key period a KID of this endpoint names, if it is one of its KIDs.
pub fn period_of_kid(endpoint: &Endpoint, kid: &[u8; 16]) -> Option<u64> {
    let mut period = [0u8; 8];
    period.copy_from_slice(&kid[8..]);
    let period = u64::from_be_bytes(period);
    (kid_for(endpoint, period) == *kid).then_some(period)
}

/// A KID as the MPD writes it (`cenc:default_KID`): 8-4-4-4-12 hex.
pub fn kid_uuid(kid: &[u8; 16]) -> String {
    let h = hex::encode(kid);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// How one segment of one rendition is common-encrypted (`cenc`/`cbcs` endpoints).
///
/// - the key and KID of the segment's key period;
/// - `cenc`: per-sample IVs start from 64 bits of HMAC(key, rendition/sequence), so no two
///   segments under one key share an IV range (by 2^-40 odds for a day of segments) and every edge
///   writes the same bytes;
/// - `cbcs`: the configured `constant_iv`, or one derived from the key.
pub fn common_protection(
    endpoint: &Endpoint,
    period: u64,
    rendition: &str,
    sequence: u64,
) -> Result<Option<crate::cmaf::cenc::Protection>, FilterError> {
    use crate::cmaf::cenc::Protection;
    let Some(enc) = endpoint.common_encryption() else {
        return Ok(None);
    };
    let key = key_for(endpoint, period)?;
    let seq = sequence.to_string();
    let mac = hmac(
        &key,
        &[b"edgepack-iv\n", rendition.as_bytes(), b"/", seq.as_bytes()],
    )?;
    let mut iv_base = [0u8; 8];
    iv_base.copy_from_slice(&mac[..8]);
    let constant_iv = match enc.keys.constant_iv {
        Some(iv) => iv,
        None => {
            let mac = hmac(&key, &[b"edgepack-cbcs-iv"])?;
            let mut iv = [0u8; 16];
            iv.copy_from_slice(&mac[..16]);
            iv
        }
    };
    Ok(Some(Protection {
        scheme: enc.scheme,
        key,
        kid: kid_for(endpoint, period),
        iv_base: u64::from_be_bytes(iv_base),
        constant_iv,
    }))
}

/// A W3C ClearKey license (EME "Clear Key" JSON Web Key set) carrying these (KID, key) pairs.
pub fn clearkey_license(keys: &[([u8; 16], [u8; 16])]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let keys: Vec<serde_json::Value> = keys
        .iter()
        .map(|(kid, key)| serde_json::json!({ "kty": "oct", "kid": b64.encode(kid), "k": b64.encode(key) }))
        .collect();
    serde_json::json!({ "keys": keys, "type": "temporary" }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn cbc_round_trip_and_padding() {
        let key = [7u8; 16];
        let iv = u128::from(42u64).to_be_bytes();
        for len in [0usize, 1, 15, 16, 17, 188 * 100] {
            let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let enc = encrypt_segment(&key, &iv, &data);
            assert_eq!(enc.len(), (len / 16 + 1) * 16, "PKCS#7 always pads");
            let dec = cbc::Decryptor::<aes::Aes128>::new(&key.into(), &iv.into())
                .decrypt_padded_vec_mut::<Pkcs7>(&enc)
                .unwrap();
            assert_eq!(dec, data);
        }
    }

    const SECRET: &str = "s3cret-s3cret-s3";

    fn check(path: &str, t: Option<&str>, now_ms: i64) -> Result<(), FilterError> {
        verify_token(Some(SECRET), path, t, now_ms)
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn tokens() {
        let path = "/out/v1/news/secure/key/5";
        let t = token(SECRET, path, 1000).unwrap();
        assert_eq!(check(path, Some(&t), 999_000), Ok(()));
        let expired = check(path, Some(&t), 1_001_000).unwrap_err();
        assert!(expired.to_string().contains("expired"));
        assert_eq!(expired.status(), 403);
        let invalid = FilterError::Forbidden(INVALID_TOKEN.into());
        // Another path, another secret, a tampered MAC, no secret at all: one answer.
        assert_eq!(
            check("/out/v1/news/secure/key/6", Some(&t), 0),
            Err(invalid.clone())
        );
        assert_eq!(
            verify_token(Some("another-secret-16"), path, Some(&t), 0),
            Err(invalid.clone())
        );
        assert_eq!(verify_token(None, path, Some(&t), 0), Err(invalid.clone()));
        // A token made with the placeholder secret of secretless paths opens nothing.
        let forged = token(NO_SECRET, path, 1000).unwrap();
        assert_eq!(
            verify_token(None, path, Some(&forged), 0),
            Err(invalid.clone())
        );
        let mut tampered = t.clone();
        tampered.replace_range(5..6, if &t[5..6] == "0" { "1" } else { "0" });
        assert_eq!(check(path, Some(&tampered), 0), Err(invalid.clone()));
        let missing = check(path, None, 0).unwrap_err();
        assert_eq!(missing.status(), 403);
        assert!(missing.to_string().contains("without a token"));
        // Malformed tokens are refused as wrong ones are (403, same words), not as bad requests.
        for bad in [
            "",
            "abc",
            "12-zz",
            "12-00",
            "x-00112233445566778899aabbccddeeff",
            "1000-00112233445566778899aabbccddeeff00",
            &t[..t.len() - 1],
        ] {
            assert_eq!(check(path, Some(bad), 0), Err(invalid.clone()), "{bad}");
        }
    }

    /// The clock: a token minted at `now` is accepted for at least `ttl` seconds and refused
    /// once the clock passes its expiry second; expiries are whole minutes (README: "expiry
    /// rounded up to the minute so edges mint identical tokens").
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn tokens_expire_on_the_clock_rounded_up_to_the_minute() {
        assert_eq!(token_expiry(1_000_000, 300), 1320);
        assert_eq!(token_expiry(1_020_000, 300), 1320, "already on a minute");
        assert_eq!(
            token_expiry(1_020_999, 300),
            1320,
            "milliseconds are dropped"
        );
        assert_eq!(token_expiry(1_021_000, 300), 1380);
        assert_eq!(token_expiry(-5, 60), 60, "a clock before 1970 counts as 0");
        let path = "/out/v1/news/secure/key/5";
        let t0: i64 = 1_764_081_337_123; // 2025-11-25T14:35:37.123Z
        for ttl in [1u64, 59, 60, 61, 300, 86_400] {
            for step in 0..130i64 {
                let now = t0 + step * 997;
                let expiry = token_expiry(now, ttl);
                let now_s = (now / 1000) as u64;
                assert_eq!(expiry % 60, 0);
                assert!(
                    expiry >= now_s + ttl && expiry < now_s + ttl + 60,
                    "{now} {ttl}"
                );
                // Every request of the same minute (the 60 seconds ending at expiry − ttl)
                // mints the same token.
                let minute_end = (expiry - ttl) as i64 * 1000;
                assert_eq!(token_expiry(minute_end + 999, ttl), expiry);
                assert_eq!(token_expiry(minute_end - 59_000, ttl), expiry);
                assert_eq!(token_expiry(minute_end - 59_001, ttl), expiry - 60);
                let t = token(SECRET, path, expiry).unwrap();
                assert_eq!(check(path, Some(&t), now), Ok(()), "valid when minted");
                let ttl_ms = ttl as i64 * 1000;
                assert_eq!(
                    check(path, Some(&t), now + ttl_ms - 1),
                    Ok(()),
                    "valid for ttl"
                );
                let last = expiry as i64 * 1000 + 999;
                assert_eq!(
                    check(path, Some(&t), last),
                    Ok(()),
                    "valid through its expiry second"
                );
                let e = check(path, Some(&t), last + 1).unwrap_err();
                assert_eq!(e.status(), 403);
                assert!(e.to_string().contains("expired"), "{e}");
                assert!(check(path, Some(&t), i64::MAX).is_err());
            }
        }
    }
}
