//! Segments as ingested: MPEG-TS and fMP4 (whole-segment AES-128 on such endpoints), and fMP4
//! initialization segments, passed through (clear: playlists declare them before any key).

use super::{PDT_HEADER, StoreAnswer};
use crate::config::{Endpoint, Format};
use crate::crypto;
use crate::error::FilterError;
use crate::http_policy::{IMMUTABLE, cors};
use crate::key_periods;
use crate::response::Response;
use crate::webvtt;

/// The program date time the store sent with a segment.
pub(crate) fn segment_pdt(answer: &StoreAnswer<'_>) -> Option<i64> {
    (answer.header)(PDT_HEADER).and_then(|v| edgepack_store_api::parse_pdt(v.trim()))
}

/// The segment's program date time, which picks its key.
pub(crate) fn keyed_pdt(answer: &StoreAnswer<'_>) -> Result<i64, FilterError> {
    segment_pdt(answer).ok_or_else(|| {
        FilterError::BadGateway(format!(
            "the store's segment has no {PDT_HEADER} header; cannot pick its key"
        ))
    })
}

/// A segment the filter made earlier, kept once per edge ([`crate::segment_cache`]): answered as
/// when it was made.
pub fn kept(content_type: &str, body: &[u8]) -> Response {
    cors(Response::with_body(200, content_type, body.to_vec()).header("cache-control", IMMUTABLE))
}

/// An fMP4 initialization segment, passed through.
pub(super) fn init(answer: &StoreAnswer<'_>) -> Response {
    // Named by its content: it never changes.
    Response::with_body(200, "video/mp4", answer.body.to_vec()).header("cache-control", IMMUTABLE)
}

/// A segment as ingested; on an AES-128 endpoint, encrypted under its key period's key.
pub(super) fn segment(
    ep: &Endpoint,
    answer: &StoreAnswer<'_>,
    sequence: u64,
) -> Result<Response, FilterError> {
    let ct = (answer.header)("content-type").unwrap_or_else(|| "video/mp2t".into());
    if ct == "text/vtt" {
        return subtitles(ep, answer);
    }
    if ep.format() == Format::Cmaf && ct != "video/mp4" {
        return Err(FilterError::NotFound(format!(
            "endpoint '{}' is cmaf: its segments are {{sequence}}.mp4 (or .m4s for fMP4 ingest), as its playlists list them",
            ep.name
        )));
    }
    if ep.common_encryption().is_some() {
        return Err(FilterError::NotFound(format!(
            "endpoint '{}' is encrypted: its segments are {{sequence}}.mp4, repackaged and encrypted, as its playlists list them",
            ep.name
        )));
    }
    let body = match ep.keys() {
        None => answer.body.to_vec(),
        Some(keys) => {
            let period = key_periods::key_period(keyed_pdt(answer)?, keys.rotation_seconds);
            let key = crypto::key_for(ep, period)?;
            // Encrypts straight from the store's answer: one copy of the segment, not two.
            crypto::encrypt_segment(&key, &crypto::iv_for(ep, sequence), answer.body)
        }
    };
    Ok(Response::with_body(200, &ct, body).header("cache-control", IMMUTABLE))
}

/// A WebVTT subtitle segment: with its `X-TIMESTAMP-MAP` ([`webvtt`]), and in the clear on
/// every endpoint — subtitle playlists carry no `EXT-X-KEY`, as players expect of text.
fn subtitles(ep: &Endpoint, answer: &StoreAnswer<'_>) -> Result<Response, FilterError> {
    if ep.format() != Format::Hls {
        return Err(FilterError::NotFound(format!(
            "endpoint '{}' carries subtitles as WebVTT in fMP4: its subtitle segments are {{sequence}}.mp4 (dash: t{{time}}.mp4), as its manifests list them",
            ep.name
        )));
    }
    let body = webvtt::with_timestamp_map(answer.body).map_err(|why| {
        FilterError::BadGateway(format!("the store's subtitle segment is not WebVTT: {why}"))
    })?;
    Ok(Response::with_body(200, "text/vtt", body).header("cache-control", IMMUTABLE))
}

#[cfg(test)]
mod tests {
    use crate::packager::test_fixtures::*;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn cmaf_endpoints_serve_fmp4_ingest_with_its_initialization_segment() {
        let init = "init-e596aaddc6b8f9792ee486b6307bfa40.mp4";
        let now = T_FMP4 + 8_000;
        // The store names the init once, before segment 0; a window that starts later still
        // announces it before its first segment.
        let f = fetch("/out/v1/news/cmaf/stream_0/index.m3u8", &[]);
        let t = text(&answer(&f.next, 200, &[], STORE_FMP4.as_bytes(), now));
        assert!(t.contains("#EXT-X-VERSION:7\n"), "{t}");
        assert_eq!(t.matches("#EXT-X-MAP:").count(), 1, "{t}");
        assert!(
            t.find(&format!("#EXT-X-MAP:URI=\"{init}\"")).unwrap() < t.find("#EXTINF").unwrap(),
            "{t}"
        );
        assert_eq!(uris(&t).last(), Some(&"3.m4s"), "{t}");
        assert!(!uris(&t).contains(&"0.m4s"), "4 s window: {t}");
        // The plain hls format passes fMP4 through the same way.
        let f = fetch("/out/v1/news/hls/stream_0/index.m3u8", &[]);
        let t = text(&answer(&f.next, 200, &[], STORE_FMP4.as_bytes(), now));
        assert_eq!(
            t.matches(&format!("#EXT-X-MAP:URI=\"{init}\"")).count(),
            1,
            "{t}"
        );

        // The initialization segment: fetched by id, passed through, cached for good.
        let f = fetch(&format!("/out/v1/news/cmaf/stream_0/{init}"), &[]);
        assert_eq!(f.path, format!("/store/v1/news/stream_0/{init}"));
        let r = answer(
            &f.next,
            200,
            &[("content-type", "video/mp4")],
            b"ftypmoov",
            now,
        );
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ftypmoov"[..]));
        assert_eq!(r.get("content-type"), Some("video/mp4"));
        assert_eq!(r.get("cache-control"), Some("max-age=1209600, immutable"));
        assert_eq!(
            status("/out/v1/news/cmaf/stream_0/init-xyz.mp4", &[]).0,
            404
        );
        let f = fetch("/out/v1/news/cmaf/stream_0/3.m4s", &[]);
        let r = answer(
            &f.next,
            200,
            &[("content-type", "video/mp4")],
            b"moofmdat",
            now,
        );
        assert_eq!((r.status, r.body.as_slice()), (200, &b"moofmdat"[..]));

        // AES-128 of fMP4: the initialization segment is declared before the key (so it stays
        // clear, RFC 8216 4.3.2.5), the media segments are encrypted whole.
        let f = fetch("/out/v1/news/fixed/stream_0/index.m3u8", &[]);
        let r = answer(&f.next, 200, &[], STORE_FMP4.as_bytes(), now);
        assert_eq!(r.status, 200, "{}", text(&r));
        let t = text(&r);
        assert!(
            t.find("#EXT-X-MAP:").unwrap() < t.find("#EXT-X-KEY:METHOD=AES-128").unwrap(),
            "{t}"
        );
        assert!(uris(&t).iter().all(|u| u.ends_with(".m4s")), "{t}");
        let f = fetch("/out/v1/news/fixed/stream_0/3.m4s", &[]);
        let seg = answer(
            &f.next,
            200,
            &[
                ("content-type", "video/mp4"),
                (PDT_HEADER, "2026-11-25T17:23:21.749Z"),
            ],
            b"moofmdat",
            now,
        );
        assert_eq!(seg.status, 200, "{}", text(&seg));
        assert_eq!(seg.body.len(), 16, "one padded AES block");
        assert_ne!(&seg.body[..8], b"moofmdat");

        // cmaf over MPEG-TS ingest: repackaged fragments, and one initialization segment per
        // discontinuity period, built from the period's first segment in the store.
        let f = fetch("/out/v1/news/cmaf/stream_0/index.m3u8", &[]);
        let t = text(&answer(
            &f.next,
            200,
            &[],
            STORE_MEDIA.as_bytes(),
            T0 + 8_000,
        ));
        assert!(t.contains("#EXT-X-VERSION:6\n"), "{t}");
        assert_eq!(
            t.matches("#EXT-X-MAP:URI=\"init-ts0.mp4\"").count(),
            1,
            "{t}"
        );
        assert!(uris(&t).iter().all(|u| u.ends_with(".mp4")), "{t}");
        let f = fetch("/out/v1/news/cmaf/stream_0/init-ts0.mp4", &[]);
        assert_eq!(f.path, "/store/v1/news/stream_0/0.media");
        let f = fetch("/out/v1/news/cmaf/stream_0/3.mp4", &[]);
        assert_eq!(f.path, "/store/v1/news/stream_0/3.media");
        // Not a TS segment: a clear 502 naming the problem, no panic.
        let r = answer(&f.next, 200, &[], b"not a transport stream", now);
        assert_eq!(r.status, 502, "{}", text(&r));
        assert!(text(&r).contains("cannot be repackaged"), "{}", text(&r));
        // The endpoint's segments are .mp4: a .ts request is answered 404 with the reason.
        let f = fetch("/out/v1/news/cmaf/stream_0/3.ts", &[]);
        let r = answer(&f.next, 200, &[("content-type", "video/mp2t")], b"G", now);
        assert_eq!(r.status, 404);
        assert_eq!(status("/out/v1/news/hls/stream_0/init-ts0.mp4", &[]).0, 404);
        let e = Settings::from_json(
            CONFIG
                .replace(
                    r#""cmaf": { "format": "cmaf","#,
                    r#""cmaf": { "format": "cmaf", "encryption": { "method": "aes-128", "key": { "derived": { "secret": "0123456789abcdef0123" } }, "key_token": { "secret": "tok-0123456789abcdef" } },"#,
                )
                .as_bytes(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("channels.news.endpoints.cmaf.encryption"), "{e}");
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn encrypted_playlist_keys_and_segments() {
        let now = T0 + 10_000;
        let t = media("/out/v1/news/secure/stream_0/index.m3u8", CDN, now);
        // 4 s rotation: periods change at multiples of 4 s of PDT.
        let keys: Vec<&str> = t.lines().filter(|l| l.starts_with("#EXT-X-KEY")).collect();
        assert!(keys.len() >= 2, "{t}");
        assert!(
            keys.iter()
                .all(|k| k.starts_with("#EXT-X-KEY:METHOD=AES-128,URI=\"../key/")
                    && !k.contains("IV=")),
            "{t}"
        );
        // Fetch the first key with its token, as a player would.
        let uri = keys[0]
            .split("URI=\"")
            .nth(1)
            .unwrap()
            .trim_end_matches('"');
        let key_url = format!("/out/v1/news/secure/{}", uri.trim_start_matches("../"));
        let period: u64 = uri
            .trim_start_matches("../key/")
            .split('?')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let ep = &settings().channels["news"]["secure"];
        match plan_at(&key_url, CDN, now) {
            Plan::Respond(r) => {
                assert_eq!((r.status, r.get("cache-control")), (200, Some("no-store")));
                assert_eq!(r.body, crypto::key_for(ep, period).unwrap().to_vec());
            }
            other => panic!("{other:?}"),
        }
        let expired = plan_at(&key_url, CDN, now + 3_600_000);
        assert!(
            matches!(expired, Plan::Respond(ref r) if r.status == 403 && String::from_utf8_lossy(&r.body).contains("expired"))
        );
        let tampered = key_url.replace("token=", "token=1");
        assert!(matches!(plan_at(&tampered, CDN, now), Plan::Respond(ref r) if r.status == 403));
        let other_key =
            key_url.replacen(&format!("key/{period}"), &format!("key/{}", period + 1), 1);
        assert!(
            matches!(plan_at(&other_key, CDN, now), Plan::Respond(ref r) if r.status == 403),
            "tokens are bound to their key"
        );
        assert!(
            matches!(plan_at("/out/v1/news/secure/key/1?token=x", CDN, now), Plan::Respond(ref r) if r.status == 403)
        );
        assert!(
            matches!(plan_at("/out/v1/news/secure/key/1", CDN, now), Plan::Respond(ref r) if r.status == 403)
        );
        assert!(
            matches!(plan_at("/out/v1/news/hls/key/1", &[], now), Plan::Respond(ref r) if r.status == 403)
        );

        // The segment is encrypted with its period's key and the media-sequence IV.
        let f = fetch("/out/v1/news/secure/stream_0/3.ts", CDN);
        assert_eq!(f.path, "/store/v1/news/stream_0/3.ts");
        let clear: Vec<u8> = (0..188 * 50).map(|i| (i % 251) as u8).collect();
        let pdt = "2026-11-25T14:35:37.666Z";
        let r = answer(
            &f.next,
            200,
            &[(PDT_HEADER, pdt), ("content-type", "video/mp2t")],
            &clear,
            now,
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.get("cache-control"), Some("max-age=1209600, immutable"));
        assert_eq!(r.get("access-control-allow-origin"), Some("*"));
        let p = crate::key_periods::key_period(T0 + 6_000, 4);
        let dec = cbc::Decryptor::<aes::Aes128>::new(
            &crypto::key_for(ep, p).unwrap().into(),
            &u128::from(3u64).to_be_bytes().into(),
        )
        .decrypt_padded_vec_mut::<Pkcs7>(&r.body)
        .unwrap();
        assert_eq!(dec, clear);
        // Identical on every edge: same request, same bytes.
        let again = answer(
            &f.next,
            200,
            &[(PDT_HEADER, pdt), ("content-type", "video/mp2t")],
            &clear,
            now + 99_000,
        );
        assert_eq!(again.body, r.body);
        let no_pdt = answer(&f.next, 200, &[], &clear, now);
        assert_eq!(no_pdt.status, 502);
        assert_eq!(key_path(ep, 7), "/out/v1/news/secure/key/7");
    }
}

#[cfg(test)]
mod subtitle_tests {
    use crate::packager::test_fixtures::*;

    /// The store's playlist of a WebVTT rendition: ffmpeg dates none of its segments, the store
    /// gives them its video's dates.
    const STORE_VTT: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n\
#EXT-X-PROGRAM-DATE-TIME:2026-11-25T14:35:31.666Z\n#EXTINF:2.000000,\n0.vtt\n\
#EXT-X-PROGRAM-DATE-TIME:2026-11-25T14:35:33.666Z\n#EXTINF:2.000000,\n1.vtt\n";
    const CUE: &[u8] = b"WEBVTT\n\n00:02.122 --> 00:02.922\nCue 2\n";

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn subtitle_segments_are_clear_and_mapped_on_encrypted_hls_endpoints() {
        // The AES-128 endpoint keys its video, not its subtitle playlist.
        let f = fetch("/out/v1/news/fixed/subs/index.m3u8", &[]);
        let t = text(&answer(&f.next, 200, &[], STORE_VTT.as_bytes(), T0 + 4_000));
        assert!(!t.contains("EXT-X-KEY"), "{t}");
        assert_eq!(uris(&t), ["0.vtt", "1.vtt"], "{t}");

        let f = fetch("/out/v1/news/fixed/subs/1.vtt", &[]);
        assert_eq!(f.path, "/store/v1/news/subs/1.vtt");
        let vtt = [("content-type", "text/vtt")];
        let r = answer(&f.next, 200, &vtt, CUE, T0 + 4_000);
        assert_eq!(r.status, 200, "{}", text(&r));
        assert_eq!(r.get("content-type"), Some("text/vtt"));
        assert_eq!(
            text(&r),
            "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n00:02.122 --> 00:02.922\nCue 2\n"
        );
        // What the store holds under a .vtt name but is not WebVTT: the store's fault, named.
        let r = answer(&f.next, 200, &vtt, b"\x47\x40\x00\x10", T0 + 4_000);
        assert_eq!(r.status, 502);
        assert!(text(&r).contains("not WebVTT"), "{}", text(&r));
    }

    /// A minimal MPEG-TS segment: PAT, PMT (one H.264 stream) and one video PES with `pts`.
    fn ts_with_video_pts(pts: u64) -> Vec<u8> {
        fn packet(pid: u16, payload: &[u8]) -> Vec<u8> {
            let mut p = vec![0x47, 0x40 | (pid >> 8) as u8, pid as u8, 0x10];
            p.extend_from_slice(payload);
            p.resize(188, 0xFF);
            p
        }
        let pat = [0, 0, 0xB0, 13, 0, 1, 0xC1, 0, 0, 0, 1, 0xF0, 0, 0, 0, 0, 0];
        let pmt = [
            0, 2, 0xB0, 18, 0, 1, 0xC1, 0, 0, 0xE1, 0x01, 0xF0, 0, 0x1B, 0xE1, 0x01, 0xF0, 0, 0, 0,
            0, 0,
        ];
        let pes = [
            0,
            0,
            1,
            0xE0,
            0,
            0,
            0x80,
            0x80,
            5,
            0x21 | ((pts >> 29) & 0x0E) as u8,
            (pts >> 22) as u8,
            0x01 | ((pts >> 14) & 0xFE) as u8,
            (pts >> 7) as u8,
            0x01 | ((pts << 1) & 0xFE) as u8,
            0,
            0,
            0,
            1,
            0x09,
            0xF0,
        ];
        [packet(0, &pat), packet(0x1000, &pmt), packet(0x101, &pes)].concat()
    }

    /// `(type, body)` of each box in `d`.
    fn boxes(mut d: &[u8]) -> Vec<(String, &[u8])> {
        let mut out = Vec::new();
        while d.len() >= 8 {
            let n = u32::from_be_bytes(d[..4].try_into().unwrap()) as usize;
            out.push((String::from_utf8_lossy(&d[4..8]).into_owned(), &d[8..n]));
            d = &d[n..];
        }
        out
    }

    fn find<'a>(d: &'a [u8], path: &[&str]) -> &'a [u8] {
        let (first, rest) = path.split_first().unwrap();
        let (_, body) = boxes(d)
            .into_iter()
            .find(|(k, _)| k == first)
            .unwrap_or_else(|| panic!("no {first}"));
        if rest.is_empty() {
            body
        } else {
            find(body, rest)
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn cmaf_dash_and_mss_carry_subtitles_on_the_videos_timeline() {
        // cmaf: the rendition's playlist names fragments and a text initialization segment.
        let f = fetch("/out/v1/news/cmaf/subs/index.m3u8", &[]);
        let t = text(&answer(&f.next, 200, &[], STORE_VTT.as_bytes(), T0 + 4_000));
        assert_eq!(uris(&t), ["0.mp4", "1.mp4"], "{t}");
        assert!(t.contains("#EXT-X-MAP:URI=\"init-ts0.mp4\""), "{t}");
        // Segment 1: the store's WebVTT (dated 14:35:33.666, 2 s) …
        let pdt = "2026-11-25T14:35:33.666Z";
        let pdt_ms = edgepack_store_api::parse_pdt(pdt).unwrap();
        let vtt_headers = [
            ("content-type", "text/vtt"),
            (PDT_HEADER, pdt),
            ("x-edgepack-duration", "2.000000"),
            ("x-edgepack-sequence", "1"),
        ];
        let f = fetch("/out/v1/news/cmaf/subs/1.mp4", &[]);
        assert_eq!(f.path, "/store/v1/news/subs/1.media");
        assert!(f.is_segment());
        let Plan::Fetch(variants) = next_plan(&f.next, 200, &vtt_headers, CUE, T0 + 4_000) else {
            panic!("the multivariant playlist comes next")
        };
        // … the multivariant playlist names the video dated alike …
        assert_eq!(variants.path, "/store/v1/news/index.m3u8");
        assert!(variants.is_playlist() && variants.is_segment());
        let groups = "#EXTM3U\n#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"s\",NAME=\"en\",URI=\"subs/index.m3u8\"\n\
#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"avc1.64001f\"\nother/index.m3u8\n\
#EXT-X-STREAM-INF:BANDWIDTH=2,CODECS=\"avc1.64001f\",SUBTITLES=\"s\"\nvideo/index.m3u8\n";
        let Plan::Fetch(video) = next_plan(&variants.next, 200, &[], groups.as_bytes(), T0) else {
            panic!("the video segment comes next")
        };
        assert_eq!(
            video.path,
            format!("/store/v1/news/video/at/{pdt_ms}.media")
        );
        // … whose first frame is MPEG-2 time 2.02 s (ffmpeg's): cue "Cue 2" (2.122 s local,
        // no map) starts 0.102 s into the fragment, for 0.8 s.
        let ts = ts_with_video_pts(181_800);
        let r = answer(&video.next, 200, &[("content-type", "video/mp2t")], &ts, T0);
        assert_eq!(r.status, 200, "{}", text(&r));
        assert_eq!(r.get("content-type"), Some("application/mp4"));
        assert_eq!(r.get("cache-control"), Some("max-age=1209600, immutable"));
        let tfdt = find(&r.body, &["moof", "traf", "tfdt"]);
        assert_eq!(
            u64::from_be_bytes(tfdt[4..12].try_into().unwrap()),
            pdt_ms as u64 * 90
        );
        let trun = find(&r.body, &["moof", "traf", "trun"]);
        let n = u32::from_be_bytes(trun[4..8].try_into().unwrap()) as usize;
        let durations: Vec<u32> = (0..n)
            .map(|i| u32::from_be_bytes(trun[12 + 16 * i..16 + 16 * i].try_into().unwrap()))
            .collect();
        assert_eq!(durations, [102 * 90, 800 * 90, 1098 * 90]);
        let mdat = find(&r.body, &["mdat"]);
        assert!(
            mdat.windows(9).any(|w| w == b"paylCue 2"),
            "the cue's payload"
        );
        assert_eq!(
            boxes(mdat)
                .iter()
                .map(|(k, _)| k.as_str())
                .collect::<Vec<_>>(),
            ["vtte", "vttc", "vtte"]
        );

        // The text initialization segment: wvtt, 90 kHz, straight from the WebVTT answer.
        let f = fetch("/out/v1/news/cmaf/subs/init-ts0.mp4", &[]);
        let r = answer(&f.next, 200, &vtt_headers, CUE, T0);
        assert_eq!(r.status, 200, "{}", text(&r));
        let stsd = find(&r.body, &["moov", "trak", "mdia", "minf", "stbl", "stsd"]);
        assert_eq!(&stsd[12..16], b"wvtt");
        assert_eq!(
            &find(&r.body, &["moov", "trak", "mdia", "hdlr"])[8..12],
            b"text"
        );

        // dash: the same fragment by time.
        let f = fetch(&format!("/out/v1/news/dash/subs/t{}.mp4", pdt_ms * 90), &[]);
        assert_eq!(f.path, format!("/store/v1/news/subs/at/{pdt_ms}.media"));
        assert!(matches!(
            next_plan(&f.next, 200, &vtt_headers, CUE, T0),
            Plan::Fetch(_)
        ));
        // A text track of a rendition that is not subtitles; WebVTT that is not.
        let r = answer(&f.next, 200, &[("content-type", "video/mp2t")], &ts, T0);
        assert_eq!(r.status, 404, "{}", text(&r));
        let r = answer(&f.next, 200, &vtt_headers, b"WEBVTT\n\n1 --> 2\n", T0);
        assert_eq!(r.status, 502, "{}", text(&r));
        assert!(text(&r).contains("cue timing"), "{}", text(&r));
        // The video dated alike missing: the reason names it.
        let r = answer(&video.next, 404, &[], b"no segment at that time", T0);
        assert_eq!(r.status, 502);
        assert!(text(&r).contains("video"), "{}", text(&r));
        // mss: the same cues as a TTML document in a Smooth Streaming fragment, its times from
        // the fragment's start.
        let t = crate::mss::time_of(pdt_ms).unwrap();
        let f = fetch(
            &format!("/out/v1/news/mss/QualityLevels(1000)/Fragments(text_subs={t})"),
            &[],
        );
        let Plan::Fetch(segment) = next_plan(&f.next, 200, &[], groups.as_bytes(), T0) else {
            panic!("the subtitle segment comes next")
        };
        assert_eq!(
            segment.path,
            format!("/store/v1/news/subs/at/{pdt_ms}.media")
        );
        let Plan::Fetch(variants) = next_plan(&segment.next, 200, &vtt_headers, CUE, T0) else {
            panic!("the multivariant playlist comes next")
        };
        let Plan::Fetch(video) = next_plan(&variants.next, 200, &[], groups.as_bytes(), T0) else {
            panic!("the video segment comes next")
        };
        let r = answer(&video.next, 200, &[("content-type", "video/mp2t")], &ts, T0);
        assert_eq!(r.status, 200, "{}", text(&r));
        assert_eq!(r.get("cache-control"), Some("max-age=1209600, immutable"));
        let mdat = String::from_utf8(find(&r.body, &["mdat"]).to_vec()).unwrap();
        assert!(
            mdat.contains("<p begin=\"00:00:00.102\" end=\"00:00:00.902\">Cue 2</p>"),
            "{mdat}"
        );
        let f = fetch(
            &format!("/out/v1/news/mss/QualityLevels(1000)/Fragments(text_nothere={t})"),
            &[],
        );
        let r = answer(&f.next, 200, &[], groups.as_bytes(), T0);
        assert_eq!(r.status, 404, "{}", text(&r));
        assert!(text(&r).contains("text_subs"), "{}", text(&r));
        // Raw WebVTT is for hls endpoints.
        let f = fetch("/out/v1/news/cmaf/subs/1.vtt", &[]);
        let r = answer(&f.next, 200, &vtt_headers, CUE, T0);
        assert_eq!(r.status, 404, "{}", text(&r));
    }
}
