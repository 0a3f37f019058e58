//! Manifests: the HLS multivariant and media playlists, and the DASH MPD (two store answers:
//! the multivariant playlist names the variants, the first variant's playlist gives the timeline).

use std::ops::Range;

use edgepack_store_api::api as store;
use edgepack_store_api::window::ViewQuery;

use super::{
    DashVariants, Fetch, Job, JobKind, Settings, Step, StoreAnswer, endpoint, store_error,
};
use crate::config::Endpoint;
use crate::dash;
use crate::endpoint_errors;
use crate::error::FilterError;
use crate::http_policy::{self, MULTIVARIANT};
use crate::media_playlist::{self, MediaPlaylist};
use crate::media_rewrite;
use crate::multivariant::{self, AudioRendition, SubtitleRendition, Variant};
use crate::playlist_window::{self, PlaylistType, WindowSpec};
use crate::query::{ManifestFilter, TimeShift};
use crate::response::Response;

const HLS: &str = "application/vnd.apple.mpegurl";

/// The endpoint's multivariant playlist.
pub(super) fn multivariant(
    ep: &Endpoint,
    answer: &StoreAnswer<'_>,
    filter: Option<&ManifestFilter>,
    carry: &[String],
) -> Result<Response, FilterError> {
    let text = multivariant::write(answer.body, ep, filter, carry)?;
    Ok(Response::with_body(200, HLS, text.into_bytes()).header("cache-control", MULTIVARIANT))
}

/// The endpoint's media playlist: the window of the store's that the time shift selects.
pub(super) fn media(
    ep: &Endpoint,
    answer: &StoreAnswer<'_>,
    time: &TimeShift,
    now_ms: i64,
) -> Result<Response, FilterError> {
    let pl = media_playlist::parse(answer.body)?;
    let (range, kind, _) = window(ep, &pl, time, now_ms)?;
    if let Some(refused) = endpoint_errors::check(&ep.errors, &pl, &range, kind, now_ms) {
        return Ok(refused);
    }
    let text = media_rewrite::write(&pl, range, kind, ep, now_ms)?;
    Ok(Response::with_body(200, HLS, text.into_bytes()).header(
        "cache-control",
        http_policy::live_manifest(pl.target_duration.unwrap_or(0)),
    ))
}

/// What a DASH or Smooth Streaming manifest offers, read from the store's multivariant
/// playlist: the variants, their alternative audio, and the path of the first variant's
/// playlist view (the timeline all variants share).
pub(super) struct Offer {
    pub variants: Vec<Variant>,
    pub audio: Vec<AudioRendition>,
    /// Subtitle renditions (DASH text AdaptationSets; Smooth Streaming carries none).
    pub subtitles: Vec<SubtitleRendition>,
    pub timeline_path: String,
}

/// Step 1 of a DASH or Smooth Streaming manifest: the [`Offer`] of the store's answer.
pub(super) fn offer(
    settings: &Settings,
    first: &DashVariants,
    answer: &StoreAnswer<'_>,
    now_ms: i64,
) -> Result<Offer, FilterError> {
    if answer.status != 200 {
        return Err(store_error(answer));
    }
    let ep = endpoint(settings, &first.channel, &first.endpoint)?;
    let variants = multivariant::variants(answer.body, ep, first.filter.as_ref())?;
    let audio = multivariant::audio_renditions(answer.body, &variants, first.filter.as_ref())?;
    let subtitles =
        multivariant::subtitle_renditions(answer.body, &variants, first.filter.as_ref())?;
    // `variants` is never empty: an empty selection is an error above.
    let timeline = variants
        .first()
        .map(|v| v.rendition.as_str())
        .unwrap_or_default();
    let timeline_path = view_path(ep, &first.channel, timeline, &first.time, now_ms);
    Ok(Offer {
        variants,
        audio,
        subtitles,
        timeline_path,
    })
}

/// DASH, after step 1: the fetch of the timeline, the MPD to follow.
pub(super) fn dash_timeline_fetch(
    settings: &Settings,
    first: &DashVariants,
    answer: &StoreAnswer<'_>,
    now_ms: i64,
) -> Result<Fetch, FilterError> {
    let Offer {
        variants,
        audio,
        subtitles,
        timeline_path,
    } = offer(settings, first, answer, now_ms)?;
    Ok(Fetch {
        path: timeline_path,
        next: Step::Answer(Job {
            channel: first.channel.clone(),
            endpoint: first.endpoint.clone(),
            kind: JobKind::DashManifest {
                variants,
                audio,
                subtitles,
                time: first.time.clone(),
                base_url: first.base_url.clone(),
            },
        }),
    })
}

/// DASH, step 2: the MPD from the variants and the timeline playlist.
pub(super) fn dash_manifest(
    ep: &Endpoint,
    answer: &StoreAnswer<'_>,
    (variants, audio, subtitles): (&[Variant], &[AudioRendition], &[SubtitleRendition]),
    time: &TimeShift,
    base_url: &str,
    now_ms: i64,
) -> Result<Response, FilterError> {
    let pl = media_playlist::parse(answer.body)?;
    let (range, kind, spec) = window(ep, &pl, time, now_ms)?;
    if let Some(refused) = endpoint_errors::check(&ep.errors, &pl, &range, kind, now_ms) {
        return Ok(refused);
    }
    let text = dash::write(&dash::Manifest {
        variants,
        audio_renditions: audio,
        subtitles,
        playlist: &pl,
        range,
        kind,
        endpoint: ep,
        now_ms,
        window_ms: time_shift_buffer_ms(kind, &spec, now_ms),
        delay_ms: spec.delay_ms,
        base_url,
    })?;
    Ok(manifest_response("application/dash+xml", text, &pl))
}

/// How far back a player of a DASH or Smooth Streaming manifest may seek: the window, or from a
/// time shift's `start` to live (at least the window).
pub(super) fn time_shift_buffer_ms(kind: PlaylistType, spec: &WindowSpec, now_ms: i64) -> i64 {
    match (kind, spec.start_ms) {
        (PlaylistType::Event, Some(start)) => spec
            .window_ms
            .max(now_ms.saturating_sub(spec.delay_ms).saturating_sub(start)),
        _ => spec.window_ms,
    }
}

/// A manifest answer, cached as a live manifest of the playlist's target duration.
pub(super) fn manifest_response(content_type: &str, text: String, pl: &MediaPlaylist) -> Response {
    Response::with_body(200, content_type, text.into_bytes()).header(
        "cache-control",
        http_policy::live_manifest(pl.target_duration.unwrap_or(0)),
    )
}

/// The part of a rendition's history a request's time shift asks of the store: only that is
/// fetched (with what the filter needs around it), whatever the length of the history.
pub(super) fn view_path(
    ep: &Endpoint,
    channel: &str,
    rendition: &str,
    time: &TimeShift,
    now_ms: i64,
) -> String {
    let view = ViewQuery {
        spec: window_spec(ep, time, now_ms),
        rotation_seconds: ep.keys().map_or(0, |k| k.rotation_seconds),
    };
    format!(
        "{}?{}",
        store::media_playlist_path(channel, rendition),
        view.to_query()
    )
}

fn window_spec(ep: &Endpoint, time: &TimeShift, now_ms: i64) -> WindowSpec {
    WindowSpec {
        now_ms,
        window_ms: time.window_seconds.unwrap_or(ep.manifest_window_seconds) as i64 * 1000,
        delay_ms: time.delay_seconds.unwrap_or(ep.time_delay_seconds) as i64 * 1000,
        start_ms: time.start_ms,
        end_ms: time.end_ms,
    }
}

/// The window of a media playlist an endpoint shows for a request's time shift.
pub(super) fn window(
    ep: &Endpoint,
    pl: &MediaPlaylist,
    time: &TimeShift,
    now_ms: i64,
) -> Result<(Range<usize>, PlaylistType, WindowSpec), FilterError> {
    let spec = window_spec(ep, time, now_ms);
    if let Some(start) = time.start_ms
        && start > now_ms
    {
        return Err(FilterError::BadRequest("start is in the future".into()));
    }
    let (range, kind) = playlist_window::select(&pl.segments, &spec);
    // A store view names the start of the history; a whole history starts with its first segment.
    let history_start = pl
        .view
        .and_then(|v| v.history_start_ms)
        .or_else(|| pl.segments.first().and_then(|s| s.pdt_ms));
    if range.is_empty()
        && let (Some(end), Some(first)) = (time.end_ms, history_start)
        && end <= first
    {
        return Err(FilterError::BadRequest(format!(
            "the requested time range ends before the startover window, which begins at {}",
            chrono::DateTime::<chrono::Utc>::from_timestamp_millis(first)
                .map_or_else(|| first.to_string(), |t| t.to_rfc3339())
        )));
    }
    Ok((range, kind, spec))
}

#[cfg(test)]
mod tests {
    use crate::packager::test_fixtures::*;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn multivariant_carries_time_shift_and_filters() {
        let f = fetch(
            "/out/v1/news/hls/index.m3u8?start=1795617331&x=cachebuster",
            &[],
        );
        assert_eq!(f.path, "/store/v1/news/index.m3u8");
        let r = answer(&f.next, 200, &[], STORE_MASTER.as_bytes(), T0);
        assert_eq!(r.status, 200);
        assert_eq!(r.get("content-type"), Some("application/vnd.apple.mpegurl"));
        let t = text(&r);
        assert_eq!(
            uris(&t),
            [
                "stream_0/index.m3u8?start=1795617331",
                "stream_1/index.m3u8?start=1795617331"
            ]
        );
        assert!(t.contains("RESOLUTION=320x240"), "{t}");

        let f = fetch(
            "/out/v1/news/hls/index.m3u8?aws.manifestfilter=video_height%3A0-200",
            &[],
        );
        let t = text(&answer(&f.next, 200, &[], STORE_MASTER.as_bytes(), T0));
        assert_eq!(uris(&t), ["stream_1/index.m3u8"], "{t}");
        let f = fetch(
            "/out/v1/news/hls/index.m3u8?aws.manifestfilter=video_height:2000-3000",
            &[],
        );
        let r = answer(&f.next, 200, &[], STORE_MASTER.as_bytes(), T0);
        assert_eq!(r.status, 400, "an empty result is a 400");
        assert_eq!(
            status(
                "/out/v1/news/hls/stream_0/index.m3u8?aws.manifestfilter=video_height:0-200",
                &[]
            )
            .0,
            400
        );
        assert_eq!(
            status(
                "/out/v1/news/hls/stream_0/3.ts?aws.manifestfilter=video_height:0-200",
                &[]
            )
            .0,
            400
        );
        assert_eq!(
            status(
                "/out/v1/news/hls/index.m3u8?aws.manifestfilter=donut:1",
                &[]
            )
            .0,
            400
        );
        assert_eq!(
            status("/out/v1/news/hls/index.m3u8?start=2&end=1", &[]).0,
            400
        );
    }

    fn groups(path: &str) -> (u16, String) {
        let f = fetch(path, &[]);
        let r = answer(&f.next, 200, &[], GROUPS.as_bytes(), T0);
        (r.status, text(&r))
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn subtitles_are_carried_on_hls_cmaf_and_dash_endpoints() {
        let (_, t) = groups("/out/v1/news/hls/index.m3u8");
        assert_eq!(t.matches("TYPE=SUBTITLES").count(), 2, "{t}");
        assert_eq!(t.matches(",SUBTITLES=\"subs\"").count(), 3, "{t}");
        // cmaf: the same renditions (WebVTT in fMP4 there).
        let (_, c) = groups("/out/v1/news/cmaf/index.m3u8");
        assert_eq!(c.matches("TYPE=SUBTITLES").count(), 2, "{c}");
        // Their format among the variants' codecs (RFC 8216bis: every format a variant holds).
        assert!(
            c.contains("CODECS=\"avc1.640028,mp4a.40.2,wvtt\",RESOLUTION=1920x1080"),
            "{c}"
        );
        assert!(!t.contains("wvtt"), "{t}");
        let (s, c) = groups("/out/v1/news/cmaf/index.m3u8?aws.manifestfilter=subtitle_language:es");
        assert_eq!(s, 200, "{c}");
        assert!(
            c.contains("URI=\"subs_es/index.m3u8\"") && !c.contains("subs_en"),
            "{c}"
        );
        // On hls, a subtitle language naming nothing leaves only the variant without subtitles.
        let (_, t) = groups("/out/v1/news/hls/index.m3u8?aws.manifestfilter=subtitle_language:de");
        assert!(!t.contains("TYPE=SUBTITLES"), "{t}");
        assert!(uris(&t).contains(&"v540/index.m3u8"), "{t}");
        assert!(!uris(&t).contains(&"v1080/index.m3u8"), "{t}");
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn caption_channels_are_announced_as_configured() {
        let (_, t) = groups("/out/v1/news/captioned/index.m3u8");
        assert!(
            t.contains(
                "#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",LANGUAGE=\"eng\",NAME=\"English\",DEFAULT=YES,AUTOSELECT=YES,INSTREAM-ID=\"CC1\"\n\
#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",LANGUAGE=\"fr\",NAME=\"fr\",DEFAULT=NO,AUTOSELECT=YES,INSTREAM-ID=\"CC3\"\n\
#EXT-X-STREAM-INF:BANDWIDTH=5000000,"
            ),
            "before the first variant: {t}"
        );
        // Every video variant names the group; the audio-only one does not.
        assert_eq!(t.matches(",CLOSED-CAPTIONS=\"cc\"\n").count(), 4, "{t}");
        assert!(
            t.contains("#EXT-X-STREAM-INF:BANDWIDTH=96000,CODECS=\"mp4a.40.2\",AUDIO=\"aac\"\n"),
            "{t}"
        );
        // The encoder's own caption signals give way to the endpoint's.
        let encoder = GROUPS.replace(
            "#EXT-X-STREAM-INF:BANDWIDTH=600000,",
            "#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"enc\",NAME=\"x\",INSTREAM-ID=\"CC2\"\n#EXT-X-STREAM-INF:BANDWIDTH=600000,CLOSED-CAPTIONS=\"enc\",",
        );
        let f = fetch("/out/v1/news/captioned/index.m3u8", &[]);
        let t = text(&answer(&f.next, 200, &[], encoder.as_bytes(), T0));
        assert!(!t.contains("enc") && !t.contains("CC2"), "{t}");
        assert_eq!(t.matches("CLOSED-CAPTIONS=\"cc\"").count(), 4, "{t}");
        // Without a mapping, the encoder's pass through.
        let f = fetch("/out/v1/news/hls/index.m3u8", &[]);
        let t = text(&answer(&f.next, 200, &[], encoder.as_bytes(), T0));
        assert!(
            t.contains("CLOSED-CAPTIONS=\"enc\"") && t.contains("CC2"),
            "{t}"
        );
        // DASH: the video AdaptationSet's Accessibility.
        let mpd = mpd_over("/out/v1/news/dash-cc/index.mpd", GROUPS);
        assert!(
            mpd.contains(
                "<Accessibility schemeIdUri=\"urn:scte:dash:cc:cea-608:2015\" value=\"CC1=eng\"/>"
            ),
            "{mpd}"
        );
        assert_eq!(mpd.matches("<Accessibility").count(), 1, "{mpd}");
        // Found by fuzzing: a STREAM-INF line m3u8-rs reads no variant from (a NUL in it) was
        // looked up before the counts were compared, a panic; now the store's fault, 502.
        let f = fetch("/out/v1/news/captioned/index.m3u8", &[]);
        let r = answer(
            &f.next,
            200,
            &[],
            b"#EXTM3U\n#EXT-X-STREAM-INF:B\x000\ns93t",
            T0,
        );
        assert_eq!(r.status, 502, "{}", text(&r));
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn groups_stay_consistent() {
        let (_, t) = groups("/out/v1/news/hls/index.m3u8?aws.manifestfilter=audio_language:fr");
        // The ac3 group has no French: its only variant goes, and the group with it.
        assert_eq!(
            uris(&t),
            [
                "v1080/index.m3u8",
                "v720hevc/index.m3u8",
                "v360/index.m3u8",
                "audio_en/index.m3u8"
            ]
        );
        assert!(
            t.contains("LANGUAGE=\"fr\"")
                && !t.contains("LANGUAGE=\"en\",NAME=\"English\",DEFAULT"),
            "{t}"
        );
        assert!(!t.contains("GROUP-ID=\"ac3\""), "{t}");
        assert!(
            t.contains("#EXT-X-INDEPENDENT-SEGMENTS\n## hand-made"),
            "other lines kept verbatim: {t}"
        );

        let (_, t) = groups("/out/v1/news/hls/index.m3u8?aws.manifestfilter=video_codec:h265");
        assert_eq!(uris(&t), ["v720hevc/index.m3u8", "audio_en/index.m3u8"]);
        assert!(
            t.contains("GROUP-ID=\"subs\"") && !t.contains("GROUP-ID=\"ac3\""),
            "{t}"
        );

        let (_, t) = groups("/out/v1/news/hls/index.m3u8?aws.manifestfilter=audio_codec:ac-3");
        assert_eq!(uris(&t), ["v540/index.m3u8"], "{t}");
        assert!(
            !t.contains("GROUP-ID=\"subs\"") && !t.contains("GROUP-ID=\"aac\""),
            "{t}"
        );

        let (_, t) = groups(
            "/out/v1/news/hls/index.m3u8?aws.manifestfilter=subtitle_language:es;video_bitrate:1000000-6000000;video_framerate:24-30",
        );
        // v540 has no subtitles group, so a subtitle filter does not judge it.
        assert_eq!(
            uris(&t),
            ["v1080/index.m3u8", "v540/index.m3u8", "audio_en/index.m3u8"],
            "{t}"
        );
        assert!(
            t.contains("LANGUAGE=\"es\"") && !t.contains("NAME=\"English\",URI=\"subs_en"),
            "{t}"
        );

        let (_, t) = groups("/out/v1/news/hls/index.m3u8?aws.manifestfilter=audio_channels:6-8");
        assert_eq!(uris(&t), ["v540/index.m3u8"], "{t}");

        let (_, t) = groups("/out/v1/news/sorted/index.m3u8?start=1795617331");
        assert_eq!(
            uris(&t),
            [
                "audio_en/index.m3u8?start=1795617331",
                "v360/index.m3u8?start=1795617331",
                "v540/index.m3u8?start=1795617331"
            ],
            "{t}"
        );
        assert!(
            t.contains("URI=\"audio_fr/index.m3u8?start=1795617331\""),
            "{t}"
        );

        let (s, _) = groups("/out/v1/news/hls/index.m3u8?aws.manifestfilter=audio_language:dahlia");
        assert_eq!(s, 400, "every audio group empty: nothing left");
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn live_window_and_pdt_interval() {
        let f = fetch("/out/v1/news/hls/stream_0/index.m3u8", &[]);
        // Only the window is asked of the store (4 s, no delay: a query that never changes).
        assert_eq!(
            f.path,
            "/store/v1/news/stream_0/index.m3u8?window=4000&delay=0&rotation=0"
        );
        let r = answer(&f.next, 200, &[], STORE_MEDIA.as_bytes(), T0 + 10_000);
        assert_eq!(r.get("cache-control"), Some("max-age=1"));
        let t = text(&r);
        assert_eq!(uris(&t), ["2.ts", "3.ts"]);
        assert!(t.contains("#EXT-X-MEDIA-SEQUENCE:2\n"), "{t}");
        assert!(!t.contains("PROGRAM-DATE-TIME"), "interval 0: no PDT: {t}");
        assert!(!t.contains("ENDLIST") && !t.contains("PLAYLIST-TYPE"));

        let t = media("/out/v1/news/pdt/stream_0/index.m3u8", &[], T0 + 10_000);
        assert_eq!(
            t.matches("#EXT-X-PROGRAM-DATE-TIME:").count(),
            2,
            "t0 and t0+4 s: {t}"
        );
        assert!(
            t.contains(
                "#EXT-X-PROGRAM-DATE-TIME:2026-11-25T14:35:31.666Z\n#EXTINF:2.000000,\n0.ts"
            ),
            "{t}"
        );
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn time_shift_vod_and_event() {
        let start = (T0 + 2_000) / 1000;
        let end = (T0 + 7_000) / 1000;
        let f = fetch(
            &format!("/out/v1/news/hls/stream_0/index.m3u8?start={start}&end={end}"),
            &[],
        );
        let t = text(&answer(
            &f.next,
            200,
            &[],
            STORE_MEDIA.as_bytes(),
            T0 + 60_000,
        ));
        assert_eq!(uris(&t), ["1.ts", "2.ts"], "{t}");
        assert!(
            t.contains("#EXT-X-PLAYLIST-TYPE:VOD\n") && t.ends_with("#EXT-X-ENDLIST\n"),
            "{t}"
        );
        let f = fetch(
            &format!(
                "/out/v1/news/hls/stream_0/index.m3u8?start={start}&end={}",
                end + 3600
            ),
            &[],
        );
        let t = text(&answer(
            &f.next,
            200,
            &[],
            STORE_MEDIA.as_bytes(),
            T0 + 60_000,
        ));
        assert!(
            t.contains("#EXT-X-PLAYLIST-TYPE:EVENT\n") && !t.contains("ENDLIST"),
            "{t}"
        );
        assert_eq!(uris(&t), ["1.ts", "2.ts", "3.ts"]);
        let f = fetch(
            "/out/v1/news/hls/stream_0/index.m3u8?start=1000000000&end=1000000600",
            &[],
        );
        let r = answer(&f.next, 200, &[], STORE_MEDIA.as_bytes(), T0 + 60_000);
        assert_eq!(r.status, 400);
        assert!(text(&r).contains("startover window"), "{}", text(&r));
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn constant_iv_is_announced() {
        let t = media("/out/v1/news/fixed/stream_0/index.m3u8", &[], T0 + 10_000);
        assert_eq!(
            t.matches("#EXT-X-KEY").count(),
            1,
            "no rotation: one key: {t}"
        );
        assert!(
            t.contains("URI=\"../key/0?token=")
                && t.contains(",IV=0x000102030405060708090A0B0C0D0E0F"),
            "{t}"
        );
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn cbcs_cmaf_playlists_carry_sample_aes_keys_and_an_init_per_key() {
        let f = fetch("/out/v1/news/cmaf-cbcs/stream_0/index.m3u8", &[]);
        let t = text(&answer(
            &f.next,
            200,
            &[],
            STORE_MEDIA.as_bytes(),
            T0 + 8_000,
        ));
        let first = crate::key_periods::key_period(T0, 4);
        for p in first..=first + 2 {
            assert!(
                t.contains(&format!(
                    "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"../key/{p}?token="
                )),
                "{t}"
            );
        }
        assert!(
            t.contains(r#"KEYFORMAT="identity",KEYFORMATVERSIONS="1""#),
            "{t}"
        );
        // A new initialization segment (its tenc names the KID) with each key.
        let maps: Vec<&str> = t.lines().filter(|l| l.starts_with("#EXT-X-MAP")).collect();
        assert_eq!(
            maps,
            [
                r#"#EXT-X-MAP:URI="init-ts0.mp4""#,
                r#"#EXT-X-MAP:URI="init-ts1.mp4""#,
                r#"#EXT-X-MAP:URI="init-ts3.mp4""#
            ],
            "{t}"
        );
        // The key itself, as for AES-128.
        let path = format!("/out/v1/news/cmaf-cbcs/key/{first}");
        let token =
            crypto::token("tok-0123456789abcdef", &path, crypto::token_expiry(T0, 300)).unwrap();
        match plan_at(&format!("{path}?token={token}"), &[], T0) {
            Plan::Respond(r) => assert_eq!(
                r.body,
                crypto::key_for(&settings().channels["news"]["cmaf-cbcs"], first).unwrap()
            ),
            other => panic!("{other:?}"),
        }
        // fMP4 ingest is repackaged and encrypted like MPEG-TS ingest: `{sequence}.mp4` and an
        // initialization segment built per run, never the encoder's clear ones.
        let f = fetch("/out/v1/news/cmaf-cbcs/stream_0/index.m3u8", &[]);
        let r = answer(&f.next, 200, &[], STORE_FMP4.as_bytes(), T_FMP4 + 8_000);
        assert_eq!(r.status, 200, "{}", text(&r));
        let t = text(&r);
        assert!(uris(&t).iter().all(|u| u.ends_with(".mp4")), "{t}");
        assert!(t.contains("#EXT-X-MAP:URI=\"init-ts"), "{t}");
        assert!(t.contains("#EXT-X-KEY:METHOD=SAMPLE-AES,"), "{t}");
        // Its clear fMP4 segments are not served from it.
        let f = fetch("/out/v1/news/cmaf-cbcs/stream_0/3.m4s", &[]);
        let r = answer(
            &f.next,
            200,
            &[("content-type", "video/mp4")],
            b"moofmdat",
            T_FMP4,
        );
        assert_eq!(r.status, 404, "{}", text(&r));
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn dash_manifests_state_program_date_times_and_every_variant() {
        let t = mpd("dash", T0 + 8_000);
        assert!(
            t.contains(r#"type="dynamic" availabilityStartTime="1970-01-01T00:00:00Z""#),
            "{t}"
        );
        assert!(t.contains(r#"timeShiftBufferDepth="PT60S""#), "{t}");
        assert!(
            t.contains("<UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:direct:2014\""),
            "{t}"
        );
        // One period (no discontinuity, no keys) from the epoch; four 2 s segments at their
        // program date times, in 90 kHz.
        assert_eq!(t.matches("<Period ").count(), 1, "{t}");
        assert!(t.contains(r#"<Period id="0-0" start="PT0S">"#), "{t}");
        let s = format!(r#"<S t="{}" d="180000" r="3"/>"#, T0 * 90);
        assert_eq!(t.matches(&s).count(), 2, "video and audio timelines: {t}");
        assert!(
            t.contains(&format!(
                r#"presentationTimeOffset="0" initialization="$RepresentationID$/init-v{}.mp4" media="$RepresentationID$/v$Time$.mp4""#,
                T0 * 90
            )),
            "{t}"
        );
        // Both variants' video, with the multivariant playlist's codecs and sizes; the audio of
        // the lowest-bandwidth variant.
        assert!(t.contains(r#"<Representation id="stream_0" bandwidth="730400" codecs="avc1.42c014" width="320" height="240""#), "{t}");
        assert!(
            t.contains(r#"<Representation id="stream_1" bandwidth="290400" codecs="avc1.42c00d""#),
            "{t}"
        );
        assert!(
            t.contains(&format!(
                r#"initialization="stream_1/init-a{}.mp4" media="stream_1/a$Time$.mp4""#,
                T0 * 90
            )),
            "{t}"
        );
        assert!(!t.contains("ContentProtection"), "{t}");
        // The MPD for `query` at `now`, made from the recorded store playlist.
        let mpd = |query: &str, now: i64| {
            let Plan::Fetch(m) =
                after_multivariant(&format!("/out/v1/news/dash/index.mpd?{query}"), &[], now)
            else {
                panic!("{query}: no store fetch")
            };
            text(&answer(&m.next, 200, &[], STORE_MEDIA.as_bytes(), now))
        };
        // A past range is a static manifest starting at 0.
        let t = mpd(
            "start=2026-11-25T14:35:31Z&end=2026-11-25T14:35:40Z",
            T0 + 60_000,
        );
        assert!(
            t.contains(r#"type="static" mediaPresentationDuration="PT8S""#),
            "{t}"
        );
        assert!(
            t.contains(&format!(r#"presentationTimeOffset="{}""#, T0 * 90)),
            "{t}"
        );

        // A range without `end` (from `start` to live) is a dynamic manifest (MediaPackage's
        // startover: the player follows the live edge) whose time-shift buffer reaches back to
        // `start`, the live window at least.
        let t = mpd("start=2026-11-25T14:35:31Z", T0 + 9_000);
        assert!(t.contains(r#"type="dynamic""#), "{t}");
        assert!(t.contains(r#"timeShiftBufferDepth="PT60S""#), "{t}");
        let t = mpd("start=2026-11-25T14:35:31Z", T0 + 7_200_000);
        assert!(t.contains(r#"type="dynamic""#), "{t}");
        assert!(t.contains(r#"timeShiftBufferDepth="PT7200"#), "{t}");
        assert!(!t.contains("mediaPresentationDuration"), "{t}");

        // Each endpoint answers in its own format only.
        assert_eq!(status("/out/v1/news/dash/index.m3u8", &[]).0, 404);
        assert_eq!(status("/out/v1/news/dash/stream_0/1.ts", &[]).0, 404);
        assert_eq!(status("/out/v1/news/hls/index.mpd", &[]).0, 404);
        // Segments: one track of the store's MPEG-TS segment.
        // Segments: one track of the store's MPEG-TS segment at that time (renditions may number
        // their segments differently in the store; they share times).
        let f = fetch(&format!("/out/v1/news/dash/stream_1/a{}.mp4", T0 * 90), &[]);
        assert_eq!(f.path, format!("/store/v1/news/stream_1/at/{T0}.media"));
        assert_eq!(answer(&f.next, 200, &[], b"not ts", T0).status, 502);
        let f = fetch(
            &format!("/out/v1/news/dash/stream_0/init-v{}.mp4", T0 * 90),
            &[],
        );
        assert_eq!(f.path, format!("/store/v1/news/stream_0/at/{T0}.media"));
        assert_eq!(status("/out/v1/news/dash/stream_0/v1001.mp4", &[]).0, 404);
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn dash_starts_a_period_at_a_discontinuity_and_applies_the_manifest_filter() {
        // An encoder restart before segment 2: a discontinuity, 0.5 s later than contiguous.
        let store = STORE_MEDIA
            .replace(
                "#EXT-X-PROGRAM-DATE-TIME:2026-11-25T14:35:35.666Z",
                "#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T14:35:36.166Z",
            )
            .replace("14:35:37.666Z", "14:35:38.166Z");
        let Plan::Fetch(m) = after_multivariant(
            "/out/v1/news/dash/index.mpd?aws.manifestfilter=video_height:0-200",
            &[],
            T0 + 9_000,
        ) else {
            panic!()
        };
        // The filter leaves stream_1 (160x120) only: its playlist gives the timeline.
        assert_eq!(
            m.path,
            "/store/v1/news/stream_1/index.m3u8?window=60000&delay=0&rotation=0"
        );
        let t = text(&answer(&m.next, 200, &[], store.as_bytes(), T0 + 9_000));
        assert!(!t.contains(r#"id="stream_0""#), "{t}");
        assert!(t.contains(r#"<Representation id="stream_1""#), "{t}");
        // Two periods: the second starts at the discontinuity, its init and timeline from
        // that segment's program date time.
        assert_eq!(t.matches("<Period ").count(), 2, "{t}");
        let restart = T0 + 4_500;
        assert!(
            t.contains(&format!(
                r#"<Period id="1-0" start="{}">"#,
                super::dash::duration(restart)
            )),
            "{t}"
        );
        assert!(
            t.contains(&format!(
                r#"initialization="$RepresentationID$/init-v{}.mp4""#,
                restart * 90
            )),
            "{t}"
        );
        assert!(
            t.contains(&format!(r#"<S t="{}" d="180000" r="1"/>"#, restart * 90)),
            "{t}"
        );
        assert!(
            t.contains(&format!(r#"<S t="{}" d="180000" r="1"/>"#, T0 * 90)),
            "{t}"
        );
        // A filter that leaves nothing is the request's fault.
        let r = match after_multivariant(
            "/out/v1/news/dash/index.mpd?aws.manifestfilter=video_height:1000-2000",
            &[],
            T0,
        ) {
            Plan::Respond(r) => r,
            other => panic!("{other:?}"),
        };
        assert_eq!(r.status, 400, "{}", text(&r));
    }

    /// A store view (the window only) carries what the filter would have found in the whole
    /// history: the run start names the cmaf initialization segment, the history start the
    /// startover window's beginning.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_store_view_names_what_lies_before_it() {
        let view = format!(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:10\n\
#EXT-X-DISCONTINUITY-SEQUENCE:0\n#EXT-X-EDGEPACK-VIEW:HISTORY-START={T0},RUN-START=4,RUN-START-DATE={}\n\
#EXT-X-PROGRAM-DATE-TIME:2026-11-25T14:35:51.666Z\n#EXTINF:2.000,\n10.ts\n\
#EXT-X-PROGRAM-DATE-TIME:2026-11-25T14:35:53.666Z\n#EXTINF:2.000,\n11.ts\n",
            T0 + 8_000
        );
        let now = T0 + 24_000;
        let f = fetch("/out/v1/news/cmaf/stream_0/index.m3u8", &[]);
        let t = text(&answer(&f.next, 200, &[], view.as_bytes(), now));
        assert!(t.contains("#EXT-X-MAP:URI=\"init-ts4.mp4\"\n"), "{t}");
        assert_eq!(uris(&t), ["10.mp4", "11.mp4"]);
        assert!(
            !t.contains("EDGEPACK"),
            "the view's tag is the store's, not the viewer's: {t}"
        );
        // A range before the history: the history's start is named, from the view.
        let start = T0 - 60_000;
        let f = fetch(
            &format!(
                "/out/v1/news/hls/stream_0/index.m3u8?start={}&end={}",
                start / 1000,
                (start + 10_000) / 1000
            ),
            &[],
        );
        let r = answer(&f.next, 200, &[], view.as_bytes(), now);
        assert_eq!(r.status, 400, "{}", text(&r));
        assert!(text(&r).contains("2026-11-25T14:35:31.666"), "{}", text(&r));
    }

    /// The store's multivariant playlist with alternative audio, as the store states it: each
    /// `EXT-X-MEDIA` it holds with its measured bit rate.
    fn groups_as_stored() -> String {
        GROUPS
            .replace(
                "URI=\"audio_en/index.m3u8\"",
                "URI=\"audio_en/index.m3u8\",X-EDGEPACK-BANDWIDTH=70312",
            )
            .replace(
                "URI=\"audio_fr/index.m3u8\"",
                "URI=\"audio_fr/index.m3u8\",X-EDGEPACK-BANDWIDTH=69001",
            )
    }

    /// The MPD of `path` over `multivariant` and the recorded store playlist.
    fn mpd_over(path: &str, multivariant: &str) -> String {
        let now = T0 + 8_000;
        let f = fetch(path, &[]);
        let next = next_plan(&f.next, 200, &[], multivariant.as_bytes(), now);
        let Plan::Fetch(media) = next else {
            panic!("{next:?}")
        };
        text(&answer(&media.next, 200, &[], STORE_MEDIA.as_bytes(), now))
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn dash_gives_each_alternative_audio_rendition_its_adaptation_set() {
        let stored = groups_as_stored();
        let t = mpd_over("/out/v1/news/dash/index.mpd", &stored);
        // aac: English (main) and French; ac3: English 5.1 — each its own set, from its own
        // rendition, with the measured bit rate where the store states one.
        assert_eq!(t.matches("contentType=\"audio\"").count(), 3, "{t}");
        assert!(t.contains("contentType=\"audio\" mimeType=\"audio/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\" lang=\"en\">\n<Label>English</Label>\n<Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"main\"/>"), "{t}");
        assert!(t.contains("lang=\"fr\">\n<Label>Français</Label>\n<Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"alternate\"/>"), "{t}");
        assert!(
            t.contains(
                "<Representation id=\"audio_en\" bandwidth=\"70312\" codecs=\"mp4a.40.2\"/>"
            ),
            "{t}"
        );
        assert!(
            t.contains(
                "<Representation id=\"audio_fr\" bandwidth=\"69001\" codecs=\"mp4a.40.2\"/>"
            ),
            "{t}"
        );
        assert!(
            t.contains("<Representation id=\"audio_en51\" bandwidth=\"128000\" codecs=\"ac-3\"/>"),
            "{t}"
        );
        assert!(t.contains("media=\"audio_fr/a$Time$.mp4\""), "{t}");
        // audio_language narrows them, as it narrows the HLS groups.
        let t = mpd_over(
            "/out/v1/news/dash/index.mpd?aws.manifestfilter=audio_language:fr",
            &stored,
        );
        assert_eq!(t.matches("contentType=\"audio\"").count(), 1, "{t}");
        assert!(t.contains("lang=\"fr\""), "{t}");
        // A language no rendition has leaves no variant: 400, as on the HLS endpoint.
        for path in [
            "/out/v1/news/dash/index.mpd?aws.manifestfilter=audio_language:de",
            "/out/v1/news/hls/index.m3u8?aws.manifestfilter=audio_language:de",
        ] {
            let f = fetch(path, &[]);
            let r = answer(&f.next, 200, &[], stored.as_bytes(), T0);
            assert_eq!(r.status, 400, "{path}: {}", text(&r));
            assert!(text(&r).contains("leaves no stream"), "{}", text(&r));
        }
        // HLS viewers never see the store's attribute.
        let f = fetch("/out/v1/news/hls/index.m3u8", &[]);
        let hls = text(&answer(&f.next, 200, &[], stored.as_bytes(), T0));
        assert!(!hls.contains("X-EDGEPACK"), "{hls}");
        assert!(
            hls.contains(
                "NAME=\"Français\",AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio_fr/index.m3u8\"\n"
            ),
            "{hls}"
        );
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn dash_gives_each_subtitle_rendition_a_text_adaptation_set() {
        let stored = groups_as_stored();
        let t = mpd_over("/out/v1/news/dash/index.mpd", &stored);
        assert_eq!(t.matches("contentType=\"text\"").count(), 2, "{t}");
        assert!(t.contains("contentType=\"text\" mimeType=\"application/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\" lang=\"en\">\n<Label>English</Label>\n<Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"subtitle\"/>"), "{t}");
        assert!(t.contains("media=\"subs_es/t$Time$.mp4\""), "{t}");
        assert!(
            t.contains("<Representation id=\"subs_es\" bandwidth=\"1000\" codecs=\"wvtt\"/>"),
            "{t}"
        );
        // The text sets share the video's timeline.
        let timeline = |set: &str| {
            let at = t.find(set).unwrap();
            let tl = &t[at..];
            tl[tl.find("<SegmentTimeline>").unwrap()..tl.find("</SegmentTimeline>").unwrap()]
                .to_owned()
        };
        assert_eq!(timeline("contentType=\"video\""), timeline("lang=\"es\""));
        // subtitle_language narrows them.
        let t = mpd_over(
            "/out/v1/news/dash/index.mpd?aws.manifestfilter=subtitle_language:es",
            &stored,
        );
        assert_eq!(t.matches("contentType=\"text\"").count(), 1, "{t}");
        assert!(t.contains("subs_es/t$Time$.mp4"), "{t}");
    }
}
