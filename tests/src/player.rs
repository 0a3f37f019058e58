//! ffmpeg as the player: decodes every video frame of an input (a URL or a local playlist) under
//! a hard timeout and returns each frame's MD5 (`-f framemd5`), per stream, so two inputs can be
//! compared frame by frame. Also included by `filter/tests` through `#[path]`.

use std::collections::BTreeMap;
use std::process::Command;

/// Stream index → MD5 of each decoded video frame; `Err` with ffmpeg's message when it fails.
pub fn decoded_frames(input: &str) -> Result<BTreeMap<u32, Vec<String>>, String> {
    decoded(input, "0:v")
}

/// Stream index → MD5 of each decoded frame of the streams `map` selects (`0:v`, `0:a`).
pub fn decoded(input: &str, map: &str) -> Result<BTreeMap<u32, Vec<String>>, String> {
    decoded_with(&[], input, map)
}

/// [`decoded`] with input options before `-i` (e.g. `-cenc_decryption_key HEX`).
pub fn decoded_with(
    input_options: &[&str],
    input: &str,
    map: &str,
) -> Result<BTreeMap<u32, Vec<String>>, String> {
    let out = Command::new("timeout")
        .args([
            "-s",
            "KILL",
            "120",
            "ffmpeg",
            "-hide_banner",
            "-v",
            "error",
            "-xerror",
        ])
        .args(input_options)
        .args(["-i", input, "-map", map, "-f", "framemd5", "-"])
        .output()
        .map_err(|e| format!("cannot run ffmpeg: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let mut per = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
    {
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        let (Some(stream), Some(md5)) = (cols.first().and_then(|s| s.parse().ok()), cols.last())
        else {
            return Err(format!("unexpected framemd5 line: {line}"));
        };
        per.entry(stream)
            .or_insert_with(Vec::new)
            .push((*md5).to_owned());
    }
    Ok(per)
}

/// What a DASH client learns from an encrypted MPD: the first `cenc:default_KID` (hex) and the
/// ClearKey license URL (`dashif:Laurl`).
pub fn clearkey_signalling(mpd: &str) -> Result<(String, String), String> {
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
pub fn clearkey_request(kid_hex: &str) -> Result<String, String> {
    use base64::Engine as _;
    let kid = hex::decode(kid_hex).map_err(|e| e.to_string())?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(kid);
    Ok(format!(r#"{{"kids":["{b64}"],"type":"temporary"}}"#))
}

/// The key (hex) a ClearKey license (JSON) gives for `kid_hex`.
pub fn clearkey_key(license: &[u8], kid_hex: &str) -> Result<String, String> {
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
