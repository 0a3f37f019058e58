//! Subtitles on cmaf, dash and mss endpoints: a WebVTT segment of the store as a CMAF text
//! fragment (`wvtt`, [`cmaf::wvtt`]) on the video's timeline, the text track's initialization
//! segment, or a Smooth Streaming text fragment holding a TTML document ([`cmaf::ttml`]).
//!
//! A fragment takes up to four store answers, each a step: the WebVTT segment (its program date
//! time and duration in the headers); the multivariant playlist (cached per VM), naming the
//! video rendition dated alike ([`multivariant::video_for_subtitles`]); that rendition's segment
//! at the same program date time, whose first frame's own timestamp places the cues; and, when
//! that segment is fMP4, its initialization segment. The text track's initialization segment
//! needs only the first.

use edgepack_store_api::api as store;

use super::segments::segment_pdt;
use super::{Fetch, Job, JobKind, Plan, SEQUENCE_HEADER, Step, StoreAnswer, endpoint, store_error};
use crate::cmaf::{self, mp4, smooth, ttml, wvtt};
use crate::config::Settings;
use crate::error::FilterError;
use crate::http_policy::{IMMUTABLE, cors};
use crate::mss;
use crate::multivariant;
use crate::response::Response;
use crate::route::TrackKind;

/// The content type of text fragments and their initialization segment.
pub const CONTENT_TYPE: &str = "application/mp4";

/// A text fragment on its way: the WebVTT segment and what is known of its video so far.
#[derive(Debug, Clone, PartialEq)]
pub struct TextFragment {
    pub channel: String,
    pub endpoint: String,
    /// The subtitle rendition.
    pub rendition: String,
    /// The video rendition dated alike (known from [`Stage::Video`] on).
    pub video: String,
    /// The store's sequence number of the WebVTT segment (numbers the fragment).
    pub sequence: u64,
    pub pdt_ms: i64,
    /// 90 kHz ticks.
    pub duration: u32,
    /// Seconds, as the store states it (Smooth Streaming fragments state it in 10 MHz ticks,
    /// exactly as the manifest does).
    pub duration_s: f64,
    pub vtt: Vec<u8>,
    pub output: Output,
    /// A clear cmaf endpoint: fMP4 video passes through on the encoder's own timeline, and so
    /// must its subtitles (repackaged video is on the program-date-time timeline).
    pub own_timeline: bool,
    pub stage: Stage,
}

/// What the fragment is written as.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// WebVTT in fMP4 (cmaf, dash).
    Wvtt,
    /// A Smooth Streaming fragment holding a TTML document.
    Ttml,
}

/// What the next store answer is.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// The multivariant playlist.
    Variants,
    /// The video rendition's segment at the same program date time.
    Video,
    /// That segment's initialization segment (fMP4 ingest); the segment itself.
    VideoInit(Vec<u8>),
}

fn is_webvtt(answer: &StoreAnswer<'_>) -> bool {
    (answer.header)("content-type").is_some_and(|ct| ct.trim() == "text/vtt")
}

/// The subtitle rendition a repackaging job is for, when the store's answer is a WebVTT
/// segment, or when the job asks for a text track (whatever the answer).
fn text_job(job: &Job, answer: &StoreAnswer<'_>) -> Option<bool> {
    match &job.kind {
        JobKind::Track {
            track: TrackKind::Text,
            init,
            ..
        } => Some(*init),
        JobKind::Remux { init, .. } | JobKind::Track { init, .. } if is_webvtt(answer) => {
            Some(*init)
        }
        JobKind::SmoothFragment {
            track: TrackKind::Text,
            ..
        } => Some(false),
        _ => None,
    }
}

/// After the first store answer of a repackaging job: `None` when it is not about subtitles;
/// otherwise the text track's initialization segment, the fetch of the next step, or an error.
pub(super) fn start(settings: &Settings, job: &Job, answer: &StoreAnswer<'_>) -> Option<Plan> {
    let init = text_job(job, answer)?;
    let clear_cmaf = matches!(job.kind, JobKind::Remux { .. })
        && endpoint(settings, &job.channel, &job.endpoint).is_ok_and(|ep| ep.keys().is_none());
    Some(match try_start(job, answer, init, clear_cmaf) {
        Ok(plan) => plan,
        Err(e) => Plan::Respond(cors(e.to_response())),
    })
}

fn try_start(
    job: &Job,
    answer: &StoreAnswer<'_>,
    init: bool,
    own_timeline: bool,
) -> Result<Plan, FilterError> {
    if answer.status != 200 {
        return Err(store_error(answer));
    }
    if !is_webvtt(answer) {
        return Err(FilterError::NotFound(
            "this rendition is not subtitles: it has no text track".into(),
        ));
    }
    let segment = wvtt::parse(answer.body).map_err(|why| {
        FilterError::BadGateway(format!("the store's subtitle segment is not WebVTT: {why}"))
    })?;
    if init {
        return Ok(Plan::Respond(cors(
            Response::with_body(200, CONTENT_TYPE, init_segment())
                .header("cache-control", IMMUTABLE),
        )));
    }
    let pdt_ms = segment_pdt(answer).ok_or_else(|| {
        FilterError::BadGateway(format!(
            "the store's subtitle segment has no {} header; its cues cannot be placed",
            super::PDT_HEADER
        ))
    })?;
    let duration = (answer.header)(store::DURATION_HEADER)
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|d| d.is_finite() && *d > 0.0 && *d < 3600.0)
        .ok_or_else(|| {
            FilterError::BadGateway(format!(
                "the store's subtitle segment has no usable {} header",
                store::DURATION_HEADER
            ))
        })?;
    drop(segment);
    let (rendition, output) = match &job.kind {
        JobKind::SmoothFragment { rendition, .. } => (rendition.clone(), Output::Ttml),
        JobKind::Remux { rendition, .. } | JobKind::Track { rendition, .. } => {
            (rendition.clone(), Output::Wvtt)
        }
        _ => (String::new(), Output::Wvtt),
    };
    let t = TextFragment {
        channel: job.channel.clone(),
        endpoint: job.endpoint.clone(),
        rendition,
        video: String::new(),
        sequence: (answer.header)(SEQUENCE_HEADER)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0),
        pdt_ms,
        duration: (duration * 90_000.0).round() as u32,
        duration_s: duration,
        vtt: answer.body.to_vec(),
        output,
        own_timeline,
        stage: Stage::Variants,
    };
    Ok(Plan::Fetch(Box::new(Fetch {
        path: store::multivariant_path(&t.channel),
        next: Step::Text(Box::new(t)),
    })))
}

/// The text track's initialization segment: one `wvtt` track, 90 kHz (the video's timescale).
pub fn init_segment() -> Vec<u8> {
    mp4::init_segment(&[mp4::Track {
        id: 1,
        timescale: 90_000,
        codec: mp4::Codec::WebVtt,
        protection: None,
    }])
}

/// A later store answer of a text fragment.
pub(super) fn on_answer(t: &TextFragment, answer: &StoreAnswer<'_>) -> Plan {
    match try_on_answer(t, answer) {
        Ok(plan) => plan,
        Err(e) => Plan::Respond(cors(e.to_response())),
    }
}

fn try_on_answer(t: &TextFragment, answer: &StoreAnswer<'_>) -> Result<Plan, FilterError> {
    let video_error = |what: &str| {
        let e = store_error(answer);
        FilterError::BadGateway(format!(
            "the subtitles' cues are placed by the video dated alike, and the store has no {what}: {e}"
        ))
    };
    let next = |path: String, stage: Stage| {
        Ok(Plan::Fetch(Box::new(Fetch {
            path,
            next: Step::Text(Box::new(TextFragment { stage, ..t.clone() })),
        })))
    };
    match &t.stage {
        Stage::Variants => {
            if answer.status != 200 {
                return Err(video_error("multivariant playlist"));
            }
            let video = multivariant::video_for_subtitles(answer.body, &t.rendition)
                .ok_or_else(|| {
                    FilterError::BadGateway(
                        "the store's multivariant playlist names no video rendition to place the subtitles' cues by".into(),
                    )
                })?;
            Ok(Plan::Fetch(Box::new(Fetch {
                path: store::segment_at_path(&t.channel, &video, t.pdt_ms, store::ANY_EXT),
                next: Step::Text(Box::new(TextFragment {
                    stage: Stage::Video,
                    video,
                    ..t.clone()
                })),
            })))
        }
        Stage::Video => {
            if answer.status != 200 {
                return Err(video_error("video segment at the subtitle segment's time"));
            }
            if super::tracks::is_fmp4(answer) {
                let id = (answer.header)(store::INIT_HEADER).ok_or_else(|| {
                    FilterError::BadGateway(format!(
                        "the store's fMP4 video segment names no initialization segment ({})",
                        store::INIT_HEADER
                    ))
                })?;
                return next(
                    store::init_path(&t.channel, &t.video, id.trim()),
                    Stage::VideoInit(answer.body.to_vec()),
                );
            }
            respond(t, cmaf::Ingest::Ts(answer.body))
        }
        Stage::VideoInit(segment) => {
            if answer.status != 200 {
                return Err(video_error("initialization segment for the video segment"));
            }
            respond(
                t,
                cmaf::Ingest::Fmp4 {
                    init: answer.body,
                    segment,
                },
            )
        }
    }
}

fn respond(t: &TextFragment, video: cmaf::Ingest<'_>) -> Result<Plan, FilterError> {
    let anchor = match video {
        cmaf::Ingest::Fmp4 { init, segment } if t.own_timeline => {
            cmaf::own_video_anchor(init, segment)
        }
        video => cmaf::video_anchor(video, t.pdt_ms),
    }
    .map_err(|e| {
        FilterError::BadGateway(format!(
            "the video segment dated like the subtitles cannot be read to place their cues: {e}"
        ))
    })?;
    let segment = wvtt::parse(&t.vtt).map_err(|why| {
        FilterError::BadGateway(format!("the store's subtitle segment is not WebVTT: {why}"))
    })?;
    // The fragment starts with the video segment dated alike.
    let start = u64::try_from(anchor.at_90k).unwrap_or(0);
    let sequence = (t.sequence as u32).wrapping_add(1);
    let (body, cache) = match t.output {
        Output::Wvtt => (
            mp4::media_segment(sequence, &[segment.run(start, t.duration, anchor)]),
            IMMUTABLE,
        ),
        Output::Ttml => {
            let doc = ttml::document(&segment, start, t.duration, anchor, None).into_bytes();
            let at = smooth::FragmentTime {
                time: mss::time_of(t.pdt_ms).unwrap_or_default(),
                duration: mss::ticks(t.duration_s),
            };
            // One sample: the document, for the whole fragment.
            let run = mp4::Run {
                track_id: 1,
                base_decode_time: at.time,
                samples: vec![mp4::Sample {
                    duration: u32::try_from(at.duration).unwrap_or(u32::MAX),
                    size: doc.len() as u32,
                    sync: true,
                    composition_offset: 0,
                }],
                data: doc,
                aux: None,
            };
            let body = smooth::fragment(sequence, &run, smooth::TIMESCALE as u32, at);
            (body, IMMUTABLE)
        }
    };
    Ok(Plan::Respond(cors(
        Response::with_body(200, CONTENT_TYPE, body).header("cache-control", cache),
    )))
}
