use super::*;
use crate::pdt::format_pdt;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn ok(text: &str) -> MediaPlaylist<'_> {
    parse(text.as_bytes()).unwrap()
}

fn err(text: &str) -> PlaylistError {
    parse_ingest(text.as_bytes()).unwrap_err()
}

// Ported from the filter's `media_playlist.rs`.

#[test]
fn keeps_tags_and_computes_sequences() {
    let text = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:10\n\
#EXT-X-DISCONTINUITY-SEQUENCE:4\n#EXT-X-INDEPENDENT-SEGMENTS\n\
#EXTINF:2.000000,\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T14:00:00.000+0000\n10.ts\n\
#EXT-X-CUE-OUT:30\n#EXTINF:1.960000,title\n11.ts\n\
#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T15:00:00.000Z\n#EXTINF:2.000000,\n12.ts\n\
#EXT-X-RENDITION-REPORT:URI=\"x\"\n";
    let pl = ok(text);
    assert_eq!(pl.header_tags, vec!["#EXT-X-INDEPENDENT-SEGMENTS"]);
    assert_eq!(pl.segments.len(), 3);
    assert_eq!(pl.segments[1].sequence, 11);
    assert_eq!(pl.segments[1].tags, vec!["#EXT-X-CUE-OUT:30"]);
    assert_eq!(pl.segments[1].duration_text, "1.960000");
    assert_eq!(pl.segments[1].title, "title");
    assert_eq!(
        pl.segments[1].pdt_ms,
        Some(1_795_615_202_000),
        "extrapolated"
    );
    assert_eq!(pl.segments[2].disc_seq, 5);
    assert!(pl.segments[2].discontinuity);
    assert_eq!(pl.segments[2].pdt_ms, Some(1_795_618_800_000));
    assert_eq!(pl.trailing_tags, vec!["#EXT-X-RENDITION-REPORT:URI=\"x\""]);
}

#[test]
fn garbage_is_refused() {
    assert_eq!(parse(b"<html>").unwrap_err(), PlaylistError::NoHeader);
    assert_eq!(parse(&[0xff]).unwrap_err(), PlaylistError::NotUtf8);
}

// Ported from the sidecar's `source_playlist.rs`.

// As Debian's ffmpeg 5.1 writes it with `-hls_flags program_date_time`: PDT after EXTINF.
const FFMPEG: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n\
#EXTINF:2.000000,\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T14:00:00.000+0000\nstream_0_7.ts\n\
#EXT-X-CUE-OUT:30\n#EXT-X-DISCONTINUITY\n#EXTINF:1.960000,\nstream_0_8.ts\n";

// As Debian's ffmpeg 5.1 writes it with `-hls_segment_type fmp4`.
const FFMPEG_FMP4: &str = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
#EXT-X-MAP:URI=\"init_0.mp4\"\n#EXTINF:2.000000,\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T17:18:39.590+0000\n\
stream_0_0.m4s\n#EXTINF:2.000000,\nstream_0_1.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init_0b.mp4\"\n\
#EXTINF:2.000000,\nstream_0_2.m4s\n";

#[test]
fn ffmpeg_playlist_keeps_exact_durations_pdt_and_cues() {
    let m = parse_ingest(FFMPEG.as_bytes()).unwrap();
    assert_eq!(m.media_sequence, 7);
    assert_eq!(m.target_duration, Some(2));
    assert_eq!(m.segments.len(), 2);
    assert_eq!(m.segments[0].uri, "stream_0_7.ts");
    assert_eq!(
        m.segments[0].pdt_ms.map(format_pdt).as_deref(),
        Some("2026-11-25T14:00:00.000Z")
    );
    assert!(m.segments[0].pdt_tagged);
    assert_eq!(m.segments[1].duration, 1.96);
    assert!(m.segments[1].discontinuity);
    assert_eq!(m.segments[1].tags, vec!["#EXT-X-CUE-OUT:30".to_owned()]);
    // No PDT of its own, and none extrapolated across the discontinuity.
    assert!(!m.segments[1].pdt_tagged);
    assert!(m.segments[1].pdt_ms.is_none());
}

#[test]
fn fmp4_segments_know_their_initialization_segment() {
    let m = parse_ingest(FFMPEG_FMP4.as_bytes()).unwrap();
    assert_eq!(m.version, Some(7));
    let maps: Vec<_> = m.segments.iter().map(|s| s.map.as_deref()).collect();
    assert_eq!(
        maps,
        [Some("init_0.mp4"), Some("init_0.mp4"), Some("init_0b.mp4")]
    );
    // The map is the store's to rewrite, not a tag to keep verbatim.
    assert!(m.segments.iter().all(|s| s.tags.is_empty()));
    assert!(ok(FFMPEG).segments.iter().all(|s| s.map.is_none()));
}

#[test]
fn refusals_say_why() {
    assert_eq!(err("hello"), PlaylistError::NoHeader);
    assert_eq!(
        err("#EXTM3U\n#EXTINF:2,\na.ts\n"),
        PlaylistError::NoTargetDuration
    );
    assert!(matches!(
        err("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:abc,\na.ts\n"),
        PlaylistError::BadLine { line: 3, .. }
    ));
    assert!(matches!(
        err(
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"i.mp4\",BYTERANGE=\"800@0\"\n#EXTINF:2,\na.m4s\n"
        ),
        PlaylistError::Unsupported { line: 3, .. }
    ));
    assert!(matches!(
        err("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\n#EXTINF:2,\na.m4s\n"),
        PlaylistError::BadLine { line: 3, .. }
    ));
    assert!(matches!(
        err("#EXTM3U\n#EXT-X-TARGETDURATION:2\nno-extinf.ts\n"),
        PlaylistError::BadLine { line: 3, .. }
    ));
    assert_eq!(
        parse_ingest(&[0xff, 0xfe]).unwrap_err(),
        PlaylistError::NotUtf8
    );
}

#[test]
fn multivariant_is_recognised() {
    let text = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000,RESOLUTION=320x240\nstream_0.m3u8\n";
    assert!(is_multivariant(text));
}

// The rules, one by one.

#[test]
fn messages_are_the_stores_word_for_word() {
    let cases = [
        ("not a playlist", "playlist does not start with #EXTM3U"),
        (
            "#EXTM3U\n#EXTINF:2,\nseg6.ts\n",
            "media playlist has no #EXT-X-TARGETDURATION",
        ),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:two,\nseg6.ts\n",
            "line 3: EXTINF duration 'two' is not a number",
        ),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:0,\nseg6.ts\n",
            "line 3: EXTINF duration 0 is out of range",
        ),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:3600,\nseg6.ts\n",
            "line 3: EXTINF duration 3600 is out of range",
        ),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:inf,\nseg6.ts\n",
            "line 3: EXTINF duration inf is out of range",
        ),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PROGRAM-DATE-TIME:today\n",
            "line 3: PROGRAM-DATE-TIME 'today' is not ISO 8601",
        ),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:BYTERANGE=\"1@0\",URI=\"i.mp4\"\n",
            "line 3: EXT-X-MAP with BYTERANGE is not supported for ingest (segments must be whole files)",
        ),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n#EXT-X-BYTERANGE:800@0\na.ts\n",
            "line 4: EXT-X-BYTERANGE is not supported for ingest (segments must be whole files)",
        ),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=init.mp4\n",
            "line 3: EXT-X-MAP without a quoted URI",
        ),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\nno-extinf.ts\n",
            "line 3: segment URI without a preceding #EXTINF",
        ),
        (
            "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:-1\n",
            "line 2: EXT-X-MEDIA-SEQUENCE '-1' is not a whole number",
        ),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:2.5\n",
            "line 2: EXT-X-TARGETDURATION '2.5' is not a whole number",
        ),
        (
            "#EXTM3U\n#EXT-X-PLAYLIST-TYPE:LIVE\n",
            "line 2: EXT-X-PLAYLIST-TYPE 'LIVE' is neither EVENT nor VOD",
        ),
    ];
    for (text, message) in cases {
        assert_eq!(err(text).to_string(), message, "{text:?}");
    }
}

#[test]
fn line_numbers_count_every_line() {
    // Blank lines, comments and CRLF endings all count as lines; a BOM does not add one.
    let text =
        "\u{feff}#EXTM3U\r\n\r\n# a comment\r\n#EXT-X-TARGETDURATION:2\r\n#EXTINF:x,\r\na.ts\r\n";
    assert!(matches!(err(text), PlaylistError::BadLine { line: 5, .. }));
    let pl = ok("\u{feff}#EXTM3U\r\n#EXTINF:2.5,\r\n  a.ts  \r\n");
    assert_eq!(pl.segments[0].uri, "a.ts");
    assert_eq!(pl.segments[0].duration_text, "2.5");
}

#[test]
fn pdt_after_extinf_is_the_same_as_before() {
    let after = ok(FFMPEG);
    let pdt_first = FFMPEG.replace(
        "#EXTINF:2.000000,\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T14:00:00.000+0000\n",
        "#EXT-X-PROGRAM-DATE-TIME:2026-11-25T14:00:00.000+0000\n#EXTINF:2.000000,\n",
    );
    assert_ne!(pdt_first, FFMPEG);
    let before = ok(&pdt_first);
    assert_eq!(after, before);
}

#[test]
fn a_missing_pdt_is_extrapolated_from_the_segment_before_but_not_across_a_discontinuity() {
    let pl = ok("#EXTM3U\n\
#EXTINF:2,\n0.ts\n\
#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:10Z\n#EXTINF:1.9996,\n1.ts\n\
#EXTINF:2,\n2.ts\n\
#EXT-X-DISCONTINUITY\n#EXTINF:2,\n3.ts\n\
#EXTINF:2,\n4.ts\n\
#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:01:00Z\n#EXTINF:2,\n5.ts\n\
#EXTINF:2,\n6.ts\n");
    let pdts: Vec<_> = pl.segments.iter().map(|s| s.pdt_ms).collect();
    assert_eq!(
        pdts,
        [
            None,
            Some(10_000),
            Some(12_000), // 1.9996 s rounds to 2000 ms
            None,
            None,
            Some(60_000),
            Some(62_000)
        ]
    );
    let tagged: Vec<_> = pl.segments.iter().map(|s| s.pdt_tagged).collect();
    assert_eq!(tagged, [false, true, false, false, false, true, false]);
}

#[test]
fn discontinuity_sequence_counts_from_the_header() {
    let pl = ok(
        "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:3\n#EXT-X-DISCONTINUITY-SEQUENCE:7\n\
#EXT-X-DISCONTINUITY\n#EXTINF:2,\na.ts\n#EXTINF:2,\nb.ts\n\
#EXT-X-DISCONTINUITY\n#EXT-X-DISCONTINUITY\n#EXTINF:2,\nc.ts\n",
    );
    let numbers: Vec<_> = pl
        .segments
        .iter()
        .map(|s| (s.sequence, s.discontinuity, s.disc_seq))
        .collect();
    assert_eq!(
        numbers,
        [(3, true, 8), (4, false, 8), (5, true, 9)],
        "a discontinuity on the first segment counts too; two in a row count once"
    );
}

#[test]
fn header_numbers_after_the_first_segment_still_number_every_segment() {
    let pl = ok("#EXTM3U\n#EXTINF:2,\na.ts\n#EXT-X-MEDIA-SEQUENCE:9\n#EXTINF:2,\nb.ts\n");
    let seqs: Vec<_> = pl.segments.iter().map(|s| s.sequence).collect();
    assert_eq!(seqs, [9, 10]);
}

#[test]
fn unknown_tags_are_kept_verbatim_where_they_stand() {
    let pl = ok("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n\
#EXT-X-SESSION-FOO:1\n# encoder build 42\n\
#EXTINF:2.002,one\n#EXT-X-CUE-OUT:DURATION=30\n0.ts\n\
#EXT-X-DATERANGE:ID=\"a\",START-DATE=\"2026-11-25T14:00:00Z\"\n#EXT-X-START:TIME-OFFSET=-6\n\
#EXTINF:2.002,\n1.ts\n#EXT-X-CUE-IN\n#EXT-X-ENDLIST\n#EXT-X-AFTER\n");
    assert_eq!(
        pl.header_tags,
        ["#EXT-X-INDEPENDENT-SEGMENTS", "#EXT-X-START:TIME-OFFSET=-6"],
        "playlist-level tags go to the header wherever they stand"
    );
    assert_eq!(
        pl.segments[0].tags,
        ["#EXT-X-SESSION-FOO:1", "#EXT-X-CUE-OUT:DURATION=30"],
        "tags between two URIs belong to the second; comments are dropped"
    );
    assert_eq!(
        pl.segments[1].tags,
        ["#EXT-X-DATERANGE:ID=\"a\",START-DATE=\"2026-11-25T14:00:00Z\""]
    );
    assert_eq!(pl.segments[0].title, "one");
    assert_eq!(pl.segments[0].duration_text, "2.002");
    assert_eq!(pl.trailing_tags, ["#EXT-X-CUE-IN", "#EXT-X-AFTER"]);
    assert!(pl.ended);
    assert_eq!(pl.version, Some(6));
    assert_eq!(pl.target_duration, None, "parse does not need one");
}

#[test]
fn keys_and_maps_stay_in_effect_until_the_next() {
    let k1 = "#EXT-X-KEY:METHOD=AES-128,URI=\"k1\",IV=0x01";
    let text = format!(
        "#EXTM3U\n#EXTINF:2,\na.ts\n{k1}\n#EXTINF:2,\nb.ts\n#EXTINF:2,\nc.ts\n\
#EXT-X-KEY:METHOD=NONE\n#EXTINF:2,\nd.ts\n\
#EXT-X-MAP:URI=\"i1.mp4\"\n#EXTINF:2,\ne.m4s\n#EXTINF:2,\nf.m4s\n"
    );
    let pl = ok(&text);
    let keys: Vec<_> = pl
        .segments
        .iter()
        .map(|s| s.source_key.as_deref())
        .collect();
    assert_eq!(keys, [None, Some(k1), Some(k1), None, None, None]);
    let maps: Vec<_> = pl.segments.iter().map(|s| s.map.as_deref()).collect();
    assert_eq!(
        maps,
        [None, None, None, None, Some("i1.mp4"), Some("i1.mp4")]
    );
    assert!(pl.segments.iter().all(|s| s.tags.is_empty()));
}

#[test]
fn playlist_type_and_dangling_tags() {
    let pl = ok(
        "#EXTM3U\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXTINF:2,\na.ts\n#EXTINF:2,\n#EXT-X-DISCONTINUITY\n",
    );
    assert_eq!(pl.playlist_type, Some(PlaylistType::Event));
    assert_eq!(
        pl.segments.len(),
        1,
        "an EXTINF with no URI after it is no segment"
    );
    assert!(pl.trailing_tags.is_empty());
    let empty = ok("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-CUE-IN\n");
    assert!(empty.segments.is_empty());
    assert_eq!(empty.trailing_tags, ["#EXT-X-CUE-IN"]);
}

#[test]
fn attributes_are_read_past_quoted_commas() {
    assert_eq!(attribute("A=1,B=\"x,y\",C=3", "C"), Some("3"));
    assert_eq!(attribute("A=1,B=\"x,y\",C=3", "B"), Some("\"x,y\""));
    assert_eq!(attribute("URI=\"a\"", "BYTERANGE"), None);
    assert_eq!(
        attribute("URI=\"unterminated", "URI"),
        Some("\"unterminated")
    );
    assert_eq!(attribute("garbage", "URI"), None);
    let pl = ok("#EXTM3U\n#EXT-X-MAP:URI=\"i,1.mp4\"\n#EXTINF:2,\na.m4s\n");
    assert_eq!(pl.segments[0].map.as_deref(), Some("i,1.mp4"));
}

#[test]
fn multivariant_or_media_by_the_first_decisive_tag() {
    assert!(is_multivariant(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"en\"\n"
    ));
    assert!(!is_multivariant(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:1\n#EXT-X-STREAM-INF:BANDWIDTH=1\nx.m3u8\n"
    ));
    assert!(!is_multivariant(FFMPEG));
    assert!(!is_multivariant("#EXTM3U\n"));
    assert!(!is_multivariant(
        "#EXTM3U\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXTINF:2,\na.ts\n"
    ));
}

/// #16 §3: numeric extremes an authenticated encoder can send are refused with a reason, before
/// they reach the failover timer (2 × target duration) or the numbering (sequence + index).
#[test]
fn numeric_extremes_are_refused_with_their_limit() {
    let max = u64::MAX;
    for (header, why) in [
        (
            format!("#EXT-X-TARGETDURATION:{max}\n"),
            format!("EXT-X-TARGETDURATION {max} is over the limit of 3600"),
        ),
        (
            format!("#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:{max}\n"),
            format!("EXT-X-MEDIA-SEQUENCE {max} is over the limit of 9007199254740991"),
        ),
        (
            "#EXT-X-TARGETDURATION:2\n#EXT-X-DISCONTINUITY-SEQUENCE:9007199254740992\n".to_owned(),
            "EXT-X-DISCONTINUITY-SEQUENCE 9007199254740992 is over the limit of 9007199254740991"
                .to_owned(),
        ),
    ] {
        let text = format!("#EXTM3U\n{header}#EXTINF:2.0,\na.ts\n#EXTINF:2.0,\nb.ts\n");
        let e = crate::parse_ingest(text.as_bytes()).unwrap_err();
        assert!(e.to_string().ends_with(&why), "{e}");
    }
    // The limits themselves are fine, and number on from there.
    let text = format!(
        "#EXTM3U\n#EXT-X-TARGETDURATION:3600\n#EXT-X-MEDIA-SEQUENCE:{}\n#EXTINF:2.0,\na.ts\n#EXTINF:2.0,\nb.ts\n",
        crate::parse::MAX_SEQUENCE
    );
    let p = crate::parse_ingest(text.as_bytes()).unwrap();
    assert_eq!(p.segments[1].sequence, crate::parse::MAX_SEQUENCE + 1);
}
