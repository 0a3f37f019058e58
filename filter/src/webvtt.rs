//! WebVTT subtitle segments on HLS endpoints (RFC 8216 §3.5); other formats carry the same cues
//! as WebVTT in fMP4 ([`crate::cmaf::wvtt`]) or TTML ([`crate::cmaf::ttml`]). Every segment a viewer gets states
//! how its cue times map onto the media timeline (`X-TIMESTAMP-MAP` in its header): the
//! encoder's own mapping is kept; a segment without one (ffmpeg writes none) gets the mapping
//! RFC 8216 implies for it — cue time 0 is MPEG-2 time 0 — written out, because players do not
//! agree on what a missing one means.

use edgepack_store_api::api::is_webvtt;

/// The mapping RFC 8216 implies for a WebVTT segment without `X-TIMESTAMP-MAP`.
pub const IMPLIED_TIMESTAMP_MAP: &str = "X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000";

/// The segment with an `X-TIMESTAMP-MAP`: as it is when its header has one, else with
/// [`IMPLIED_TIMESTAMP_MAP`] after the `WEBVTT` line. Refuses what is not WebVTT (the reason).
pub fn with_timestamp_map(body: &[u8]) -> Result<Vec<u8>, String> {
    if !is_webvtt(body) {
        let head = String::from_utf8_lossy(&body[..body.len().min(16)]).into_owned();
        return Err(format!(
            "it does not begin with WEBVTT (it begins {head:?})"
        ));
    }
    let text = std::str::from_utf8(body).map_err(|_| "it is not UTF-8".to_owned())?;
    // The header: the lines up to the first blank one.
    let has_map = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .any(|l| l.trim_start().starts_with("X-TIMESTAMP-MAP="));
    if has_map {
        return Ok(body.to_vec());
    }
    let first_line_end = text.find(['\r', '\n']).unwrap_or(text.len());
    let mut out = String::with_capacity(text.len() + IMPLIED_TIMESTAMP_MAP.len() + 1);
    out.push_str(&text[..first_line_end]);
    out.push('\n');
    out.push_str(IMPLIED_TIMESTAMP_MAP);
    if first_line_end == text.len() {
        out.push('\n');
    }
    out.push_str(&text[first_line_end..]);
    Ok(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapped(s: &str) -> String {
        String::from_utf8(with_timestamp_map(s.as_bytes()).unwrap()).unwrap()
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn the_implied_mapping_is_written_out_after_the_header_line() {
        // ffmpeg's segments: no mapping.
        assert_eq!(
            mapped("WEBVTT\n\n00:02.122 --> 00:02.922\nCue 2\n"),
            "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n00:02.122 --> 00:02.922\nCue 2\n"
        );
        assert_eq!(
            mapped("\u{feff}WEBVTT - news\r\n\r\n00:01.000 --> 00:02.000\r\nhi\r\n"),
            "\u{feff}WEBVTT - news\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\r\n\r\n00:01.000 --> 00:02.000\r\nhi\r\n"
        );
        assert_eq!(
            mapped("WEBVTT"),
            "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n"
        );
        // The parsed header keeps its cues where they were.
        let m = mapped("WEBVTT\nRegion: id=a\n\n00:01.000 --> 00:02.000\nX-TIMESTAMP-MAP=text\n");
        assert!(
            m.ends_with("\n\n00:01.000 --> 00:02.000\nX-TIMESTAMP-MAP=text\n"),
            "{m}"
        );
        assert_eq!(m.matches("MPEGTS:0").count(), 1, "{m}");
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn an_encoders_mapping_is_kept_byte_for_byte() {
        let s = "WEBVTT\nX-TIMESTAMP-MAP=LOCAL:00:00:00.000,MPEGTS:900000\n\n00:01.000 --> 00:02.000\nhi\n";
        assert_eq!(with_timestamp_map(s.as_bytes()).unwrap(), s.as_bytes());
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn what_is_not_webvtt_is_refused_with_its_first_bytes() {
        let e = with_timestamp_map(b"\x47\x40\x11\x10 ts packet").unwrap_err();
        assert!(e.contains("does not begin with WEBVTT"), "{e}");
        assert!(with_timestamp_map(b"WEBVTTX\n").is_err());
        assert!(with_timestamp_map(b"WEBVTT\n\xff\xfe").is_err());
        assert!(with_timestamp_map(b"").is_err());
        assert!(is_webvtt(b"WEBVTT\tx") && !is_webvtt(b"webvtt"));
    }
}
