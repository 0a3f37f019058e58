//! WebVTT segments as the filter turns them into WebVTT in fMP4 (`wvtt`) for cmaf and dash
//! endpoints. Input: 8 bytes of the video's first-frame MPEG-2 time (33 bits used), then the
//! segment. Properties: a segment that parses becomes samples that tile the 2 s span exactly
//! (durations add up, none empty), each sample is `vttc` or `vtte` boxes filling its bytes, and
//! every `payl` is the payload of a cue of the segment. The same cues as a TTML document (mss):
//! one `<p>` per cue shown, whose content holds no markup but line breaks.
#![no_main]

use edgepack_filter::cmaf::ttml;
use edgepack_filter::cmaf::wvtt::{VideoAnchor, parse};
use libfuzzer_sys::fuzz_target;

const AT: u64 = 1_795_600_000_000 * 90;
const SPAN: u32 = 180_000;

/// `(type, body)` of each box, or `None` when the bytes are not whole boxes.
fn boxes(mut d: &[u8]) -> Option<Vec<([u8; 4], &[u8])>> {
    let mut out = Vec::new();
    while !d.is_empty() {
        let n = u32::from_be_bytes(d.get(..4)?.try_into().ok()?) as usize;
        let body = d.get(8..n)?;
        out.push((d[4..8].try_into().ok()?, body));
        d = &d[n..];
    }
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let Some((head, body)) = data.split_first_chunk::<8>() else {
        return;
    };
    let Ok(segment) = parse(body) else {
        return;
    };
    let anchor = VideoAnchor {
        at_90k: i128::from(AT),
        pts33: u64::from_be_bytes(*head) & ((1 << 33) - 1),
    };
    let run = segment.run(AT, SPAN, anchor);
    assert_eq!(run.base_decode_time, AT);
    assert_eq!(
        run.samples
            .iter()
            .map(|s| u64::from(s.duration))
            .sum::<u64>(),
        u64::from(SPAN),
        "the samples tile the span"
    );
    assert!(
        run.samples.iter().all(|s| s.duration > 0),
        "an empty sample"
    );
    let mut at = 0;
    for s in &run.samples {
        let sample = &run.data[at..at + s.size as usize];
        at += s.size as usize;
        let Some(cues) = boxes(sample) else {
            panic!("a sample that is not whole boxes")
        };
        assert!(!cues.is_empty());
        for (kind, inner) in cues {
            match &kind {
                b"vtte" => assert!(inner.is_empty()),
                b"vttc" => {
                    let parts = boxes(inner).expect("a cue of whole boxes");
                    let payload = parts
                        .iter()
                        .find(|(k, _)| k == b"payl")
                        .map(|(_, p)| *p)
                        .expect("a payload");
                    assert!(
                        segment.cues.iter().any(|c| c.payload.as_bytes() == payload),
                        "a payload no cue has"
                    );
                }
                other => panic!("a {other:?} box in a sample"),
            }
        }
    }
    assert_eq!(at, run.data.len(), "the samples fill the data");

    let doc = ttml::document(&segment, AT, SPAN, anchor, None);
    let shown = segment.placed(AT, SPAN, anchor).len();
    let body = doc
        .split_once("<body><div>")
        .and_then(|(_, b)| b.strip_suffix("</div></body></tt>\n"))
        .expect("one body");
    let paragraphs: Vec<&str> = body.split("</p>").filter(|p| !p.is_empty()).collect();
    assert_eq!(paragraphs.len(), shown, "one paragraph per cue shown");
    for p in paragraphs {
        let content = p
            .split_once("\">")
            .map(|(_, c)| c)
            .expect("a paragraph's content");
        assert!(
            !content.replace("<br/>", "").contains(['<', '>']),
            "markup in a paragraph: {content:?}"
        );
    }
});
