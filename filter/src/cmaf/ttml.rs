//! WebVTT cues as a TTML document (W3C TTML1), the text of a Smooth Streaming text stream
//! (MS-SSTR: `FourCC="TTML"`): one document per fragment, its times relative to the fragment's
//! start, as Smooth Streaming clients read them. Cue text keeps its words and line breaks; WebVTT
//! markup (`<b>`, `<v Speaker>`, timestamps) is dropped.

use std::fmt::Write as _;

use super::wvtt::{Segment, VideoAnchor};

/// `HH:MM:SS.mmm` of 90 kHz ticks.
fn clock(ticks: i128) -> String {
    let ms = ticks.max(0) / 90;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// Cue text as TTML content: markup dropped, the entities WebVTT knows mapped to XML's, any
/// other `&`, `<`, `>` escaped, line breaks as `<br/>`.
fn content(payload: &str) -> String {
    let mut plain = String::with_capacity(payload.len());
    let mut in_tag = false;
    for c in payload.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if !in_tag => plain.push(c),
            _ => {}
        }
    }
    let mut out = String::with_capacity(plain.len() + 16);
    let mut rest = plain.as_str();
    while let Some(c) = rest.chars().next() {
        let known = [
            ("&amp;", "&amp;"),
            ("&lt;", "&lt;"),
            ("&gt;", "&gt;"),
            ("&nbsp;", "&#160;"),
            ("&lrm;", "&#8206;"),
            ("&rlm;", "&#8207;"),
        ]
        .into_iter()
        .find(|(vtt, _)| rest.starts_with(vtt));
        match (c, known) {
            ('&', Some((vtt, xml))) => {
                out.push_str(xml);
                rest = &rest[vtt.len()..];
                continue;
            }
            ('&', None) => out.push_str("&amp;"),
            ('>', _) => out.push_str("&gt;"),
            ('"', _) => out.push_str("&quot;"),
            ('\n', _) => out.push_str("<br/>"),
            _ => out.push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// The TTML document of the cues shown in `[start, start + duration)` (90 kHz ticks since the
/// epoch), their times from `start`; `language` (`xml:lang`) when the rendition states one.
pub fn document(
    segment: &Segment,
    start: u64,
    duration: u32,
    anchor: VideoAnchor,
    language: Option<&str>,
) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<tt xmlns=\"http://www.w3.org/ns/ttml\"",
    );
    if let Some(lang) = language {
        let _ = write!(out, " xml:lang=\"{}\"", content(lang));
    }
    out.push_str("><body><div>");
    for (a, b, cue) in segment.placed(start, duration, anchor) {
        let from = i128::from(start);
        let _ = write!(
            out,
            "<p begin=\"{}\" end=\"{}\">{}</p>",
            clock(a - from),
            clock(b - from),
            content(&cue.payload)
        );
    }
    out.push_str("</div></body></tt>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmaf::wvtt::parse;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn cues_become_paragraphs_timed_from_the_fragment() {
        let at = 1_795_600_000_000i128 * 90;
        // The video's first frame: MPEG-2 time 2.02 s, shown at `at`.
        let anchor = VideoAnchor {
            at_90k: at,
            pts33: 181_800,
        };
        let s = parse(
            "WEBVTT\n\n00:02.122 --> 00:02.922\n<v Ann>Cue & <b>2</b></v>\nline &amp; two&nbsp;\n\n\
             00:05.000 --> 00:06.000\nlater\n"
                .as_bytes(),
        )
        .unwrap();
        let doc = document(&s, at as u64, 180_000, anchor, Some("eng"));
        assert_eq!(
            doc,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<tt xmlns=\"http://www.w3.org/ns/ttml\" xml:lang=\"eng\"><body><div>\
             <p begin=\"00:00:00.102\" end=\"00:00:00.902\">Cue &amp; 2<br/>line &amp; two&#160;</p></div></body></tt>\n"
        );
        // Nothing shown: an empty body.
        let doc = document(
            &parse(b"WEBVTT\n").unwrap(),
            at as u64,
            180_000,
            anchor,
            None,
        );
        assert!(
            doc.ends_with(
                "<tt xmlns=\"http://www.w3.org/ns/ttml\"><body><div></div></body></tt>\n"
            )
        );
    }
}
