//! DASH manifests (ISO/IEC 23009-1, DASH-IF live profile) from the store's playlists.
//!
//! Times: every fragment the filter writes presents its first frame at the segment's program
//! date time, in 90 kHz ticks since the Unix epoch (see [`crate::cmaf`]). So a dynamic MPD has
//! `availabilityStartTime` 1970-01-01, and each `SegmentTimeline` entry is the segment's program
//! date time and duration from the playlist — no segment has to be read to write the manifest,
//! and every edge writes the same timeline.
//!
//! Periods: a new one at every discontinuity (the codec configuration may change: a new
//! initialization segment) and, on encrypted endpoints, at every key change (a new KID in
//! `tenc`, `cenc:default_KID` and the license URL). A period's start is its key period's start
//! (0 without rotation) or, after a discontinuity, that segment's program date time; its
//! initialization segments are built from its first segment still in the store.
//!
//! Representations: every selected variant's video in one AdaptationSet; an audio
//! AdaptationSet per alternative audio rendition of the variants' `AUDIO` groups (`lang`,
//! `Label`, `Role` main or alternate, the store's measured bit rate) or, for muxed audio, the
//! audio of the lowest-bandwidth variant as the one audio AdaptationSet (encoders mux the same
//! audio into every variant). Segment URLs: `{rendition}/v{t}.mp4` and `{rendition}/a{t}.mp4`, `$Time$`
//! being the segment's program date time in 90 kHz ticks: renditions may number their segments
//! differently in the store (one restarted, or added later), but they share times, and the store
//! finds a rendition's segment by time.

use std::fmt::Write as _;
use std::ops::Range;

use base64::Engine as _;

use crate::ad_markers;
use crate::cmaf::cenc::Scheme;
use crate::cmaf::mp4;
use crate::config::Endpoint;
use crate::crypto;
use crate::error::FilterError;
use crate::key_periods;
use crate::media_playlist::{MediaPlaylist, Segment};
use crate::multivariant::{AudioRendition, AudioSource, SubtitleRendition, Variant, audio_sources};
use crate::playlist_window::PlaylistType;
use crate::route::{self, TrackKind};
use edgepack_store_api::RunStart;

/// The 90 kHz timescale of every timeline.
const TIMESCALE: i64 = 90_000;

/// Everything a manifest is written from.
pub struct Manifest<'a> {
    /// The variants the endpoint offers, in its order.
    pub variants: &'a [Variant],
    /// Their alternative audio renditions: an audio AdaptationSet each (none: the muxed audio
    /// of the lowest-bandwidth variant is the one audio AdaptationSet).
    pub audio_renditions: &'a [AudioRendition],
    /// The subtitle renditions: a text AdaptationSet each (WebVTT in fMP4, `wvtt`).
    pub subtitles: &'a [SubtitleRendition],
    /// The media playlist of the first variant: the timeline all variants share (renditions of
    /// a channel are segment-aligned, as for MediaPackage).
    pub playlist: &'a MediaPlaylist<'a>,
    /// The segments of `playlist` in the window.
    pub range: Range<usize>,
    pub kind: PlaylistType,
    pub endpoint: &'a Endpoint,
    pub now_ms: i64,
    pub window_ms: i64,
    pub delay_ms: i64,
    /// `https://host/out/v1/{channel}/{endpoint}/`: ClearKey license URLs are absolute.
    pub base_url: &'a str,
}

/// Text escaped for an XML attribute or element (also Smooth Streaming manifests).
pub(crate) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `PT…S` with millisecond precision.
pub(crate) fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    if ms % 1000 == 0 {
        format!("PT{}S", ms / 1000)
    } else {
        format!("PT{}.{:03}S", ms / 1000, ms % 1000)
    }
}

/// `frameRate`: an integer, or a fraction for rates like 29.97.
fn frame_rate(r: f64) -> String {
    if (r - r.round()).abs() < 1e-6 {
        format!("{}", r.round() as u64)
    } else {
        format!("{}/1000", (r * 1000.0).round() as u64)
    }
}

/// One period of the manifest: the window's segments of one run.
struct Period<'a> {
    /// The run's first segment in the store (its initialization segments are built from it).
    first: RunStart,
    key_period: u64,
    segments: &'a [Segment<'a>],
    /// It starts at an ad break's splice point (not at a discontinuity or key period).
    at_splice: bool,
}

/// `<S>` elements of a timeline: `t` and `d` in 90 kHz, repeats folded into `r`.
fn timeline(segments: &[Segment]) -> Result<String, FilterError> {
    let mut out = String::new();
    let mut run: Option<(i64, i64, u32)> = None; // (t, d, r)
    let mut expected = None;
    let flush = |out: &mut String, run: Option<(i64, i64, u32)>| {
        if let Some((t, d, r)) = run {
            let _ = write!(out, "<S t=\"{t}\" d=\"{d}\"");
            if r > 0 {
                let _ = write!(out, " r=\"{r}\"");
            }
            out.push_str("/>");
        }
    };
    for s in segments {
        let pdt = s.pdt_ms.ok_or_else(|| {
            FilterError::BadGateway(format!(
                "the store's segment {} has no program date time; DASH timelines need one",
                s.sequence
            ))
        })?;
        let t = pdt * (TIMESCALE / 1000);
        let d = (s.duration * TIMESCALE as f64).round() as i64;
        match run {
            Some((rt, rd, r)) if Some(t) == expected && d == rd => run = Some((rt, rd, r + 1)),
            _ => {
                flush(&mut out, run);
                run = Some((t, d, 0));
            }
        }
        expected = Some(t + d);
    }
    flush(&mut out, run);
    Ok(out)
}

fn content_protection(
    m: &Manifest<'_>,
    key_period: u64,
    now_ms: i64,
) -> Result<String, FilterError> {
    let Some(enc) = m.endpoint.common_encryption() else {
        return Ok(String::new());
    };
    let scheme = match enc.scheme {
        Scheme::Cenc => "cenc",
        Scheme::Cbcs => "cbcs",
    };
    let kid = crypto::kid_for(m.endpoint, key_period);
    let path = route::license_path(&m.endpoint.channel, &m.endpoint.name);
    let expiry = crypto::token_expiry(now_ms, enc.keys.token.ttl_seconds);
    let token = crypto::token(&enc.keys.token.secret, &path, expiry)?;
    let laurl = format!("{}clearkey?token={token}", m.base_url);
    // With key rotation the period's `pssh` also names the next period's KID, so the license a
    // player fetches for this period holds the next key too (DASH-IF IOP key rotation: keys
    // delivered before they are used). A player that learns of the next period in a manifest
    // update has its key already: shaka-player otherwise restricts every variant (error 4012)
    // when a key status update lands between that update and the new period's license.
    let next = (enc.keys.rotation_seconds > 0).then(|| crypto::kid_for(m.endpoint, key_period + 1));
    let kids: Vec<[u8; 16]> = std::iter::once(kid).chain(next).collect();
    let pssh = base64::engine::general_purpose::STANDARD.encode(mp4::pssh(&kids));
    Ok(format!(
        "<ContentProtection schemeIdUri=\"urn:mpeg:dash:mp4protection:2011\" value=\"{scheme}\" cenc:default_KID=\"{}\"/>\
<ContentProtection schemeIdUri=\"urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e\" value=\"ClearKey1.0\"><dashif:Laurl>{}</dashif:Laurl></ContentProtection>\
<ContentProtection schemeIdUri=\"urn:uuid:1077efec-c0b2-4d02-ace3-3c1e52e2fb4b\"><cenc:pssh>{pssh}</cenc:pssh></ContentProtection>",
        crypto::kid_uuid(&kid),
        xml_escape(&laurl)
    ))
}

/// An audio AdaptationSet: its rendition (whose segments hold the audio) and what the MPD says.
struct AudioSet<'a> {
    rendition: &'a str,
    id: String,
    language: Option<&'a str>,
    label: Option<&'a str>,
    main: bool,
    bandwidth: u64,
    codec: String,
}

/// The nominal bit rate of a subtitle track (DASH requires one; text is a few hundred bytes a
/// second).
const TEXT_BANDWIDTH: u64 = 1_000;

/// The nominal bit rate of a stereo AAC track, where no measured one is known.
const NOMINAL_AUDIO_BANDWIDTH: u64 = 128_000;

/// The audio AdaptationSets: one per alternative audio rendition (language, name, main or
/// alternate, the store's measured bit rate), else the muxed audio of the lowest-bandwidth
/// variant (its bit rate nominal: the multivariant playlist states variants' totals only).
fn audio_sets<'a>(m: &'a Manifest<'_>) -> Vec<AudioSet<'a>> {
    let aac = || "mp4a.40.2".to_owned();
    audio_sources(m.variants, m.audio_renditions)
        .into_iter()
        .map(|source| match source {
            AudioSource::Alternative(a) => AudioSet {
                rendition: &a.rendition,
                id: a.rendition.clone(),
                language: a.language.as_deref(),
                label: Some(&a.name),
                main: a.default,
                bandwidth: a.bandwidth.unwrap_or(NOMINAL_AUDIO_BANDWIDTH),
                codec: a.codec.clone().unwrap_or_else(aac),
            },
            AudioSource::Muxed(v) => AudioSet {
                rendition: &v.rendition,
                id: "audio".into(),
                language: None,
                label: None,
                main: true,
                bandwidth: NOMINAL_AUDIO_BANDWIDTH,
                codec: v.audio_codec.clone().unwrap_or_else(aac),
            },
        })
        .collect()
}

/// Writes the MPD.
// Long on purpose: it writes the MPD top to bottom in document order (MPD attributes, then each
// period with its adaptation sets); the parts it could be split into share most of its locals.
/// The period's ad breaks as SCTE-35 events (SCTE 214-1: `urn:scte:scte35:2014:xml+bin`, the
/// cue in base64), timed from the period's start in 90 kHz; a break that began before the period
/// starts at its start, with what is left of its duration.
fn event_stream(out: &mut String, m: &Manifest<'_>, segments: &[Segment], period_start_ms: i64) {
    let events = ad_markers::dash_events(&m.endpoint.ads, segments);
    if events.is_empty() {
        return;
    }
    out.push_str(
        "<EventStream schemeIdUri=\"urn:scte:scte35:2014:xml+bin\" timescale=\"90000\">\n",
    );
    for e in events {
        let late_ms = period_start_ms.saturating_sub(e.start_ms).max(0);
        let at = e
            .start_ms
            .saturating_add(late_ms)
            .saturating_sub(period_start_ms);
        let _ = write!(
            out,
            "<Event presentationTime=\"{}\" id=\"{}\"",
            at.saturating_mul(90),
            e.id
        );
        if let Some(d) = e.duration {
            let left = ((d * 1000.0).round() as i64).saturating_sub(late_ms).max(0);
            let _ = write!(out, " duration=\"{}\"", left.saturating_mul(90));
        }
        let _ = writeln!(
            out,
            "><Signal xmlns=\"http://www.scte.org/schemas/35/2016\"><Binary>{}</Binary></Signal></Event>",
            e.scte35_base64
        );
    }
    out.push_str("</EventStream>\n");
}

pub fn write(m: &Manifest<'_>) -> Result<String, FilterError> {
    let pl = m.playlist;
    let segs = pl.segments.get(m.range.clone()).unwrap_or(&[]);
    let Some(first_seg) = segs.first() else {
        return Err(FilterError::NotFound(
            "the channel has no segments in this window yet; retry shortly".into(),
        ));
    };
    let video: Vec<&Variant> = m
        .variants
        .iter()
        .filter(|v| v.video_codec.is_some())
        .collect();
    let audio = audio_sets(m);
    if video.is_empty() && audio.is_empty() {
        return Err(FilterError::BadGateway(
            "the store's multivariant playlist states no CODECS for its variants; a DASH manifest needs them".into(),
        ));
    }
    // Periods: runs of the window with one discontinuity sequence and one key period, split at
    // ad breaks' splice points with `period_triggers: ["ads"]`.
    let ads = &m.endpoint.ads;
    let mut periods: Vec<Period<'_>> = Vec::new();
    let mut at = 0;
    while at < segs.len() {
        let s = &segs[at];
        let kp = key_periods::of_segment(m.endpoint, s);
        let len = segs[at..]
            .iter()
            .enumerate()
            .take_while(|(i, x)| {
                x.disc_seq == s.disc_seq
                    && key_periods::of_segment(m.endpoint, x) == kp
                    && (*i == 0 || !ad_markers::splice_point(ads, x))
            })
            .count();
        periods.push(Period {
            first: key_periods::run_start(pl, m.endpoint, s),
            key_period: kp,
            segments: &segs[at..at + len],
            at_splice: at > 0 && ad_markers::splice_point(ads, s),
        });
        at += len;
    }
    let dynamic = m.kind != PlaylistType::Vod;
    // Presentation times count from the epoch (dynamic) or from the first segment (static).
    let origin_ms = if dynamic {
        0
    } else {
        first_seg.pdt_ms.unwrap_or(0)
    };
    let td = segs
        .iter()
        .map(|s| s.duration.ceil() as i64)
        .max()
        .unwrap_or(1)
        .max(pl.target_duration.unwrap_or(0) as i64)
        .max(1);
    let mut out = String::with_capacity(2048 + segs.len() * 40);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = write!(
        out,
        "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" xmlns:cenc=\"urn:mpeg:cenc:2013\" xmlns:dashif=\"https://dashif.org/CPS\" profiles=\"urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019\" minBufferTime=\"{}\" maxSegmentDuration=\"{}\"",
        duration(td * 1000),
        duration(td * 1000)
    );
    if dynamic {
        let _ = writeln!(
            out,
            " type=\"dynamic\" availabilityStartTime=\"1970-01-01T00:00:00Z\" publishTime=\"{}\" minimumUpdatePeriod=\"{}\" timeShiftBufferDepth=\"{}\" suggestedPresentationDelay=\"{}\">",
            edgepack_store_api::format_pdt(m.now_ms),
            duration(td * 1000),
            duration(m.window_ms),
            duration(m.delay_ms + 3 * td * 1000)
        );
    } else {
        let total: f64 = segs.iter().map(|s| s.duration).sum();
        let _ = writeln!(
            out,
            " type=\"static\" mediaPresentationDuration=\"{}\">",
            duration((total * 1000.0).round() as i64)
        );
    }
    for p in &periods {
        // A period starts with its key period (0 without rotation), or at a discontinuity.
        let rotation = m.endpoint.keys().map_or(0, |k| k.rotation_seconds as i64);
        let mut start_ms = rotation * 1000 * p.key_period as i64;
        if p.first.discontinuity
            && let Some(pdt) = p.first.pdt_ms
        {
            start_ms = start_ms.max(pdt);
        }
        if !dynamic || p.at_splice {
            start_ms = start_ms.max(p.segments.first().and_then(|s| s.pdt_ms).unwrap_or(0));
        }
        let rel_ms = (start_ms - origin_ms).max(0);
        let pto = (origin_ms + rel_ms) * (TIMESCALE / 1000);
        let s_list = timeline(p.segments)?;
        let protection = content_protection(m, p.key_period, m.now_ms)?;
        let init = p.first.pdt_ms.unwrap_or(0) * (TIMESCALE / 1000);
        // A period a splice point starts is named by its first segment too.
        let splice = match (p.at_splice, p.segments.first()) {
            (true, Some(s)) => format!("-{}", s.sequence),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "<Period id=\"{}-{}{splice}\" start=\"{}\">",
            p.segments.first().map_or(0, |s| s.disc_seq),
            p.key_period,
            duration(rel_ms)
        );
        event_stream(&mut out, m, p.segments, origin_ms + rel_ms);
        let template = |track: TrackKind, rendition: Option<&str>| {
            let dir = rendition.unwrap_or("$RepresentationID$");
            format!(
                "<SegmentTemplate timescale=\"{TIMESCALE}\" presentationTimeOffset=\"{pto}\" initialization=\"{}\" media=\"{}\"><SegmentTimeline>{s_list}</SegmentTimeline></SegmentTemplate>",
                track.init_template(dir, init),
                track.media_template(dir)
            )
        };
        if !video.is_empty() {
            let max_w = video.iter().filter_map(|v| v.width).max();
            let max_h = video.iter().filter_map(|v| v.height).max();
            out.push_str("<AdaptationSet id=\"0\" contentType=\"video\" mimeType=\"video/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\"");
            if let (Some(w), Some(h)) = (max_w, max_h) {
                let _ = write!(out, " maxWidth=\"{w}\" maxHeight=\"{h}\"");
            }
            out.push_str(">\n");
            out.push_str(&protection);
            // The endpoint's CEA-608 caption channels (DASH-IF IOP: `CC1=eng;CC3=fra`).
            if !m.endpoint.captions.is_empty() {
                let channels: Vec<String> = m
                    .endpoint
                    .captions
                    .iter()
                    .map(|c| format!("{}={}", c.instream_id(), c.language))
                    .collect();
                let _ = writeln!(
                    out,
                    "<Accessibility schemeIdUri=\"urn:scte:dash:cc:cea-608:2015\" value=\"{}\"/>",
                    channels.join(";")
                );
            }
            out.push_str(&template(TrackKind::Video, None));
            out.push('\n');
            for v in &video {
                let _ = write!(
                    out,
                    "<Representation id=\"{}\" bandwidth=\"{}\" codecs=\"{}\"",
                    xml_escape(&v.rendition),
                    v.bandwidth,
                    xml_escape(v.video_codec.as_deref().unwrap_or(""))
                );
                if let (Some(w), Some(h)) = (v.width, v.height) {
                    let _ = write!(out, " width=\"{w}\" height=\"{h}\" sar=\"1:1\"");
                }
                if let Some(r) = v.frame_rate {
                    let _ = write!(out, " frameRate=\"{}\"", frame_rate(r));
                }
                out.push_str("/>\n");
            }
            out.push_str("</AdaptationSet>\n");
        }
        for (i, a) in audio.iter().enumerate() {
            let _ = write!(
                out,
                "<AdaptationSet id=\"{}\" contentType=\"audio\" mimeType=\"audio/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\"",
                i + 1
            );
            if let Some(lang) = &a.language {
                let _ = write!(out, " lang=\"{}\"", xml_escape(lang));
            }
            out.push_str(">\n");
            if let Some(label) = &a.label {
                let _ = writeln!(out, "<Label>{}</Label>", xml_escape(label));
            }
            if !m.audio_renditions.is_empty() {
                let _ = writeln!(
                    out,
                    "<Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"{}\"/>",
                    if a.main { "main" } else { "alternate" }
                );
            }
            out.push_str(&protection);
            out.push_str(&template(TrackKind::Audio, Some(a.rendition)));
            let _ = writeln!(
                out,
                "\n<Representation id=\"{}\" bandwidth=\"{}\" codecs=\"{}\"/>",
                xml_escape(&a.id),
                a.bandwidth,
                xml_escape(&a.codec)
            );
            out.push_str("</AdaptationSet>\n");
        }
        // Subtitles: clear (players expect text so), on the video's timeline; their segments
        // are dated as the video's numbered alike, so they share its SegmentTimeline.
        for (i, t) in m.subtitles.iter().enumerate() {
            let _ = write!(
                out,
                "<AdaptationSet id=\"{}\" contentType=\"text\" mimeType=\"application/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\"",
                audio.len() + 1 + i
            );
            if let Some(lang) = &t.language {
                let _ = write!(out, " lang=\"{}\"", xml_escape(lang));
            }
            let _ = writeln!(out, ">\n<Label>{}</Label>", xml_escape(&t.name));
            out.push_str("<Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"subtitle\"/>\n");
            out.push_str(&template(TrackKind::Text, Some(&t.rendition)));
            let _ = writeln!(
                out,
                "\n<Representation id=\"{}\" bandwidth=\"{TEXT_BANDWIDTH}\" codecs=\"wvtt\"/>",
                xml_escape(&t.rendition)
            );
            out.push_str("</AdaptationSet>\n");
        }
        out.push_str("</Period>\n");
    }
    if dynamic {
        let _ = writeln!(
            out,
            "<UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:direct:2014\" value=\"{}\"/>",
            edgepack_store_api::format_pdt(m.now_ms)
        );
    }
    out.push_str("</MPD>\n");
    Ok(out)
}
