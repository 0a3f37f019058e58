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

/// Checks a key-delivery token.
pub fn verify_token(
    secret: &str,
    path: &str,
    token_value: Option<&str>,
    now_ms: i64,
) -> Result<(), FilterError> {
    let t = token_value.ok_or_else(|| {
        FilterError::Forbidden(
            "key request without a token; use the key URI from the playlist".into(),
        )
    })?;
    let malformed = || FilterError::BadRequest("malformed key token; expected EXPIRY-HMAC".into());
    let (expiry, mac) = t.split_once('-').ok_or_else(malformed)?;
    let expiry: u64 = expiry.parse().map_err(|_| malformed())?;
    let mac = hex::decode(mac).map_err(|_| malformed())?;
    if mac.len() != 16 {
        return Err(malformed());
    }
    // Constant-time comparison of the 16-byte prefix.
    token_mac(secret, path, expiry)?
        .verify_truncated_left(&mac)
        .map_err(|_| FilterError::Forbidden("invalid key token".into()))?;
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

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn tokens() {
        let path = "/out/v1/news/secure/key/5";
        let t = token("s3cret-s3cret-s3", path, 1000).unwrap();
        assert_eq!(
            verify_token("s3cret-s3cret-s3", path, Some(&t), 999_000),
            Ok(())
        );
        let expired = verify_token("s3cret-s3cret-s3", path, Some(&t), 1_001_000).unwrap_err();
        assert!(expired.to_string().contains("expired"));
        assert_eq!(expired.status(), 403);
        let other = verify_token("s3cret-s3cret-s3", "/out/v1/news/secure/key/6", Some(&t), 0);
        assert_eq!(other.unwrap_err().status(), 403);
        let mut tampered = t.clone();
        tampered.replace_range(5..6, if &t[5..6] == "0" { "1" } else { "0" });
        assert_eq!(
            verify_token("s3cret-s3cret-s3", path, Some(&tampered), 0)
                .unwrap_err()
                .status(),
            403
        );
        assert_eq!(
            verify_token("s3cret-s3cret-s3", path, None, 0)
                .unwrap_err()
                .status(),
            403
        );
        for bad in [
            "",
            "abc",
            "12-zz",
            "12-00",
            "x-00112233445566778899aabbccddeeff",
        ] {
            assert_eq!(
                verify_token("s3cret-s3cret-s3", path, Some(bad), 0)
                    .unwrap_err()
                    .status(),
                400,
                "{bad}"
            );
        }
        assert_eq!(token_expiry(1_000_000, 300), 1320);
    }
}
