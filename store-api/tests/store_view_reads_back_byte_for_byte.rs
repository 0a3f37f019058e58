//! The store's view, as recorded from the real sidecar after ffmpeg pushed live HLS, reads into
//! the model and is written back byte for byte; an ffmpeg upload reads the same whatever the
//! order of its tags, and its written form reads back to the same model.

use edgepack_store_api::{MediaPlaylist, api, is_multivariant, parse, parse_ingest};

const STORE_MEDIA: &str = include_str!("fixtures/store_media_stream_0.m3u8");
const STORE_FMP4: &str = include_str!("fixtures/store_media_fmp4.m3u8");
const STORE_MULTIVARIANT: &str = include_str!("fixtures/store_multivariant.m3u8");

fn written(pl: &MediaPlaylist<'_>) -> String {
    let mut out = String::new();
    pl.write_to(&mut out);
    out
}

#[test]
fn recorded_store_views_are_written_back_identically() {
    for fixture in [STORE_MEDIA, STORE_FMP4] {
        let pl = parse(fixture.as_bytes()).unwrap();
        assert_eq!(written(&pl), fixture);
        assert_eq!(parse(written(&pl).as_bytes()).unwrap(), pl);
        assert!(!is_multivariant(fixture));
    }
}

#[test]
fn recorded_store_views_read_as_the_filter_needs_them() {
    let ts = parse(STORE_MEDIA.as_bytes()).unwrap();
    assert_eq!(ts.segments.len(), 4);
    for (i, s) in ts.segments.iter().enumerate() {
        assert_eq!(s.sequence, i as u64);
        assert_eq!(api::parse_segment_uri(&s.uri), Some((s.sequence, "ts")));
        assert_eq!(s.ext(), "ts");
        assert!(s.pdt_tagged);
        assert_eq!(s.disc_seq, 0);
    }
    let first = ts.segments[0].pdt_ms.unwrap();
    assert_eq!(ts.segments[1].pdt_ms, ts.segments[0].end_ms());
    assert_eq!(
        edgepack_store_api::format_pdt(first),
        "2026-11-25T14:35:31.666Z"
    );

    let fmp4 = parse(STORE_FMP4.as_bytes()).unwrap();
    assert_eq!(fmp4.version, Some(7));
    let id = "e596aaddc6b8f9792ee486b6307bfa40";
    for s in &fmp4.segments {
        assert_eq!(s.map.as_deref().and_then(api::parse_init_uri), Some(id));
        assert_eq!(s.ext(), "m4s");
    }
}

#[test]
fn the_recorded_multivariant_names_the_stores_media_playlists() {
    assert!(is_multivariant(STORE_MULTIVARIANT));
    let renditions: Vec<&str> = STORE_MULTIVARIANT
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(api::parse_variant_uri)
        .collect();
    assert_eq!(renditions, ["stream_0", "stream_1"]);
}

// As Debian's ffmpeg 5.1 uploads it (PDT after EXTINF, `+0000` offsets), with a cue and a
// discontinuity; and the same after the store's normalization of its tag order.
const FFMPEG_UPLOAD: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n\
#EXT-X-MEDIA-SEQUENCE:7\n#EXTINF:2.000000,\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T14:00:00.000+0000\n\
stream_0_7.ts\n#EXTINF:2.000000,\nstream_0_8.ts\n#EXT-X-CUE-OUT:30\n#EXT-X-DISCONTINUITY\n\
#EXTINF:1.960000,\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T14:01:00.000+0000\nstream_0_9.ts\n";
const NORMALIZED: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n\
#EXT-X-MEDIA-SEQUENCE:7\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n\
#EXT-X-PROGRAM-DATE-TIME:2026-11-25T14:00:00.000Z\n#EXTINF:2.000000,\nstream_0_7.ts\n\
#EXTINF:2.000000,\nstream_0_8.ts\n#EXT-X-DISCONTINUITY\n#EXT-X-CUE-OUT:30\n\
#EXT-X-PROGRAM-DATE-TIME:2026-11-25T14:01:00.000Z\n#EXTINF:1.960000,\nstream_0_9.ts\n";

#[test]
fn an_ffmpeg_upload_is_written_in_the_stores_order_and_reads_back_the_same() {
    let upload = parse_ingest(FFMPEG_UPLOAD.as_bytes()).unwrap();
    assert_eq!(written(&upload), NORMALIZED);
    let again = parse(NORMALIZED.as_bytes()).unwrap();
    assert_eq!(again, upload);
    assert_eq!(written(&again), NORMALIZED);
    assert_eq!(
        upload.segments[1].pdt_ms,
        upload.segments[0].end_ms(),
        "extrapolated, and not written: the reader extrapolates it the same way"
    );
}
