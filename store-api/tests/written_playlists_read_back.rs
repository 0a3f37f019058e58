//! Any playlist the model can hold, once written, reads back as the same model; any text the
//! parser accepts reads back the same after it is written; no text makes the parser panic.
#![cfg(not(target_arch = "wasm32"))]

use std::borrow::Cow;

use edgepack_store_api::{
    HEADER_TAGS, MediaPlaylist, PlaylistType, Segment, extrapolate_pdt_ms, parse,
};
use proptest::prelude::*;

const LAST_MS: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z

fn owned(s: String) -> Cow<'static, str> {
    Cow::Owned(s)
}

/// A tag the model keeps verbatim with a segment or after the last one.
fn arb_segment_tag() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..120).prop_map(|n| format!("#EXT-X-CUE-OUT:{n}")),
        Just("#EXT-X-CUE-IN".to_owned()),
        "[a-z0-9]{1,8}".prop_map(|id| format!("#EXT-X-DATERANGE:ID=\"{id}\",CLASS=\"x,y\"")),
        "[A-Z]{1,6}(:[ -~]{0,20})?".prop_map(|t| format!("#EXT-X-OTHER-{}", t.trim())),
    ]
}

fn arb_header_tag() -> impl Strategy<Value = String> {
    (
        prop::sample::select(HEADER_TAGS.to_vec()),
        "(:[A-Z=0-9.-]{1,12})?",
    )
        .prop_map(|(name, value)| format!("{name}{value}"))
}

/// What a segment says for itself; the playlist decides what stays in effect.
#[derive(Debug, Clone)]
struct Draw {
    duration_ms: u32,
    text_form: u8,
    title: String,
    own_pdt: Option<i64>,
    discontinuity: bool,
    key: Option<Option<u8>>,
    map: Option<u8>,
    tags: Vec<String>,
    uri: String,
}

fn arb_draw() -> impl Strategy<Value = Draw> {
    (
        (1u32..3_600_000, 0u8..3, "([!-~][ -~]{0,10}[!-~])?"),
        (
            prop::option::of(0..=LAST_MS),
            any::<bool>(),
            prop::option::weighted(0.2, prop::option::of(0u8..3)),
        ),
        prop::option::weighted(0.2, 0u8..3),
        prop::collection::vec(arb_segment_tag(), 0..3),
        "[a-z0-9_/.?=-]{0,16}[a-z0-9]",
    )
        .prop_map(
            |((duration_ms, text_form, title), (own_pdt, discontinuity, key), map, tags, uri)| {
                Draw {
                    duration_ms,
                    text_form,
                    title,
                    own_pdt,
                    discontinuity,
                    key,
                    map,
                    tags,
                    uri,
                }
            },
        )
}

/// A playlist as the parser would return it: numbers, PDTs, keys and maps follow its rules.
fn arb_playlist() -> impl Strategy<Value = MediaPlaylist<'static>> {
    (
        (
            prop::option::of(1u32..12),
            prop::option::of(0u64..100),
            // Sequence numbers up to the contract's limit (less room for the segments).
            0..=edgepack_store_api::MAX_SEQUENCE / 2,
            0..=edgepack_store_api::MAX_SEQUENCE / 2,
            prop::option::of(prop::sample::select(vec![
                PlaylistType::Event,
                PlaylistType::Vod,
            ])),
            any::<bool>(),
        ),
        prop::collection::vec(arb_header_tag(), 0..3),
        prop::collection::vec(arb_draw(), 0..40),
        prop::collection::vec(arb_segment_tag(), 0..3),
    )
        .prop_map(|(header, header_tags, draws, trailing)| {
            let (version, target_duration, media_sequence, discontinuity_sequence, kind, ended) =
                header;
            let mut segments: Vec<Segment<'static>> = Vec::new();
            for d in draws {
                let previous = segments.last();
                let duration = f64::from(d.duration_ms) / 1000.0;
                let duration_text = match d.text_form {
                    0 => format!("{duration:.6}"),
                    1 => format!("{duration:.3}"),
                    _ => format!("{duration}"),
                };
                let pdt_ms = d.own_pdt.or_else(|| {
                    let p = previous?;
                    extrapolate_pdt_ms(p.pdt_ms?, p.duration, d.discontinuity)
                });
                let source_key = match d.key {
                    None => previous.and_then(|p| p.source_key.clone()),
                    Some(None) => None,
                    Some(Some(k)) => Some(owned(format!(
                        "#EXT-X-KEY:METHOD=AES-128,URI=\"k{k}\",IV=0x{k:032x}"
                    ))),
                };
                let map = match d.map {
                    None => previous.and_then(|p| p.map.clone()),
                    Some(m) => Some(owned(format!("init-{m}.mp4"))),
                };
                segments.push(Segment {
                    duration,
                    duration_text: owned(duration_text),
                    title: owned(d.title),
                    pdt_ms,
                    pdt_tagged: d.own_pdt.is_some(),
                    discontinuity: d.discontinuity,
                    source_key,
                    map,
                    tags: d.tags.into_iter().map(owned).collect(),
                    uri: owned(d.uri),
                    ..Segment::default()
                });
            }
            let mut pl = MediaPlaylist {
                version,
                target_duration,
                media_sequence,
                discontinuity_sequence,
                playlist_type: kind,
                ended,
                header_tags: header_tags.into_iter().map(owned).collect(),
                segments,
                trailing_tags: trailing.into_iter().map(owned).collect(),
                view: None,
            };
            pl.renumber();
            pl
        })
}

/// The text with each `EXT-X-PROGRAM-DATE-TIME` moved after the `EXTINF` that follows it, the
/// order ffmpeg writes.
fn ffmpeg_order(text: &str) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    for i in 0..lines.len().saturating_sub(1) {
        if lines[i].starts_with("#EXT-X-PROGRAM-DATE-TIME:") && lines[i + 1].starts_with("#EXTINF:")
        {
            lines.swap(i, i + 1);
        }
    }
    lines.join("\n") + "\n"
}

/// Tag lines of the kinds a playlist has, mostly well-formed.
fn arb_tag_line() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => (0..=LAST_MS).prop_map(|ms| format!(
            "#EXT-X-PROGRAM-DATE-TIME:{}",
            edgepack_store_api::format_pdt(ms)
        )),
        2 => Just("#EXT-X-DISCONTINUITY".to_owned()),
        1 => "#EXT-X-(MEDIA|DISCONTINUITY)-SEQUENCE:[0-9]{1,4}",
        1 => "#EXT-X-(VERSION|TARGETDURATION):[0-9]{1,2}",
        1 => "#EXT-X-PLAYLIST-TYPE:(VOD|EVENT)",
        1 => "#EXT-X-(ENDLIST|INDEPENDENT-SEGMENTS|START:TIME-OFFSET=-6)",
        2 => "#EXT-X-MAP:URI=\"[a-z.,]{1,6}\"",
        2 => "#EXT-X-KEY(:METHOD=(NONE|AES-128)(,URI=\"k[0-9]\")?)?",
        3 => arb_segment_tag(),
        1 => "# [ -~]{0,10}",
        1 => "[ \t\u{a0}]{0,2}",
    ]
}

/// A line that is likely refused.
fn arb_odd_line() -> impl Strategy<Value = String> {
    prop_oneof![
        "#EXTINF:[ -~]{0,8}",
        "#EXT-X-(MEDIA-SEQUENCE|VERSION|PLAYLIST-TYPE):[0-9A-Z+-]{0,4}",
        "#EXT-X-MAP:(URI=\"[a-z.,]{0,6}\"?)?(,BYTERANGE=1@0)?",
        "#EXT-X-PROGRAM-DATE-TIME:[0-9T:.+Z-]{0,30}",
        "[ -~\u{a0}\u{feff}é\r]{0,12}",
    ]
}

/// Tags, then (nearly always) an `EXTINF`, then a URI.
fn arb_block() -> impl Strategy<Value = Vec<String>> {
    (
        prop::collection::vec(arb_tag_line(), 0..4),
        prop::option::weighted(0.97, (1u32..5000, "[ -~]{0,6}")),
        prop::collection::vec(arb_tag_line(), 0..2),
        "[a-z0-9./]{1,8}",
    )
        .prop_map(|(mut lines, extinf, after, uri)| {
            if let Some((ms, title)) = extinf {
                lines.push(format!("#EXTINF:{}.{:03},{title}", ms / 1000, ms % 1000));
            }
            lines.extend(after);
            lines.push(uri);
            lines
        })
}

proptest! {
    #[test]
    fn a_written_model_reads_back_as_itself(pl in arb_playlist()) {
        let text = pl.to_string();
        let parsed = parse(text.as_bytes()).unwrap();
        prop_assert_eq!(&parsed, &pl, "{}", text);
        prop_assert_eq!(parsed.to_string(), text);
    }

    #[test]
    fn ffmpeg_order_reads_the_same(pl in arb_playlist()) {
        let text = ffmpeg_order(&pl.to_string());
        let parsed = parse(text.as_bytes()).unwrap();
        prop_assert_eq!(&parsed, &pl, "{}", text);
    }

    #[test]
    fn whatever_parses_is_written_back_to_the_same_model(
        blocks in prop::collection::vec(arb_block(), 0..12),
        trailing in prop::collection::vec(arb_tag_line(), 0..3),
        odd in prop::option::weighted(0.3, (any::<prop::sample::Index>(), arb_odd_line())),
        crlf in any::<bool>(),
    ) {
        let mut lines: Vec<String> = blocks.into_iter().flatten().chain(trailing).collect();
        if let Some((at, line)) = odd {
            lines.insert(at.index(lines.len() + 1), line);
        }
        let text = format!("#EXTM3U\n{}", lines.join(if crlf { "\r\n" } else { "\n" }));
        if let Ok(pl) = parse(text.as_bytes()) {
            let written = pl.to_string();
            let again = parse(written.as_bytes());
            prop_assert_eq!(again.as_ref(), Ok(&pl), "{:?}\n{}", text, written);
        }
    }

    #[test]
    fn no_bytes_make_it_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut text = b"#EXTM3U\n".to_vec();
        text.extend(bytes);
        let _ = parse(&text);
        let _ = edgepack_store_api::parse_ingest(&text);
        let _ = edgepack_store_api::is_multivariant(&String::from_utf8_lossy(&text));
    }
}

/// A store view's context reads back as written, and a whole history has none.
#[test]
fn view_context_reads_back() {
    use edgepack_store_api::{RunStart, ViewContext};
    let mut pl = parse(b"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n5.ts\n")
        .unwrap()
        .into_owned();
    assert_eq!(pl.view, None);
    for view in [
        ViewContext::default(),
        ViewContext {
            history_start_ms: Some(1_795_617_331_666),
            run_start: Some(RunStart {
                sequence: 3,
                pdt_ms: Some(1_795_617_337_666),
                discontinuity: true,
            }),
            last_received_ms: Some(1_795_617_339_001),
            channel_last_received_ms: Some(1_795_617_339_002),
        },
        ViewContext {
            history_start_ms: None,
            run_start: Some(RunStart {
                sequence: 0,
                pdt_ms: None,
                discontinuity: false,
            }),
            last_received_ms: None,
            channel_last_received_ms: None,
        },
        ViewContext {
            last_received_ms: Some(7),
            ..ViewContext::default()
        },
        ViewContext {
            channel_last_received_ms: Some(8),
            ..ViewContext::default()
        },
    ] {
        pl.view = Some(view);
        let mut text = String::new();
        pl.write_to(&mut text);
        assert_eq!(parse(text.as_bytes()).unwrap().view, Some(view), "{text}");
    }
}
