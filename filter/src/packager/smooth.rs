//! Smooth Streaming answers, step by step.
//!
//! The manifest: the store's multivariant playlist (the variants), then the first variant's
//! media playlist (the timeline), then — only for tracks this VM has not seen in this run — a
//! segment of each track, for its `CodecPrivateData` (SPS/PPS, AudioSpecificConfig). What a
//! segment says is kept per VM by the store path it came from (segments never change), so a
//! live manifest costs two playlist fetches, as a DASH manifest does.
//!
//! A fragment: the multivariant playlist says which variant the URL's bitrate names (the
//! playlist cache answers it), then the store's segment at the URL's time is repackaged.

use std::cell::RefCell;
use std::collections::HashMap;

use edgepack_store_api::api as store;

use super::playlists::{Offer, manifest_response, offer, time_shift_buffer_ms, window};
use super::{
    DashVariants, Fetch, Job, JobKind, Plan, Settings, Step, StoreAnswer, endpoint, store_error,
};
use crate::cmaf;
use crate::config::Endpoint;
use crate::endpoint_errors;
use crate::error::FilterError;
use crate::http_policy::cors;
use crate::key_periods;
use crate::media_playlist;
use crate::mss::{self, TrackInfo};
use crate::multivariant::{
    self, AudioRendition, AudioSource, SubtitleRendition, Variant, audio_sources,
};
use crate::playlist_window::PlaylistType;
use crate::query::TimeShift;
use crate::response::Response;
use crate::route::{Route, TrackKind};

/// Step 2 of a manifest: the variants are known; the first one's playlist is asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    pub channel: String,
    pub endpoint: String,
    pub variants: Vec<Variant>,
    /// The variants' alternative audio renditions (none: their muxed audio).
    pub audio: Vec<AudioRendition>,
    /// Their subtitle renditions: a TTML text stream each.
    pub subtitles: Vec<SubtitleRendition>,
    pub time: TimeShift,
}

/// A track whose `CodecPrivateData` is read from a segment: the segment's store path (also
/// the key it is kept under), its rendition and the track. For fMP4 ingest the segment names
/// its initialization segment, which is read instead: `path` is then the init's and `segment`
/// the segment's path, under which the description is kept too.
#[derive(Debug, Clone, PartialEq)]
pub struct CodecSource {
    pub path: String,
    pub rendition: String,
    pub track: TrackKind,
    pub segment: Option<String>,
}

/// A track described.
#[derive(Debug, Clone, PartialEq)]
pub struct Described {
    pub rendition: String,
    pub info: TrackInfo,
}

/// Step 3 and on: the timeline is known; segments are read for the tracks left.
#[derive(Debug, Clone, PartialEq)]
pub struct Codecs {
    pub timeline: Timeline,
    /// The first variant's media playlist, as the store sent it.
    pub playlist: Vec<u8>,
    /// Tracks still to read, the one being fetched first.
    pub pending: Vec<CodecSource>,
    /// The tracks described so far.
    pub known: Vec<Described>,
}

/// A fragment request, before its rendition is known.
#[derive(Debug, Clone, PartialEq)]
pub struct FragmentStart {
    pub channel: String,
    pub endpoint: String,
    pub bitrate: u64,
    pub track: TrackKind,
    /// `audio_{rendition}`: the alternative audio rendition.
    pub rendition: Option<String>,
    pub time: u64,
}

/// Tracks described per VM, by the store path of the segment read.
const KEPT_TRACKS: usize = 256;

thread_local! {
    static TRACKS: RefCell<HashMap<String, TrackInfo>> = RefCell::new(HashMap::new());
}

/// The kept description of the `track` of the segment at `path`.
fn kept_track(path: &str, track: TrackKind) -> Option<TrackInfo> {
    TRACKS
        .with(|t| t.borrow().get(path).cloned())
        .filter(|i| i.kind() == track)
}

fn keep_track(path: &str, info: &TrackInfo) {
    TRACKS.with(|t| {
        let mut t = t.borrow_mut();
        if t.len() >= KEPT_TRACKS {
            t.clear();
        }
        t.insert(path.to_owned(), info.clone());
    });
}

fn respond_or_fetch(r: Result<Plan, FilterError>) -> Plan {
    match r {
        Ok(Plan::Respond(resp)) => Plan::Respond(cors(resp)),
        Ok(p) => p,
        Err(e) => Plan::Respond(cors(e.to_response())),
    }
}

/// Step 1 → 2: the variants the endpoint offers; the first one's playlist is the timeline.
pub(super) fn on_variants(
    settings: &Settings,
    first: &DashVariants,
    answer: &StoreAnswer<'_>,
    now_ms: i64,
) -> Plan {
    respond_or_fetch((|| {
        let Offer {
            variants,
            audio,
            subtitles,
            timeline_path,
        } = offer(settings, first, answer, now_ms)?;
        Ok(Plan::Fetch(Box::new(Fetch {
            path: timeline_path,
            next: Step::SmoothTimeline(Box::new(Timeline {
                channel: first.channel.clone(),
                endpoint: first.endpoint.clone(),
                variants,
                audio,
                subtitles,
                time: first.time.clone(),
            })),
        })))
    })())
}

/// An audio stream of the manifest: where its fragments come from and what it is called.
struct Audio<'a> {
    rendition: &'a str,
    /// An alternative audio rendition (`audio_{rendition}`), not the variants' muxed `audio`.
    alternative: bool,
    language: Option<&'a str>,
    bitrate: u64,
}

impl Audio<'_> {
    fn name(&self) -> String {
        crate::route::smooth_stream_name(
            TrackKind::Audio,
            self.alternative.then_some(self.rendition),
        )
    }
}

/// The variants of the manifest's video stream, and its audio streams: each alternative audio
/// rendition, else the muxed audio of the lowest-bandwidth variant.
fn streams<'a>(
    variants: &'a [Variant],
    alternatives: &'a [AudioRendition],
) -> (Vec<&'a Variant>, Vec<Audio<'a>>) {
    let video = variants
        .iter()
        .filter(|v| v.video_codec.is_some())
        .collect();
    let audio = audio_sources(variants, alternatives)
        .into_iter()
        .map(|source| match source {
            AudioSource::Alternative(a) => Audio {
                rendition: &a.rendition,
                alternative: true,
                language: a.language.as_deref(),
                bitrate: a.bandwidth.unwrap_or(mss::AUDIO_BITRATE),
            },
            AudioSource::Muxed(v) => Audio {
                rendition: &v.rendition,
                alternative: false,
                language: None,
                bitrate: mss::AUDIO_BITRATE,
            },
        })
        .collect();
    (video, audio)
}

/// Refuses codecs Smooth Streaming cannot carry here (H.264 and AAC only), naming the rendition
/// (a variant's, or an alternative audio rendition's) and its codec.
fn check_codecs(
    ep: &Endpoint,
    variants: &[Variant],
    audio: &[AudioRendition],
) -> Result<(), FilterError> {
    let stated = variants
        .iter()
        .flat_map(|v| {
            [&v.video_codec, &v.audio_codec]
                .into_iter()
                .flatten()
                .map(move |c| (&v.rendition, c))
        })
        .chain(
            audio
                .iter()
                .filter_map(|a| Some((&a.rendition, a.codec.as_ref()?))),
        );
    for (rendition, codec) in stated {
        let ok = ["avc1.", "avc3.", "mp4a.40."]
            .iter()
            .any(|p| codec.starts_with(p));
        if !ok {
            return Err(FilterError::NotImplemented(format!(
                "endpoint '{}' is Smooth Streaming, which edgepack writes for H.264 (avc1) and AAC (mp4a.40) only; rendition '{rendition}' is {codec}",
                ep.name
            )));
        }
    }
    Ok(())
}

/// Step 2 → the manifest, or step 3 for tracks not described yet.
pub(super) fn on_timeline(
    settings: &Settings,
    tl: &Timeline,
    answer: &StoreAnswer<'_>,
    now_ms: i64,
) -> Plan {
    respond_or_fetch((|| {
        if answer.status != 200 {
            return Err(store_error(answer));
        }
        let ep = endpoint(settings, &tl.channel, &tl.endpoint)?;
        check_codecs(ep, &tl.variants, &tl.audio)?;
        let pl = media_playlist::parse(answer.body)?;
        let (range, kind, spec) = window(ep, &pl, &tl.time, now_ms)?;
        let windowed = Windowed {
            range: range.clone(),
            kind,
            spec,
        };
        // The tracks are described from the first segment of the newest run in the window (the
        // codec configuration may change at a discontinuity): the same segment for as long as
        // that run stays in the store.
        let Some(newest) = pl.segments.get(range).and_then(|s| s.last()) else {
            return write_manifest(ep, tl, &pl, windowed, &[], now_ms).map(Plan::Respond);
        };
        let run = key_periods::run_start(&pl, ep, newest);
        let at = run.pdt_ms.or(newest.pdt_ms).unwrap_or(0);
        let (video, audio) = streams(&tl.variants, &tl.audio);
        let sources = video
            .iter()
            .map(|v| (v.rendition.as_str(), TrackKind::Video))
            .chain(audio.iter().map(|a| (a.rendition, TrackKind::Audio)));
        let mut known = Vec::new();
        let mut pending = Vec::new();
        for (rendition, track) in sources {
            let path = store::segment_at_path(&tl.channel, rendition, at, store::ANY_EXT);
            let rendition = rendition.to_owned();
            match kept_track(&path, track) {
                Some(info) => known.push(Described { rendition, info }),
                None => pending.push(CodecSource {
                    path,
                    rendition,
                    track,
                    segment: None,
                }),
            }
        }
        if pending.is_empty() {
            return write_manifest(ep, tl, &pl, windowed, &known, now_ms).map(Plan::Respond);
        }
        Ok(Plan::Fetch(Box::new(Fetch {
            path: pending[0].path.clone(),
            next: Step::SmoothCodecs(Box::new(Codecs {
                timeline: tl.clone(),
                playlist: answer.body.to_vec(),
                pending,
                known,
            })),
        })))
    })())
}

/// Step 3 and on: a track's segment arrived; the next one, or the manifest.
pub(super) fn on_codecs(
    settings: &Settings,
    c: &Codecs,
    answer: &StoreAnswer<'_>,
    now_ms: i64,
) -> Plan {
    respond_or_fetch((|| {
        let ep = endpoint(settings, &c.timeline.channel, &c.timeline.endpoint)?;
        let Some((source, rest)) = c.pending.split_first() else {
            return manifest(ep, &c.timeline, &c.playlist, &c.known, now_ms).map(Plan::Respond);
        };
        if answer.status != 200 {
            return Err(store_error(answer));
        }
        let (select, _) = super::tracks::one_track(source.track);
        let tracks = if source.segment.is_some() {
            // fMP4: the initialization segment describes the tracks.
            cmaf::fmp4::described(answer.body, select)
        } else if super::tracks::is_fmp4(answer) {
            let id = (answer.header)(store::INIT_HEADER).ok_or_else(|| {
                FilterError::BadGateway(format!(
                    "the store's fMP4 segment {} names no initialization segment ({})",
                    source.path,
                    store::INIT_HEADER
                ))
            })?;
            let init = CodecSource {
                path: store::init_path(&c.timeline.channel, &source.rendition, id.trim()),
                segment: Some(source.path.clone()),
                ..source.clone()
            };
            if let Some(info) = kept_track(&init.path, source.track) {
                keep_track(&source.path, &info);
                return next_codec(ep, c, rest, described(c, source, info), now_ms);
            }
            let mut pending = vec![init];
            pending.extend_from_slice(rest);
            return Ok(Plan::Fetch(Box::new(Fetch {
                path: pending[0].path.clone(),
                next: Step::SmoothCodecs(Box::new(Codecs {
                    pending,
                    ..(*c).clone()
                })),
            })));
        } else {
            cmaf::tracks_and_runs(answer.body, None, None, select).map(|(t, _)| t)
        }
        .map_err(|e| super::tracks::repackaging_error(&source.path, e))?;
        let info = tracks.first().and_then(TrackInfo::of).ok_or_else(|| {
            FilterError::BadGateway(format!(
                "the store's segment {} has no {} track",
                source.path,
                source.track.smooth_name()
            ))
        })?;
        keep_track(&source.path, &info);
        if let Some(segment) = &source.segment {
            keep_track(segment, &info);
        }
        next_codec(ep, c, rest, described(c, source, info), now_ms)
    })())
}

/// The tracks described so far, and `info` of `source`'s.
fn described(c: &Codecs, source: &CodecSource, info: TrackInfo) -> Vec<Described> {
    let mut known = c.known.clone();
    known.push(Described {
        rendition: source.rendition.clone(),
        info,
    });
    known
}

/// The next track's fetch, or the manifest when every track is described.
fn next_codec(
    ep: &Endpoint,
    c: &Codecs,
    rest: &[CodecSource],
    known: Vec<Described>,
    now_ms: i64,
) -> Result<Plan, FilterError> {
    match rest.first() {
        None => manifest(ep, &c.timeline, &c.playlist, &known, now_ms).map(Plan::Respond),
        Some(next) => Ok(Plan::Fetch(Box::new(Fetch {
            path: next.path.clone(),
            next: Step::SmoothCodecs(Box::new(Codecs {
                timeline: c.timeline.clone(),
                playlist: c.playlist.clone(),
                pending: rest.to_vec(),
                known,
            })),
        }))),
    }
}

/// Writes the manifest once every track is described.
fn manifest(
    ep: &Endpoint,
    tl: &Timeline,
    playlist: &[u8],
    known: &[Described],
    now_ms: i64,
) -> Result<Response, FilterError> {
    let pl = media_playlist::parse(playlist)?;
    let (range, kind, spec) = window(ep, &pl, &tl.time, now_ms)?;
    write_manifest(ep, tl, &pl, Windowed { range, kind, spec }, known, now_ms)
}

/// The window of the timeline a manifest shows.
struct Windowed {
    range: std::ops::Range<usize>,
    kind: PlaylistType,
    spec: crate::playlist_window::WindowSpec,
}

/// [`manifest`] from the parsed timeline and its window.
fn write_manifest(
    ep: &Endpoint,
    tl: &Timeline,
    pl: &media_playlist::MediaPlaylist<'_>,
    Windowed { range, kind, spec }: Windowed,
    known: &[Described],
    now_ms: i64,
) -> Result<Response, FilterError> {
    if let Some(refused) = endpoint_errors::check(&ep.errors, pl, &range, kind, now_ms) {
        return Ok(refused);
    }
    let segments = pl.segments.get(range).unwrap_or(&[]);
    let (video, audio) = streams(&tl.variants, &tl.audio);
    let bitrates = mss::bitrates(video.iter().copied());
    let info = |rendition: &str, track: TrackKind| {
        known
            .iter()
            .find(|d| d.rendition == rendition && d.info.kind() == track)
            .map(|d| &d.info)
    };
    let mut levels = Vec::with_capacity(video.len());
    for (v, bitrate) in video.iter().zip(&bitrates) {
        if let Some(i) = info(&v.rendition, TrackKind::Video) {
            levels.push(mss::VideoLevel {
                variant: v,
                bitrate: *bitrate,
                info: i,
            });
        }
    }
    let text = mss::write(&mss::Manifest {
        video: levels,
        audio: audio
            .iter()
            .filter_map(|a| {
                Some(mss::AudioStream {
                    name: a.name(),
                    language: a.language,
                    bitrate: a.bitrate,
                    info: info(a.rendition, TrackKind::Audio)?,
                })
            })
            .collect(),
        text: tl
            .subtitles
            .iter()
            .map(|t| mss::TextStream {
                name: crate::route::smooth_stream_name(TrackKind::Text, Some(&t.rendition)),
                language: t.language.as_deref(),
            })
            .collect(),
        segments,
        live: kind != PlaylistType::Vod,
        window_ms: time_shift_buffer_ms(kind, &spec, now_ms),
        // One key for the whole presentation (rotation is refused on mss endpoints).
        protection: ep
            .common_encryption()
            .map(|_| mss::protection_header(&crate::crypto::kid_for(ep, 0))),
    })?;
    Ok(manifest_response("application/vnd.ms-sstr+xml", text, pl))
}

/// The first fetch of a fragment: the multivariant playlist, to find the bitrate's variant.
pub(super) fn fragment_start(
    r: &Route,
    bitrate: u64,
    track: TrackKind,
    rendition: Option<String>,
    time: u64,
) -> Result<Fetch, FilterError> {
    if mss::pdt_of(time).is_none() {
        return Err(FilterError::NotFound(format!(
            "no fragment starts at {time}: Smooth Streaming times here are whole milliseconds since 2020-01-01 x 10000, as the manifest lists them"
        )));
    }
    Ok(Fetch {
        path: store::multivariant_path(&r.channel),
        next: Step::SmoothFragmentVariants(FragmentStart {
            channel: r.channel.clone(),
            endpoint: r.endpoint.clone(),
            bitrate,
            track,
            rendition,
            time,
        }),
    })
}

/// The variants arrived: the segment of the bitrate's variant at the fragment's time.
pub(super) fn on_fragment_variants(
    settings: &Settings,
    f: &FragmentStart,
    answer: &StoreAnswer<'_>,
) -> Plan {
    respond_or_fetch((|| {
        if answer.status != 200 {
            return Err(store_error(answer));
        }
        let ep = endpoint(settings, &f.channel, &f.endpoint)?;
        let variants = multivariant::variants(answer.body, ep, None)?;
        let alternatives = multivariant::audio_renditions(answer.body, &variants, None)?;
        check_codecs(ep, &variants, &alternatives)?;
        let (video, audio) = streams(&variants, &alternatives);
        let rendition = match (&f.rendition, f.track) {
            // An alternative audio rendition is named by its stream; its measured bit rate may
            // have moved since the manifest was written, so the URL's is not checked.
            (Some(r), TrackKind::Text) => {
                let subtitles = multivariant::subtitle_renditions(answer.body, &variants, None)?;
                subtitles
                    .iter()
                    .find(|t| &t.rendition == r)
                    .map(|t| t.rendition.clone())
                    .ok_or_else(|| {
                        FilterError::NotFound(format!(
                            "no text stream 'text_{r}'; the manifest lists {}",
                            if subtitles.is_empty() {
                                "none".to_owned()
                            } else {
                                subtitles
                                    .iter()
                                    .map(|t| format!("text_{}", t.rendition))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            }
                        ))
                    })?
            }
            (Some(r), _) => alternatives
                .iter()
                .find(|a| &a.rendition == r)
                .map(|a| a.rendition.clone())
                .ok_or_else(|| {
                    FilterError::NotFound(format!(
                        "no audio stream 'audio_{r}'; the manifest lists {}",
                        audio.iter().map(Audio::name).collect::<Vec<_>>().join(", ")
                    ))
                })?,
            (None, TrackKind::Video) => {
                let bitrates = mss::bitrates(video.iter().copied());
                bitrates
                    .iter()
                    .position(|b| *b == f.bitrate)
                    .and_then(|i| video.get(i))
                    .map(|v| v.rendition.clone())
                    .ok_or_else(|| {
                        FilterError::NotFound(format!(
                            "no video QualityLevel has bitrate {}; the manifest lists {}",
                            f.bitrate,
                            bitrates
                                .iter()
                                .map(u64::to_string)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    })?
            }
            // Routes never name one: Smooth Streaming manifests carry no text stream here.
            (None, TrackKind::Text) => {
                return Err(FilterError::NotFound(
                    "no text stream: this version writes no TTML for Smooth Streaming".into(),
                ));
            }
            (None, TrackKind::Audio) => match audio.first() {
                Some(a) if !a.alternative && f.bitrate == mss::AUDIO_BITRATE => {
                    a.rendition.to_owned()
                }
                _ => {
                    return Err(FilterError::NotFound(format!(
                        "no QualityLevel of stream 'audio' has bitrate {}; the manifest lists {}",
                        f.bitrate,
                        if audio.is_empty() {
                            "no audio".into()
                        } else {
                            audio
                                .iter()
                                .map(|a| format!("{} ({})", a.name(), a.bitrate))
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    )));
                }
            },
        };
        let pdt_ms = mss::pdt_of(f.time).unwrap_or_default();
        Ok(Plan::Fetch(Box::new(Fetch {
            path: store::segment_at_path(&f.channel, &rendition, pdt_ms, store::ANY_EXT),
            next: Step::Answer(Job {
                channel: f.channel.clone(),
                endpoint: f.endpoint.clone(),
                kind: JobKind::SmoothFragment {
                    rendition,
                    track: f.track,
                    time: f.time,
                },
            }),
        })))
    })())
}

#[cfg(test)]
mod tests {
    use crate::packager::test_fixtures::*;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_manifest_reads_the_timeline_then_one_segment_per_track() {
        let now = T0 + 10_000;
        for path in [
            "/out/v1/news/mss/Manifest",
            "/out/v1/news/mss/index.ism/Manifest",
        ] {
            let f = fetch(path, &[]);
            assert_eq!(f.path, "/store/v1/news/index.m3u8");
            assert!(f.answers_a_playlist() && !f.is_segment());
            let Plan::Fetch(timeline) = next_plan(&f.next, 200, &[], STORE_MASTER.as_bytes(), now)
            else {
                panic!()
            };
            assert!(
                timeline
                    .path
                    .starts_with("/store/v1/news/stream_0/index.m3u8?window=60000"),
                "{}",
                timeline.path
            );
            // Both variants' video and the lower one's audio, from the run's first segment.
            let Plan::Fetch(codec) =
                next_plan(&timeline.next, 200, &[], STORE_MEDIA.as_bytes(), now)
            else {
                panic!()
            };
            assert_eq!(codec.path, format!("/store/v1/news/stream_0/at/{T0}.media"));
            assert!(!codec.is_playlist() && !codec.is_segment());
            let Step::SmoothCodecs(c) = &codec.next else {
                panic!()
            };
            let pending: Vec<(&str, TrackKind)> = c
                .pending
                .iter()
                .map(|p| (p.rendition.as_str(), p.track))
                .collect();
            assert_eq!(
                pending,
                [
                    ("stream_0", TrackKind::Video),
                    ("stream_1", TrackKind::Video),
                    ("stream_1", TrackKind::Audio)
                ]
            );
            // The store lost the segment meanwhile, or sent no transport stream: clear errors.
            let r = answer(&codec.next, 404, &[], b"gone", now);
            assert_eq!(r.status, 404, "{}", text(&r));
            let r = answer(&codec.next, 200, &[], b"not a transport stream", now);
            assert_eq!(r.status, 502, "{}", text(&r));
            assert!(text(&r).contains("cannot be repackaged"), "{}", text(&r));
        }
        // Formats keep to their own assets.
        let (s, body) = status("/out/v1/news/hls/Manifest", &[]);
        assert_eq!(s, 404);
        assert!(body.contains("has no Smooth Streaming manifest"), "{body}");
        let (s, body) = status("/out/v1/news/mss/index.m3u8", &[]);
        assert_eq!(s, 404);
        assert!(
            body.contains("is Smooth Streaming (its manifest is Manifest)"),
            "{body}"
        );
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_fragment_url_names_its_variant_by_bitrate_and_its_segment_by_time() {
        let now = T0 + 10_000;
        let t = crate::mss::time_of(T0 + 2_000).unwrap();
        let f = fetch(
            &format!("/out/v1/news/mss/QualityLevels(290400)/Fragments(video={t})"),
            &[],
        );
        assert_eq!(f.path, "/store/v1/news/index.m3u8");
        assert!(f.is_segment() && f.is_playlist() && !f.answers_a_playlist());
        let Plan::Fetch(segment) = next_plan(&f.next, 200, &[], STORE_MASTER.as_bytes(), now)
        else {
            panic!()
        };
        assert_eq!(
            segment.path,
            format!("/store/v1/news/stream_1/at/{}.media", T0 + 2_000)
        );
        // Below index.ism/ too; audio is the lowest variant's.
        let f = fetch(
            &format!("/out/v1/news/mss/index.ism/QualityLevels(128000)/Fragments(audio={t})"),
            &[],
        );
        let Plan::Fetch(segment) = next_plan(&f.next, 200, &[], STORE_MASTER.as_bytes(), now)
        else {
            panic!()
        };
        assert!(segment.path.starts_with("/store/v1/news/stream_1/at/"));
        // A bitrate no QualityLevel has: 404 naming those there are.
        let f = fetch(
            &format!("/out/v1/news/mss/QualityLevels(999)/Fragments(video={t})"),
            &[],
        );
        let r = answer(&f.next, 200, &[], STORE_MASTER.as_bytes(), now);
        assert_eq!(r.status, 404);
        assert!(text(&r).contains("lists 730400, 290400"), "{}", text(&r));
        let f = fetch(
            &format!("/out/v1/news/mss/QualityLevels(290400)/Fragments(audio={t})"),
            &[],
        );
        assert_eq!(
            answer(&f.next, 200, &[], STORE_MASTER.as_bytes(), now).status,
            404
        );
        // A time that is no fragment's, a stream that does not exist, a malformed URL.
        let (s, body) = status(
            &format!(
                "/out/v1/news/mss/QualityLevels(290400)/Fragments(video={})",
                t + 1
            ),
            &[],
        );
        assert_eq!(s, 404);
        assert!(body.contains("no fragment starts at"), "{body}");
        for bad in [
            "QualityLevels(290400)/Fragments(text=0)",
            "QualityLevels(x)/Fragments(video=0)",
            "QualityLevels(290400)/Fragments(video=-5)",
            "QualityLevels(290400)/Fragments(video=99999999999999999999999)",
            "QualityLevels(290400)/Fragment(video=0)",
        ] {
            let (s, _) = status(&format!("/out/v1/news/mss/{bad}"), &[]);
            assert_eq!(s, 404, "{bad}");
        }
        // The segment without a duration: the fragment cannot state its own.
        let r = answer(&segment.next, 200, &[], b"G", now);
        assert_eq!(r.status, 502, "{}", text(&r));
        assert!(text(&r).contains("x-edgepack-duration"), "{}", text(&r));
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn codecs_smooth_streaming_cannot_carry_are_refused_by_name() {
        let hevc = STORE_MASTER.replace("avc1.42c00d", "hvc1.1.6.L93.B0");
        let now = T0 + 10_000;
        let f = fetch("/out/v1/news/mss/Manifest", &[]);
        let Plan::Fetch(timeline) = next_plan(&f.next, 200, &[], hevc.as_bytes(), now) else {
            panic!()
        };
        let r = answer(&timeline.next, 200, &[], STORE_MEDIA.as_bytes(), now);
        assert_eq!(r.status, 501, "{}", text(&r));
        assert!(text(&r).contains("hvc1.1.6.l93.b0"), "{}", text(&r));
        let r = answer(&timeline.next, 200, &[], STORE_FMP4.as_bytes(), now);
        assert_eq!(r.status, 501, "{}", text(&r));
    }
}

#[cfg(test)]
mod alternative_audio {
    use crate::packager::test_fixtures::*;

    const STORED: &str = "#EXTM3U
#EXT-X-VERSION:3
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"group_aud\",NAME=\"audio_1\",DEFAULT=YES,LANGUAGE=\"eng\",URI=\"stream_audio_en/index.m3u8\",X-EDGEPACK-BANDWIDTH=70312
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"group_aud\",NAME=\"audio_2\",DEFAULT=NO,LANGUAGE=\"fra\",URI=\"stream_audio_fr/index.m3u8\",X-EDGEPACK-BANDWIDTH=69001
#EXT-X-STREAM-INF:BANDWIDTH=730400,RESOLUTION=320x240,CODECS=\"avc1.42c014,mp4a.40.2\",AUDIO=\"group_aud\"
stream_video/index.m3u8
";

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn each_audio_language_is_its_own_stream() {
        let now = T0 + 10_000;
        let f = fetch("/out/v1/news/mss/Manifest", &[]);
        let step = |step: &Step, body: &[u8]| next_plan(step, 200, &[], body, now);
        let Plan::Fetch(timeline) = step(&f.next, STORED.as_bytes()) else {
            panic!()
        };
        assert!(
            timeline
                .path
                .starts_with("/store/v1/news/stream_video/index.m3u8?")
        );
        let Plan::Fetch(codec) = step(&timeline.next, STORE_MEDIA.as_bytes()) else {
            panic!()
        };
        let Step::SmoothCodecs(c) = &codec.next else {
            panic!()
        };
        let pending: Vec<(&str, TrackKind)> = c
            .pending
            .iter()
            .map(|p| (p.rendition.as_str(), p.track))
            .collect();
        assert_eq!(
            pending,
            [
                ("stream_video", TrackKind::Video),
                ("stream_audio_en", TrackKind::Audio),
                ("stream_audio_fr", TrackKind::Audio)
            ]
        );
        // A fragment of a language: its stream names its rendition, whatever the bit rate.
        let t = crate::mss::time_of(T0).unwrap();
        for bitrate in [70312, 1] {
            let f = fetch(
                &format!(
                    "/out/v1/news/mss/QualityLevels({bitrate})/Fragments(audio_stream_audio_fr={t})"
                ),
                &[],
            );
            let Plan::Fetch(segment) = step(&f.next, STORED.as_bytes()) else {
                panic!()
            };
            assert_eq!(
                segment.path,
                format!("/store/v1/news/stream_audio_fr/at/{T0}.media")
            );
        }
        // No such language; and the muxed `audio` stream is not there when groups are.
        for stream in ["audio_stream_audio_de", "audio"] {
            let f = fetch(
                &format!("/out/v1/news/mss/QualityLevels(128000)/Fragments({stream}={t})"),
                &[],
            );
            let r = answer(&f.next, 200, &[], STORED.as_bytes(), now);
            assert_eq!(r.status, 404, "{stream}");
            assert!(
                text(&r).contains("audio_stream_audio_en"),
                "names the streams there are: {}",
                text(&r)
            );
        }
    }
}
