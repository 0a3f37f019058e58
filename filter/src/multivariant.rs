//! Writes an endpoint's multivariant playlist from the store's: stream selection, then the
//! request's `aws.manifestfilter`, stream order, URIs carrying the time-shift query so every
//! rendition sees the same window, and audio/subtitle groups kept consistent. Lines it does not
//! change are kept verbatim.

use std::collections::HashSet;

use m3u8_rs::{AlternativeMedia, AlternativeMediaType, VariantStream};

use crate::config::{Endpoint, Format, StreamOrder};
use crate::error::FilterError;
use crate::query::{AUDIO_CODECS, ManifestFilter, Range, VIDEO_CODECS};
use edgepack_store_api::api::MEDIA_BANDWIDTH_ATTRIBUTE;

enum Line {
    Other(String),
    /// `EXT-X-STREAM-INF` + URI line; index into the parsed variants.
    Variant(usize, String),
    /// `EXT-X-I-FRAME-STREAM-INF` line; index into the parsed variants.
    IFrame(usize, String),
    /// `EXT-X-MEDIA` line; index into the parsed alternatives.
    Media(usize, String),
}

fn bad(why: &str) -> FilterError {
    FilterError::BadGateway(format!(
        "the store sent an unusable multivariant playlist: {why}"
    ))
}

fn in_ranges(ranges: &Option<Vec<Range>>, v: Option<f64>) -> bool {
    match (ranges, v) {
        (Some(r), Some(v)) => r.iter().any(|r| r.contains(v)),
        // No filter, or an attribute the playlist does not state: nothing to judge by.
        _ => true,
    }
}

fn codecs(v: &VariantStream) -> Vec<String> {
    v.codecs
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty())
        .collect()
}

fn matches_codec(list: &Option<Vec<String>>, table: &[(&str, &[&str])], stated: &[String]) -> bool {
    let Some(names) = list else { return true };
    if stated.is_empty() {
        return true;
    }
    stated.iter().any(|c| {
        names.iter().any(|n| {
            table
                .iter()
                .filter(|(name, _)| name == n)
                .any(|(_, prefixes)| prefixes.iter().any(|p| c.starts_with(p)))
        })
    })
}

fn is_video_codec(c: &str) -> bool {
    VIDEO_CODECS
        .iter()
        .any(|(_, ps)| ps.iter().any(|p| c.starts_with(p)))
}

fn is_audio_codec(c: &str) -> bool {
    AUDIO_CODECS
        .iter()
        .any(|(_, ps)| ps.iter().any(|p| c.starts_with(p)))
        || c.starts_with("mp4a")
}

fn variant_passes(v: &VariantStream, endpoint: &Endpoint, f: Option<&ManifestFilter>) -> bool {
    let cs = codecs(v);
    let video: Vec<String> = cs.iter().filter(|c| is_video_codec(c)).cloned().collect();
    let audio: Vec<String> = cs.iter().filter(|c| is_audio_codec(c)).cloned().collect();
    let audio_only = video.is_empty() && v.resolution.is_none() && !audio.is_empty();
    let bw = v.bandwidth as f64;
    if !audio_only {
        let sel = &endpoint.stream_selection;
        if v.bandwidth < sel.min_video_bits_per_second
            || v.bandwidth > sel.max_video_bits_per_second
        {
            return false;
        }
    }
    let Some(f) = f else { return true };
    if audio_only {
        return in_ranges(&f.audio_bitrate, Some(bw))
            && matches_codec(&f.audio_codec, AUDIO_CODECS, &audio);
    }
    in_ranges(&f.video_bitrate, Some(bw))
        && in_ranges(&f.video_height, v.resolution.map(|r| r.height as f64))
        && in_ranges(&f.video_framerate, v.frame_rate)
        && matches_codec(&f.video_codec, VIDEO_CODECS, &video)
        && matches_codec(&f.audio_codec, AUDIO_CODECS, &audio)
}

fn alternative_passes(a: &AlternativeMedia, f: Option<&ManifestFilter>) -> bool {
    let Some(f) = f else { return true };
    let lang_ok = |list: &Option<Vec<String>>| match (list, &a.language) {
        (Some(l), Some(lang)) => l.contains(&lang.to_ascii_lowercase()),
        (Some(_), None) => false,
        (None, _) => true,
    };
    match a.media_type {
        AlternativeMediaType::Audio => {
            let channels = a
                .channels
                .as_deref()
                .and_then(|c| c.split('/').next())
                .and_then(|c| c.trim().parse::<f64>().ok());
            lang_ok(&f.audio_language) && in_ranges(&f.audio_channels, channels)
        }
        AlternativeMediaType::Subtitles => lang_ok(&f.subtitle_language),
        _ => true,
    }
}

/// The answer when selection and filter leave no stream: the filter's fault (400) or the
/// endpoint's configuration (404).
fn nothing_left(endpoint: &Endpoint, filter: Option<&ManifestFilter>) -> FilterError {
    match filter {
        Some(_) => {
            FilterError::BadRequest("aws.manifestfilter leaves no stream in this channel".into())
        }
        None => FilterError::NotFound(format!(
            "endpoint '{}' stream_selection leaves no variant of channel '{}'",
            endpoint.name, endpoint.channel
        )),
    }
}

/// Replaces the value of the `URI="…"` attribute in a tag line.
fn with_uri(line: &str, uri: &str) -> String {
    match line.find("URI=\"") {
        Some(i) => {
            let start = i + 5;
            let end = line[start..].find('"').map_or(line.len(), |e| start + e);
            format!("{}{uri}{}", &line[..start], &line[end..])
        }
        None => line.to_owned(),
    }
}

/// A tag line without the (unquoted) attribute `name`: the store's own attributes are not shown
/// to viewers.
fn without_attribute(line: &str, name: &str) -> String {
    let key = format!(",{name}=");
    match line.find(&key) {
        Some(i) => {
            let rest = &line[i + key.len()..];
            // A quoted value may hold commas: its end is the first comma after the closing quote.
            let value_len = match rest.strip_prefix('"') {
                Some(q) => q.find('"').map_or(rest.len(), |e| e + 2),
                None => 0,
            };
            let end = rest[value_len..]
                .find(',')
                .map_or(line.len(), |e| i + key.len() + value_len + e);
            format!("{}{}", &line[..i], &line[end..])
        }
        None => line.to_owned(),
    }
}

/// The group of the endpoint's caption channels in its multivariant playlists.
const CAPTIONS_GROUP: &str = "cc";

/// `EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS` lines for the endpoint's caption channels (the first is the
/// default), each ending with a newline.
fn caption_media(endpoint: &Endpoint) -> String {
    endpoint
        .captions
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                "#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"{CAPTIONS_GROUP}\",LANGUAGE=\"{}\",NAME=\"{}\",DEFAULT={},AUTOSELECT=YES,INSTREAM-ID=\"{}\"\n",
                c.language,
                c.display_name(),
                if i == 0 { "YES" } else { "NO" },
                c.instream_id()
            )
        })
        .collect()
}

/// A variant's `EXT-X-STREAM-INF` line on a cmaf endpoint, whose subtitles are WebVTT in fMP4:
/// `wvtt` among its `CODECS`, as RFC 8216bis asks of every format a variant holds (shaka-player
/// reads the subtitles' segments as plain WebVTT without it).
fn with_text_codec(line: &str, v: &VariantStream, endpoint: &Endpoint) -> String {
    let cs = codecs(v);
    if endpoint.format() != Format::Cmaf
        || v.subtitles.is_none()
        || cs.is_empty()
        || cs.iter().any(|c| c == "wvtt")
    {
        return line.to_owned();
    }
    // In place: the value's closing quote is the first after `CODECS="`.
    let Some(value) = line.find(",CODECS=\"").map(|i| i + ",CODECS=\"".len()) else {
        return line.to_owned();
    };
    match line[value..].find('"') {
        Some(end) => format!("{},wvtt{}", &line[..value + end], &line[value + end..]),
        None => line.to_owned(),
    }
}

/// A variant's `EXT-X-STREAM-INF` line naming the endpoint's caption group in place of the
/// encoder's `CLOSED-CAPTIONS`, when the endpoint maps caption channels and the variant has video.
fn with_captions(line: &str, v: &VariantStream, endpoint: &Endpoint) -> String {
    let cs = codecs(v);
    let video = cs.iter().any(|c| is_video_codec(c)) || (cs.is_empty() && v.resolution.is_some());
    if endpoint.captions.is_empty() || !video {
        return line.to_owned();
    }
    format!(
        "{},CLOSED-CAPTIONS=\"{CAPTIONS_GROUP}\"",
        without_attribute(line, "CLOSED-CAPTIONS")
    )
}

fn with_query(uri: &str, carry: &[String]) -> String {
    if carry.is_empty() {
        uri.to_owned()
    } else {
        let sep = if uri.contains('?') { '&' } else { '?' };
        format!("{uri}{sep}{}", carry.join("&"))
    }
}

/// Renders the endpoint's multivariant playlist. `carry` are the raw query pairs every child
/// playlist must see (time shift); the manifest filter is never carried.
// Long on purpose: selection, ordering and rewriting of variants and their groups in one pass over
// the store's playlist, so that a group stays consistent with the variants that reference it.
pub fn write(
    bytes: &[u8],
    endpoint: &Endpoint,
    filter: Option<&ManifestFilter>,
    carry: &[String],
) -> Result<String, FilterError> {
    let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
    let parsed =
        m3u8_rs::parse_master_playlist_res(bytes).map_err(|_| bad("m3u8-rs cannot parse it"))?;
    let mut lines = Vec::new();
    let (mut vi, mut ai) = (0usize, 0usize);
    let mut iter = text.lines().map(str::trim).filter(|l| !l.is_empty());
    while let Some(line) = iter.next() {
        if line.starts_with("#EXT-X-STREAM-INF") {
            let uri = iter.next().ok_or_else(|| bad("STREAM-INF without URI"))?;
            // m3u8-rs may read fewer variants than there are lines (checked after the loop).
            let variant = parsed
                .variants
                .get(vi)
                .ok_or_else(|| bad("variant or media count differs from m3u8-rs"))?;
            let line = with_text_codec(&with_captions(line, variant, endpoint), variant, endpoint);
            lines.push(Line::Variant(
                vi,
                format!("{line}\n{}", with_query(uri, carry)),
            ));
            vi += 1;
        } else if line.starts_with("#EXT-X-I-FRAME-STREAM-INF") {
            lines.push(Line::IFrame(vi, line.to_owned()));
            vi += 1;
        } else if line.starts_with("#EXT-X-MEDIA:") {
            lines.push(Line::Media(ai, line.to_owned()));
            ai += 1;
        } else {
            lines.push(Line::Other(line.to_owned()));
        }
    }
    if vi != parsed.variants.len() || ai != parsed.alternatives.len() {
        return Err(bad("variant or media count differs from m3u8-rs"));
    }
    // Alternatives first: a variant whose audio or subtitle group loses every rendition goes too.
    let alt_ok: Vec<bool> = parsed
        .alternatives
        .iter()
        .map(|a| alternative_passes(a, filter))
        .collect();
    let group_alive = |ty: AlternativeMediaType, group: &str| {
        parsed
            .alternatives
            .iter()
            .zip(&alt_ok)
            .any(|(a, ok)| *ok && a.media_type == ty && a.group_id == group)
    };
    let kept: Vec<bool> = parsed
        .variants
        .iter()
        .map(|v| {
            variant_passes(v, endpoint, filter)
                && v.audio
                    .as_deref()
                    .is_none_or(|g| group_alive(AlternativeMediaType::Audio, g))
                && v.subtitles
                    .as_deref()
                    .is_none_or(|g| group_alive(AlternativeMediaType::Subtitles, g))
        })
        .collect();
    let stream_variants = parsed
        .variants
        .iter()
        .zip(&kept)
        .filter(|(v, k)| **k && !v.is_i_frame);
    if stream_variants.count() == 0 {
        // Nothing to select from is the store's fault; nothing selected is the request's.
        if parsed.variants.iter().all(|v| v.is_i_frame) {
            return Err(bad("it names no variant stream"));
        }
        return Err(nothing_left(endpoint, filter));
    }
    // Groups still referenced by a kept variant.
    let mut referenced: HashSet<(String, &str)> = HashSet::new();
    for (v, _) in parsed.variants.iter().zip(&kept).filter(|(_, k)| **k) {
        for (ty, g) in [
            ("AUDIO", &v.audio),
            ("SUBTITLES", &v.subtitles),
            ("VIDEO", &v.video),
        ] {
            if let Some(g) = g {
                referenced.insert((ty.to_owned(), g.as_str()));
            }
        }
        if let Some(m3u8_rs::ClosedCaptionGroupId::GroupId(g)) = &v.closed_captions {
            referenced.insert(("CLOSED-CAPTIONS".to_owned(), g.as_str()));
        }
    }
    // Kept variants in the endpoint's order; they fill the variant slots of the original layout.
    let mut order: Vec<(u64, &str)> = lines
        .iter()
        .filter_map(|l| match l {
            Line::Variant(i, t) if kept[*i] => Some((parsed.variants[*i].bandwidth, t.as_str())),
            _ => None,
        })
        .collect();
    match endpoint.stream_selection.stream_order {
        StreamOrder::Original => {}
        StreamOrder::VideoBitrateAscending => order.sort_by_key(|(bw, _)| *bw),
        StreamOrder::VideoBitrateDescending => {
            order.sort_by_key(|(bw, _)| std::cmp::Reverse(*bw));
        }
    }
    let mut next = order.into_iter().map(|(_, t)| t.to_owned());
    let mut out = String::with_capacity(text.len() + 256);
    let mut captions_written = endpoint.captions.is_empty();
    for l in &lines {
        if !captions_written && matches!(l, Line::Variant(..) | Line::IFrame(..)) {
            out.push_str(&caption_media(endpoint));
            captions_written = true;
        }
        let emitted = match l {
            // The endpoint's EXT-X-START replaces the encoder's, right after the header.
            Line::Other(t) if endpoint.start_tag.is_some() && t.starts_with("#EXT-X-START:") => {
                None
            }
            Line::Other(t) if t == "#EXTM3U" => Some(match &endpoint.start_tag {
                Some(start) => format!("{t}\n{}", start.line()),
                None => t.clone(),
            }),
            Line::Other(t) => Some(t.clone()),
            Line::Variant(i, _) if kept[*i] => next.next(),
            Line::Variant(..) => None,
            Line::IFrame(i, t) if kept[*i] => {
                let uri = parsed.variants[*i].uri.as_str();
                Some(with_uri(t, &with_query(uri, carry)))
            }
            Line::IFrame(..) => None,
            // The endpoint's caption channels replace the encoder's.
            Line::Media(i, _)
                if !endpoint.captions.is_empty()
                    && parsed.alternatives[*i].media_type
                        == AlternativeMediaType::ClosedCaptions =>
            {
                None
            }
            Line::Media(i, t) => {
                let a = &parsed.alternatives[*i];
                let ty = a.media_type.to_string();
                let alive = alt_ok[*i] && referenced.contains(&(ty, a.group_id.as_str()));
                let t = without_attribute(t, MEDIA_BANDWIDTH_ATTRIBUTE);
                alive.then(|| match &a.uri {
                    Some(uri) => with_uri(&t, &with_query(uri, carry)),
                    None => t,
                })
            }
        };
        if let Some(t) = emitted {
            out.push_str(&t);
            out.push('\n');
        }
    }
    Ok(out)
}

/// A variant stream of the channel as DASH needs it: the rendition it plays, and what the
/// multivariant playlist says about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// The store's rendition directory (`stream_0` of `stream_0/index.m3u8`).
    pub rendition: String,
    pub bandwidth: u64,
    /// RFC 6381 codecs, lower-case as stated (`avc1.42c014`, `mp4a.40.2`).
    pub video_codec: Option<String>,
    pub audio_codec: Option<String>,
    pub width: Option<u64>,
    pub height: Option<u64>,
    pub frame_rate: Option<f64>,
    /// `AUDIO`: the group of its alternative audio renditions, when it has one.
    pub audio_group: Option<String>,
}

/// An alternative audio rendition (`EXT-X-MEDIA:TYPE=AUDIO` naming a rendition of the store) of
/// the endpoint's variants, for the DASH and Smooth Streaming manifests.
#[derive(Debug, Clone, PartialEq)]
pub struct AudioRendition {
    /// The store's rendition directory.
    pub rendition: String,
    pub language: Option<String>,
    pub name: String,
    /// `DEFAULT=YES`: the main audio.
    pub default: bool,
    /// The audio codec the variants referring to its group state.
    pub codec: Option<String>,
    /// Its measured peak bit rate, as the store states it ([`MEDIA_BANDWIDTH_ATTRIBUTE`]).
    pub bandwidth: Option<u64>,
}

/// A subtitle rendition of the offered variants' `SUBTITLES` groups: a text AdaptationSet of a
/// DASH manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct SubtitleRendition {
    /// The store's rendition directory.
    pub rendition: String,
    pub language: Option<String>,
    pub name: String,
    /// `DEFAULT=YES`.
    pub default: bool,
}

/// The subtitle renditions of `variants`' groups that `filter` keeps (`subtitle_language`), in
/// the store's order, each once.
pub fn subtitle_renditions(
    bytes: &[u8],
    variants: &[Variant],
    filter: Option<&ManifestFilter>,
) -> Result<Vec<SubtitleRendition>, FilterError> {
    let parsed =
        m3u8_rs::parse_master_playlist_res(bytes).map_err(|_| bad("m3u8-rs cannot parse it"))?;
    let groups: Vec<&str> = parsed
        .variants
        .iter()
        .filter(|v| {
            v.uri
                .strip_suffix("/index.m3u8")
                .is_some_and(|r| variants.iter().any(|o| o.rendition == r))
        })
        .filter_map(|v| v.subtitles.as_deref())
        .collect();
    let mut out: Vec<SubtitleRendition> = Vec::new();
    for a in &parsed.alternatives {
        let Some(rendition) = a.uri.as_deref().and_then(|u| u.strip_suffix("/index.m3u8")) else {
            continue;
        };
        if a.media_type != AlternativeMediaType::Subtitles
            || !groups.contains(&a.group_id.as_str())
            || !alternative_passes(a, filter)
            || out.iter().any(|o| o.rendition == rendition)
        {
            continue;
        }
        out.push(SubtitleRendition {
            rendition: rendition.to_owned(),
            language: a.language.clone(),
            name: a.name.clone(),
            default: a.default,
        });
    }
    Ok(out)
}

/// The video rendition dated like subtitle rendition `subtitles` (its segments numbered alike
/// cover the same time): the first variant whose `SUBTITLES` group holds it, else the first
/// variant.
pub fn video_for_subtitles(bytes: &[u8], subtitles: &str) -> Option<String> {
    let parsed = m3u8_rs::parse_master_playlist_res(bytes).ok()?;
    let uri = format!("{subtitles}/index.m3u8");
    let group = parsed
        .alternatives
        .iter()
        .find(|a| a.media_type == AlternativeMediaType::Subtitles && a.uri.as_deref() == Some(&uri))
        .map(|a| a.group_id.as_str());
    let streams = || parsed.variants.iter().filter(|v| !v.is_i_frame);
    streams()
        .find(|v| group.is_some() && v.subtitles.as_deref() == group)
        .or_else(|| streams().next())
        .and_then(|v| v.uri.strip_suffix("/index.m3u8"))
        .map(str::to_owned)
}

/// Where a DASH or Smooth Streaming manifest's audio comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AudioSource<'a> {
    /// An alternative audio rendition: a track of its own.
    Alternative(&'a AudioRendition),
    /// The audio muxed into this variant's segments.
    Muxed(&'a Variant),
}

/// The audio tracks of a DASH or Smooth Streaming manifest: each alternative audio rendition,
/// else the muxed audio of the lowest-bandwidth variant (encoders mux the same audio into every
/// variant).
pub fn audio_sources<'a>(
    variants: &'a [Variant],
    alternatives: &'a [AudioRendition],
) -> Vec<AudioSource<'a>> {
    if !alternatives.is_empty() {
        return alternatives.iter().map(AudioSource::Alternative).collect();
    }
    variants
        .iter()
        .filter(|v| v.audio_codec.is_some())
        .min_by_key(|v| v.bandwidth)
        .map(AudioSource::Muxed)
        .into_iter()
        .collect()
}

/// The alternative audio renditions the endpoint's `variants` refer to, once each, in the
/// playlist's order, as `aws.manifestfilter` (`audio_language`, `audio_channels`) leaves them.
pub fn audio_renditions(
    bytes: &[u8],
    variants: &[Variant],
    filter: Option<&ManifestFilter>,
) -> Result<Vec<AudioRendition>, FilterError> {
    let parsed =
        m3u8_rs::parse_master_playlist_res(bytes).map_err(|_| bad("m3u8-rs cannot parse it"))?;
    let mut out: Vec<AudioRendition> = Vec::new();
    for a in &parsed.alternatives {
        let group_used = variants
            .iter()
            .find(|v| v.audio_group.as_deref() == Some(a.group_id.as_str()));
        let Some(v) = group_used else { continue };
        let Some(rendition) = a.uri.as_deref().and_then(|u| u.strip_suffix("/index.m3u8")) else {
            continue;
        };
        if a.media_type != AlternativeMediaType::Audio
            || !alternative_passes(a, filter)
            || out.iter().any(|o| o.rendition == rendition)
        {
            continue;
        }
        let bandwidth = a
            .other_attributes
            .as_ref()
            .and_then(|o| o.get(MEDIA_BANDWIDTH_ATTRIBUTE))
            .and_then(|v| v.as_str().trim().parse().ok());
        out.push(AudioRendition {
            rendition: rendition.to_owned(),
            language: a.language.clone(),
            name: a.name.clone(),
            default: a.default,
            codec: v.audio_codec.clone(),
            bandwidth,
        });
    }
    Ok(out)
}

/// The variants an endpoint offers (stream selection, then the request's `aws.manifestfilter`,
/// dropping a variant whose audio group loses every rendition) in its stream order, for the
/// DASH and Smooth Streaming manifests; their alternative audio is [`audio_renditions`]. I-frame
/// variants and subtitle renditions are not carried into those formats by this version.
pub fn variants(
    bytes: &[u8],
    endpoint: &Endpoint,
    filter: Option<&ManifestFilter>,
) -> Result<Vec<Variant>, FilterError> {
    let parsed =
        m3u8_rs::parse_master_playlist_res(bytes).map_err(|_| bad("m3u8-rs cannot parse it"))?;
    if !parsed
        .variants
        .iter()
        .any(|v| !v.is_i_frame && v.uri.ends_with("/index.m3u8"))
    {
        return Err(bad(
            "it names no variant stream of the form {rendition}/index.m3u8",
        ));
    }
    // As in the HLS playlist: a variant whose audio group loses every rendition to the filter
    // goes too.
    let group_alive = |group: &str| {
        parsed.alternatives.iter().any(|a| {
            a.media_type == AlternativeMediaType::Audio
                && a.group_id == group
                && alternative_passes(a, filter)
        })
    };
    let mut out: Vec<Variant> = parsed
        .variants
        .iter()
        .filter(|v| {
            !v.is_i_frame
                && variant_passes(v, endpoint, filter)
                && v.audio.as_deref().is_none_or(group_alive)
        })
        .filter_map(|v| {
            let cs = codecs(v);
            let rendition = v.uri.strip_suffix("/index.m3u8")?;
            Some(Variant {
                rendition: rendition.to_owned(),
                bandwidth: v.bandwidth,
                video_codec: cs.iter().find(|c| is_video_codec(c)).cloned(),
                audio_codec: cs.iter().find(|c| is_audio_codec(c)).cloned(),
                width: v.resolution.map(|r| r.width),
                height: v.resolution.map(|r| r.height),
                frame_rate: v.frame_rate,
                audio_group: v.audio.clone(),
            })
        })
        .collect();
    if out.is_empty() {
        return Err(nothing_left(endpoint, filter));
    }
    match endpoint.stream_selection.stream_order {
        StreamOrder::Original => {}
        StreamOrder::VideoBitrateAscending => out.sort_by_key(|v| v.bandwidth),
        StreamOrder::VideoBitrateDescending => {
            out.sort_by_key(|v| std::cmp::Reverse(v.bandwidth));
        }
    }
    Ok(out)
}
