//! WebVTT in ISO BMFF (ISO/IEC 14496-30, `wvtt`): an HLS WebVTT segment becomes one CMAF text
//! fragment on the video's timeline, for cmaf and dash endpoints.
//!
//! Timing. A WebVTT segment's cue times are local; its `X-TIMESTAMP-MAP` (RFC 8216 §3.5; without
//! one `MPEGTS:0,LOCAL:0`) says which MPEG-2 presentation time (90 kHz, 33 bits) a local time
//! is. The video segment dated alike has its first frame presented at the program date time
//! ([`super`]'s rule) and that frame's own timestamp is known: so a cue's place on the output
//! timeline is `pdt + (its MPEG-2 time − the frame's)`, in 90 kHz ticks since the epoch, the
//! timescale of the text track as of the video's.
//!
//! Samples. A fragment covers its segment's span exactly; it is cut where any cue starts or
//! ends, and each piece is one sample: the cues shown during it (`vttc`: `iden`, `sttg`,
//! `payl`), or `vtte` when none is. Cues are clipped to the span (an HLS encoder repeats a cue
//! that crosses a segment boundary in both segments).

use super::mp4::{Run, Sample, boxed};
use super::{WRAP, delta};

/// One cue as the segment writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cue {
    /// Local times, milliseconds.
    pub start_ms: i64,
    pub end_ms: i64,
    pub id: String,
    /// The settings after the timings (`line:0 align:start`), as written.
    pub settings: String,
    pub payload: String,
}

/// A parsed WebVTT segment: its timestamp map and cues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// `X-TIMESTAMP-MAP`: MPEG-2 time (90 kHz) and the local time (ms) it equals.
    pub mpegts: u64,
    pub local_ms: i64,
    pub cues: Vec<Cue>,
}

/// `hh:mm:ss.ttt` or `mm:ss.ttt` → milliseconds.
fn timestamp(s: &str) -> Option<i64> {
    let (hms, frac) = s.split_once('.')?;
    if frac.len() != 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let parts: Vec<&str> = hms.split(':').collect();
    let num = |p: &str| -> Option<i64> {
        (!p.is_empty() && p.len() <= 10 && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse().ok())
            .flatten()
    };
    let (h, m, sec) = match parts.as_slice() {
        [m, s] => (0, num(m)?, num(s)?),
        [h, m, s] if h.len() >= 2 => (num(h)?, num(m)?, num(s)?),
        _ => return None,
    };
    if parts.len() >= 2 && (m > 59 || sec > 59 || parts[parts.len() - 1].len() != 2) {
        return None;
    }
    Some(((h * 60 + m) * 60 + sec) * 1000 + frac.parse::<i64>().ok()?)
}

/// `MPEGTS:n,LOCAL:t` (either order) → (n, t in ms).
fn timestamp_map(value: &str) -> Option<(u64, i64)> {
    let mut mpegts = None;
    let mut local = None;
    for part in value.split(',') {
        let (k, v) = part.trim().split_once(':')?;
        match k {
            "MPEGTS" => mpegts = Some(v.parse::<u64>().ok()?),
            "LOCAL" => local = Some(timestamp(v)?),
            _ => return None,
        }
    }
    Some((mpegts?, local?))
}

/// Parses a WebVTT segment (the WebVTT file syntax: a header, then blocks separated by blank
/// lines; `NOTE`, `STYLE` and `REGION` blocks are not cues). Refuses, with the reason, what is
/// not WebVTT or a cue timing that cannot be read.
pub fn parse(body: &[u8]) -> Result<Segment, String> {
    if !edgepack_store_api::api::is_webvtt(body) {
        let head = String::from_utf8_lossy(&body[..body.len().min(16)]).into_owned();
        return Err(format!(
            "it does not begin with WEBVTT (it begins {head:?})"
        ));
    }
    let text = std::str::from_utf8(body).map_err(|_| "it is not UTF-8".to_owned())?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let normal = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut blocks = normal.split("\n\n").filter(|b| !b.trim().is_empty());
    let mut map = (0, 0);
    for line in blocks.next().unwrap_or_default().lines().skip(1) {
        if let Some(v) = line.trim().strip_prefix("X-TIMESTAMP-MAP=") {
            map = timestamp_map(v)
                .ok_or_else(|| format!("its X-TIMESTAMP-MAP {v:?} is malformed"))?;
        }
    }
    let mut cues = Vec::new();
    for block in blocks {
        let block = block.trim_start_matches('\n');
        let mut lines = block.lines();
        let Some(first) = lines.next() else { continue };
        let (id, timing) = if first.contains("-->") {
            ("", first)
        } else {
            if ["NOTE", "STYLE", "REGION"].iter().any(|k| {
                first == *k
                    || first.starts_with(&format!("{k} "))
                    || first.starts_with(&format!("{k}\t"))
            }) {
                continue;
            }
            match lines.next() {
                Some(t) if t.contains("-->") => (first, t),
                // A block that is not a cue (no timing line): skipped, as a WebVTT parser does.
                _ => continue,
            }
        };
        let (start, rest) = timing
            .split_once("-->")
            .map(|(a, b)| (a.trim(), b.trim_start()))
            .unwrap_or_default();
        let (end, settings) = rest
            .split_once([' ', '\t'])
            .map_or((rest.trim(), ""), |(e, s)| (e, s.trim()));
        let bad = || format!("the cue timing {timing:?} cannot be read");
        let start_ms = timestamp(start).ok_or_else(bad)?;
        let end_ms = timestamp(end).ok_or_else(bad)?;
        let payload: Vec<&str> = lines.collect();
        cues.push(Cue {
            start_ms,
            end_ms,
            id: id.to_owned(),
            settings: settings.to_owned(),
            payload: payload.join("\n"),
        });
    }
    Ok(Segment {
        mpegts: map.0,
        local_ms: map.1,
        cues,
    })
}

/// Where the video dated alike starts: its first frame is presented at `at_90k` (90 kHz ticks
/// since the epoch) and carries MPEG-2 time `pts33`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoAnchor {
    pub at_90k: i128,
    pub pts33: u64,
}

impl Segment {
    /// A local time (ms) on the output timeline (90 kHz ticks since the epoch).
    pub fn place(&self, local_ms: i64, anchor: VideoAnchor) -> i128 {
        let pts = (i128::from(self.mpegts) + i128::from(local_ms - self.local_ms) * 90)
            .rem_euclid(WRAP) as u64;
        anchor.at_90k + delta(pts, anchor.pts33)
    }

    /// The cues shown in `[start, start + duration)` (90 kHz ticks since the epoch), placed
    /// and clipped to it: `(start, end, cue)`, in the segment's order.
    pub fn placed(
        &self,
        start: u64,
        duration: u32,
        anchor: VideoAnchor,
    ) -> Vec<(i128, i128, &Cue)> {
        let (s, e) = (i128::from(start), i128::from(start) + i128::from(duration));
        self.cues
            .iter()
            .map(|c| {
                (
                    self.place(c.start_ms, anchor).clamp(s, e),
                    self.place(c.end_ms, anchor).clamp(s, e),
                    c,
                )
            })
            .filter(|(a, b, _)| b > a)
            .collect()
    }

    /// The text track's run for the fragment spanning `[start, start + duration)` (90 kHz
    /// ticks since the epoch): see the module's sample rule. Track id 1.
    pub fn run(&self, start: u64, duration: u32, anchor: VideoAnchor) -> Run {
        let (s, e) = (i128::from(start), i128::from(start) + i128::from(duration));
        let placed = self.placed(start, duration, anchor);
        let mut cuts: Vec<i128> = vec![s, e];
        cuts.extend(placed.iter().flat_map(|(a, b, _)| [*a, *b]));
        cuts.sort_unstable();
        cuts.dedup();
        let mut samples = Vec::with_capacity(cuts.len());
        let mut data = Vec::new();
        for w in cuts.windows(2) {
            let (a, b) = (w[0], w[1]);
            let before = data.len();
            for (_, _, cue) in placed.iter().filter(|(x, y, _)| *x <= a && *y >= b) {
                boxed(&mut data, b"vttc", |o| {
                    if !cue.id.is_empty() {
                        boxed(o, b"iden", |o| o.extend_from_slice(cue.id.as_bytes()));
                    }
                    if !cue.settings.is_empty() {
                        boxed(o, b"sttg", |o| o.extend_from_slice(cue.settings.as_bytes()));
                    }
                    boxed(o, b"payl", |o| o.extend_from_slice(cue.payload.as_bytes()));
                });
            }
            if data.len() == before {
                boxed(&mut data, b"vtte", |_| {});
            }
            samples.push(Sample {
                // The span is one segment: its pieces fit 32 bits.
                duration: u32::try_from(b - a).unwrap_or(u32::MAX),
                size: (data.len() - before) as u32,
                sync: true,
                composition_offset: 0,
            });
        }
        Run {
            track_id: 1,
            base_decode_time: u64::try_from(s).unwrap_or(0),
            samples,
            data,
            aux: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: i128 = 1_795_600_000_000 * 90;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn cues_ids_settings_and_the_map_are_read() {
        let s = parse(
            "\u{feff}WEBVTT\r\nX-TIMESTAMP-MAP=LOCAL:00:00:01.000,MPEGTS:900000\r\n\r\nNOTE hi\r\n\r\n\
             a1\r\n00:00:02.500 --> 00:00:03.000 line:0 align:start\r\nOne\r\ntwo\r\n\r\n\
             01:02.000 --> 01:03.250\r\nThree\r\n"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!((s.mpegts, s.local_ms), (900_000, 1000));
        assert_eq!(
            s.cues,
            [
                Cue {
                    start_ms: 2500,
                    end_ms: 3000,
                    id: "a1".into(),
                    settings: "line:0 align:start".into(),
                    payload: "One\ntwo".into()
                },
                Cue {
                    start_ms: 62_000,
                    end_ms: 63_250,
                    id: String::new(),
                    settings: String::new(),
                    payload: "Three".into()
                }
            ]
        );
        // Without a map: MPEGTS 0 is local 0.
        let s = parse(b"WEBVTT\n\n00:01.000 --> 00:02.000\nx\n").unwrap();
        assert_eq!((s.mpegts, s.local_ms, s.cues.len()), (0, 0, 1));
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn what_cannot_be_read_is_refused_with_the_reason() {
        assert!(parse(b"\x47\x40").unwrap_err().contains("WEBVTT"));
        let e = parse(b"WEBVTT\n\n00:01 --> 00:02.000\nx\n").unwrap_err();
        assert!(e.contains("cue timing"), "{e}");
        let e = parse(b"WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:x\n\n").unwrap_err();
        assert!(e.contains("X-TIMESTAMP-MAP"), "{e}");
        assert!(parse(b"WEBVTT\n\n00:01.000 --> 00:61.000\nx\n").is_err());
        assert!(timestamp("1:00:00.000").is_none(), "hours take two digits");
        assert_eq!(timestamp("100:00:00.001"), Some(360_000_001));
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn cues_land_on_the_videos_timeline_across_the_33_bit_wrap() {
        // The video's first frame: MPEG-2 time 2^33 − 90,000 (one second before the wrap).
        let anchor = VideoAnchor {
            at_90k: AT,
            pts33: (1 << 33) - 90_000,
        };
        // Local 0 is MPEG-2 time 2^33 − 180,000: one second before the video.
        let s = Segment {
            mpegts: (1 << 33) - 180_000,
            local_ms: 0,
            cues: vec![],
        };
        assert_eq!(s.place(0, anchor), AT - 90_000);
        // Three seconds on: past the wrap.
        assert_eq!(s.place(3000, anchor), AT + 180_000);
    }

    fn boxes(mut d: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        while d.len() >= 8 {
            let n = u32::from_be_bytes(d[..4].try_into().unwrap()) as usize;
            out.push((
                String::from_utf8(d[4..8].to_vec()).unwrap(),
                d[8..n].to_vec(),
            ));
            d = &d[n..];
        }
        out
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn samples_cut_the_span_where_cues_start_and_end() {
        // ffmpeg's form: no map; the video's first frame at MPEG-2 time 2.02 s, shown at AT.
        let anchor = VideoAnchor {
            at_90k: AT,
            pts33: 181_800,
        };
        let s = parse(
            b"WEBVTT\n\n00:01.500 --> 00:02.300\nEarly\n\n00:02.100 --> 00:02.900\nCue 2\n\n\
              00:02.500 --> 00:03.000\nOver\n\n00:03.100 --> 00:04.500\nLong\n",
        )
        .unwrap();
        // The segment spans 2 s from the frame.
        let run = s.run(AT as u64, 180_000, anchor);
        assert_eq!(run.base_decode_time, AT as u64);
        let durations: Vec<u32> = run.samples.iter().map(|x| x.duration).collect();
        // Cuts (ms after the frame): 0..80 Early (from before the span), ..280 Early+Cue 2,
        // ..480 Cue 2, ..880 Cue 2+Over, ..980 Over, ..1080 nothing, ..2000 Long (clipped at
        // the end of the span).
        assert_eq!(
            durations,
            [
                80 * 90,
                200 * 90,
                200 * 90,
                400 * 90,
                100 * 90,
                100 * 90,
                920 * 90
            ]
        );
        assert_eq!(durations.iter().sum::<u32>(), 180_000);
        let mut at = 0;
        let mut texts = Vec::new();
        for x in &run.samples {
            let sample = &run.data[at..at + x.size as usize];
            at += x.size as usize;
            texts.push(
                boxes(sample)
                    .into_iter()
                    .map(|(k, body)| match k.as_str() {
                        "vttc" => {
                            let inner = boxes(&body);
                            assert_eq!(inner.len(), 1, "only a payload");
                            assert_eq!(inner[0].0, "payl");
                            String::from_utf8(inner[0].1.clone()).unwrap()
                        }
                        "vtte" => {
                            assert!(body.is_empty());
                            "-".to_owned()
                        }
                        other => panic!("{other}"),
                    })
                    .collect::<Vec<_>>()
                    .join("+"),
            );
        }
        assert_eq!(
            texts,
            [
                "Early",
                "Early+Cue 2",
                "Cue 2",
                "Cue 2+Over",
                "Over",
                "-",
                "Long"
            ]
        );
        assert_eq!(at, run.data.len());
        // No cue at all: one empty sample over the whole span.
        let empty = parse(b"WEBVTT\n").unwrap().run(AT as u64, 180_000, anchor);
        assert_eq!(empty.samples.len(), 1);
        assert_eq!(empty.data, [0, 0, 0, 8, b'v', b't', b't', b'e']);
        // Ids and settings go in their boxes, before the payload.
        let s = parse(b"WEBVTT\n\nid7\n00:02.100 --> 00:02.900 line:0\nx\n").unwrap();
        let run = s.run(AT as u64, 180_000, anchor);
        let cue = boxes(&run.data[run.samples[0].size as usize..]);
        let inner = boxes(&cue[0].1);
        let kinds: Vec<&str> = inner.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(kinds, ["iden", "sttg", "payl"]);
        assert_eq!(inner[0].1, b"id7");
        assert_eq!(inner[1].1, b"line:0");
    }
}
