//! What a DASH client does for ClearKey: read the KID and license URL from the MPD, ask the
//! license server for the key (W3C EME's JSON), read the key from the license.

/// What a DASH client learns from an encrypted MPD: the first `cenc:default_KID` (hex) and the
/// ClearKey license URL (`dashif:Laurl`).
pub fn signalling(mpd: &str) -> Result<(String, String), String> {
    let kid = regex::Regex::new(r#"cenc:default_KID="([0-9a-f-]{36})""#)
        .map_err(|e| e.to_string())?
        .captures(mpd)
        .ok_or("no cenc:default_KID in the MPD")?[1]
        .replace('-', "");
    let laurl = regex::Regex::new(r"<dashif:Laurl>([^<]+)</dashif:Laurl>")
        .map_err(|e| e.to_string())?
        .captures(mpd)
        .ok_or("no dashif:Laurl in the MPD")?[1]
        .replace("&amp;", "&");
    Ok((kid, laurl))
}

/// The JSON body of a W3C ClearKey license request for one key id (hex), as EME sends it.
pub fn request(kid_hex: &str) -> Result<String, String> {
    use base64::Engine as _;
    let kid = hex::decode(kid_hex).map_err(|e| e.to_string())?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(kid);
    Ok(format!(r#"{{"kids":["{b64}"],"type":"temporary"}}"#))
}

/// The key (hex) a ClearKey license (JSON) gives for `kid_hex`.
pub fn key(license: &[u8], kid_hex: &str) -> Result<String, String> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let json: serde_json::Value = serde_json::from_slice(license).map_err(|e| e.to_string())?;
    let keys = json["keys"].as_array().ok_or("no keys in the license")?;
    keys.iter()
        .find(|k| {
            k["kid"]
                .as_str()
                .and_then(|v| b64.decode(v).ok())
                .is_some_and(|v| hex::encode(v) == kid_hex)
        })
        .and_then(|k| k["k"].as_str())
        .and_then(|k| b64.decode(k).ok())
        .map(hex::encode)
        .ok_or_else(|| format!("the license has no key for {kid_hex}: {json}"))
}
