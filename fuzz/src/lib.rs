//! What the fuzz targets share: the plugin configuration they run against, the checks every
//! answer must pass, and a reader of the ISO BMFF boxes the remuxer writes (so that "remux output
//! re-parses" is checked by code that did not write it).
//!
//! Fuzz code fails loudly on purpose: a failed `assert!` is a finding.

use edgepack_filter::{Response, Settings};
use std::sync::OnceLock;

/// The packager tests' configuration: an endpoint of every kind (HLS, cmaf, DASH; clear,
/// AES-128 derived and static, cenc, cbcs; CDN identifier and IP allowlist).
pub const CONFIG: &str = include_str!("../../filter/tests/fixtures/plugin_config.json");
/// The store's recorded answers (see `filter/tests/fixtures/README.md`).
pub const STORE_MULTIVARIANT: &str =
    include_str!("../../filter/tests/fixtures/store_multivariant.m3u8");
pub const STORE_MEDIA: &str = include_str!("../../filter/tests/fixtures/store_media_stream_0.m3u8");
pub const STORE_FMP4: &str = include_str!("../../filter/tests/fixtures/store_media_fmp4.m3u8");
/// 2026-11-25T14:35:31.666Z, the first segment of the recorded store playlist.
pub const T0: i64 = 1_795_617_331_666;

/// The parsed [`CONFIG`], once per process.
pub fn settings() -> &'static Settings {
    static S: OnceLock<Settings> = OnceLock::new();
    S.get_or_init(|| match Settings::from_json(CONFIG.as_bytes()) {
        Ok(s) => s,
        Err(e) => panic!("the fixture configuration is invalid: {e}"),
    })
}

/// A view query as it reads back from its text: `now` is written only with a delay (without
/// one it changes nothing, and the query stays the same for ETag revalidation).
pub fn without_idle_now(
    mut v: edgepack_store_api::window::ViewQuery,
) -> edgepack_store_api::window::ViewQuery {
    if v.spec.delay_ms == 0 {
        v.spec.now_ms = 0;
    }
    v
}

/// A header lookup over a list of (lower-case name, value).
pub fn lookup(headers: &[(String, String)]) -> impl Fn(&str) -> Option<String> + '_ {
    move |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }
}

/// Every answer the filter gives: a status it documents, and for a refusal a plain-text body
/// that says why (one line or more, never empty), `Allow` on a 405.
pub fn check_answer(r: &Response) {
    assert!(
        matches!(
            r.status,
            200 | 204 | 400 | 403 | 404 | 405 | 413 | 501 | 502 | 504
        ),
        "undocumented status {}: {:?}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    if r.status >= 400 {
        assert_eq!(
            r.get("content-type"),
            Some("text/plain; charset=utf-8"),
            "a refusal is plain text"
        );
        let body = std::str::from_utf8(&r.body).unwrap_or_default();
        assert!(
            body.trim().len() > 3,
            "a {} without a reason: {body:?}",
            r.status
        );
    }
    if r.status == 405 {
        assert!(r.get("allow").is_some(), "a 405 says what is allowed");
    }
}

/// One ISO BMFF box: its type and contents (after the header).
#[derive(Debug, Clone, Copy)]
pub struct Mp4Box<'a> {
    pub kind: [u8; 4],
    pub body: &'a [u8],
}

/// Reads a sequence of boxes that must fill `data` exactly (32-bit sizes; `largesize` and
/// size 0 are refused: the remuxer writes neither).
pub fn boxes(mut data: &[u8]) -> Result<Vec<Mp4Box<'_>>, String> {
    let mut out = Vec::new();
    while !data.is_empty() {
        if data.len() < 8 {
            return Err(format!("{} trailing bytes", data.len()));
        }
        let size = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
        let kind = [data[4], data[5], data[6], data[7]];
        if size < 8 || size > data.len() {
            return Err(format!(
                "box {} of size {size} in {} bytes",
                String::from_utf8_lossy(&kind),
                data.len()
            ));
        }
        out.push(Mp4Box {
            kind,
            body: &data[8..size],
        });
        data = &data[size..];
    }
    Ok(out)
}

fn child<'a>(parent: &[Mp4Box<'a>], kind: &[u8; 4]) -> Result<Mp4Box<'a>, String> {
    parent
        .iter()
        .find(|b| &b.kind == kind)
        .copied()
        .ok_or_else(|| format!("no {} box", String::from_utf8_lossy(kind)))
}

fn be32(b: &[u8], at: usize) -> Result<u32, String> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| "truncated field".to_owned())
}

/// An initialization segment: `ftyp` then `moov` with `mvex` and one `trak` per track.
/// Returns the number of tracks.
pub fn check_init(data: &[u8]) -> Result<usize, String> {
    let top = boxes(data)?;
    if top.first().map(|b| &b.kind) != Some(b"ftyp") {
        return Err("an init segment starts with ftyp".into());
    }
    let moov = boxes(child(&top, b"moov")?.body)?;
    child(&moov, b"mvex")?;
    let traks = moov.iter().filter(|b| &b.kind == b"trak").count();
    if traks == 0 {
        return Err("no trak".into());
    }
    Ok(traks)
}

/// A media segment: `styp`, `moof` (one `traf` per track with `tfhd`, `tfdt`, `trun`), `mdat`;
/// every `trun`'s sample sizes add up to what its data offset points at inside `mdat`.
/// Returns the number of samples.
/// A Smooth Streaming fragment re-parses: `moof` + `mdat` filling it, one `traf` with `tfhd`,
/// `trun` (its data offset at the `mdat` payload, its sample sizes filling it) and the `tfxd`
/// box; the sample count.
pub fn check_smooth_fragment(data: &[u8]) -> Result<usize, String> {
    let top = boxes(data)?;
    let kinds: Vec<&[u8; 4]> = top.iter().map(|b| &b.kind).collect();
    if kinds != [b"moof", b"mdat"] {
        return Err(format!(
            "a Smooth Streaming fragment is moof + mdat, not {kinds:?}"
        ));
    }
    let moof = child(&top, b"moof")?.body;
    let mdat = child(&top, b"mdat")?.body;
    let traf = boxes(child(&boxes(moof)?, b"traf")?.body)?;
    child(&traf, b"tfhd")?;
    let tfxd = [
        0x6D, 0x1D, 0x9B, 0x05, 0x42, 0xD5, 0x44, 0xE6, 0x80, 0xE2, 0x14, 0x1D, 0xAF, 0xF7, 0x57,
        0xB2,
    ];
    if !traf
        .iter()
        .any(|b| &b.kind == b"uuid" && b.body.starts_with(&tfxd))
    {
        return Err("no tfxd box".into());
    }
    let trun = child(&traf, b"trun")?.body;
    let count = be32(trun, 4)? as usize;
    if be32(trun, 8)? as usize != moof.len() + 8 + 8 {
        return Err("the trun's data offset is not the mdat's payload".into());
    }
    let mut total = 0usize;
    for i in 0..count {
        total += be32(trun, 12 + 16 * i + 4)? as usize;
    }
    if total != mdat.len() {
        return Err(format!(
            "samples of {total} bytes in an mdat of {}",
            mdat.len()
        ));
    }
    Ok(count)
}

pub fn check_fragment(data: &[u8]) -> Result<usize, String> {
    let top = boxes(data)?;
    let kinds: Vec<&[u8; 4]> = top.iter().map(|b| &b.kind).collect();
    if kinds.first() != Some(&b"styp") || !kinds.contains(&b"moof") {
        return Err(format!("a fragment is styp + moof + mdat, not {kinds:?}"));
    }
    let moof_offset = 8 + child(&top, b"styp")?.body.len();
    let moof_len = 8 + child(&top, b"moof")?.body.len();
    let mdat = child(&top, b"mdat")?;
    let mdat_start = moof_offset + moof_len + 8;
    let mdat_end = mdat_start + mdat.body.len();
    let moof = boxes(child(&top, b"moof")?.body)?;
    let mut samples = 0;
    for traf in moof.iter().filter(|b| &b.kind == b"traf") {
        let traf = boxes(traf.body)?;
        child(&traf, b"tfhd")?;
        child(&traf, b"tfdt")?;
        let trun = child(&traf, b"trun")?.body;
        let flags = be32(trun, 0)? & 0x00ff_ffff;
        let count = be32(trun, 4)? as usize;
        let mut at = 8;
        let mut data_offset = None;
        if flags & 0x1 != 0 {
            data_offset = Some(be32(trun, at)? as usize);
            at += 4;
        }
        if flags & 0x4 != 0 {
            at += 4;
        }
        let per_sample = [0x100, 0x200, 0x400, 0x800]
            .iter()
            .filter(|f| flags & **f != 0)
            .count()
            * 4;
        let mut total = 0usize;
        for i in 0..count {
            let base = at + i * per_sample;
            if per_sample == 0 || base + per_sample > trun.len() {
                return Err("trun shorter than its sample count".into());
            }
            if flags & 0x200 != 0 {
                let size_at = base + if flags & 0x100 != 0 { 4 } else { 0 };
                total += be32(trun, size_at)? as usize;
            }
        }
        if let Some(offset) = data_offset {
            let start = moof_offset + offset;
            if start < mdat_start || start + total > mdat_end {
                return Err(format!(
                    "trun data [{start}, {}) outside mdat [{mdat_start}, {mdat_end})",
                    start + total
                ));
            }
        }
        if let Ok(senc) = child(&traf, b"senc")
            && be32(senc.body, 4)? as usize != count
        {
            return Err("senc and trun disagree on the sample count".into());
        }
        samples += count;
    }
    if samples == 0 {
        return Err("a fragment without samples".into());
    }
    Ok(samples)
}

/// A tiny real MPEG-TS segment (ffmpeg: 64×36 H.264 + AAC, 0.4 s), the seed of segment answers.
pub const TS_SEGMENT: &[u8] = include_bytes!("../seeds/segment.ts");

/// The paths a viewer asks for, one of each kind per endpoint (the fuzzer picks, then mutates).
const PATHS: &[&str] = &[
    "/out/v1/news/hls/index.m3u8",
    "/out/v1/news/hls/stream_0/index.m3u8",
    "/out/v1/news/hls/stream_0/10.ts",
    "/out/v1/news/cmaf/index.m3u8",
    "/out/v1/news/cmaf/stream_0/index.m3u8",
    "/out/v1/news/cmaf/stream_0/10.mp4",
    "/out/v1/news/cmaf/stream_0/init-ts10.mp4",
    "/out/v1/news/hls/stream_0/init-0a1b.mp4",
    "/out/v1/news/secure/stream_0/index.m3u8",
    "/out/v1/news/secure/stream_0/10.ts",
    "/out/v1/news/secure/key/448904332",
    "/out/v1/news/fixed/key/0",
    "/out/v1/news/pdt/stream_0/index.m3u8",
    "/out/v1/news/sorted/index.m3u8",
    "/out/v1/news/dash/index.mpd",
    "/out/v1/news/dash/stream_0/v1795617331666.mp4",
    "/out/v1/news/dash/stream_0/a1795617331666.mp4",
    "/out/v1/news/dash/stream_0/init-v1795617331666.mp4",
    "/out/v1/news/dash-cenc/index.mpd",
    "/out/v1/news/dash-cenc/clearkey",
    "/out/v1/news/dash-cenc/stream_0/v1795617331666.mp4",
    "/out/v1/news/dash-cenc/stream_0/init-a1795617331666.mp4",
    "/out/v1/news/cmaf-cbcs/stream_0/index.m3u8",
    "/out/v1/news/cmaf-cbcs/stream_0/10.mp4",
    "/out/v1/news/cmaf-cbcs/key/448904332",
    "/out/v1/news/mss/Manifest",
    "/out/v1/news/mss/index.ism/Manifest",
    "/out/v1/news/mss/QualityLevels(730400)/Fragments(video=2177805316660000)",
    "/out/v1/news/mss/index.ism/QualityLevels(128000)/Fragments(audio=2177805316660000)",
    "/out/v1/news/mss/QualityLevels(70312)/Fragments(audio_stream_1=2177805316660000)",
    "/out/v1/news/mss/QualityLevels(1000)/Fragments(text_subs=2177805316660000)",
    "/out/v1/news/cmaf/subs/3.mp4",
    "/out/v1/news/cmaf/subs/init-ts3.mp4",
    "/out/v1/news/dash/subs/t161605559849940.mp4",
    "/out/v1/news/dash/subs/init-t161605559849940.mp4",
    "/out/v1/other/hls/index.m3u8",
    "/in/v1/news/1/stream_0.m3u8",
    "/healthz",
];

const QUERIES: &[&str] = &[
    "",
    "aws.manifestfilter=video_height:100-300;audio_sample_rate:48000",
    "aws.manifestfilter=video_bitrate:0-500000,800000-",
    "start=2026-11-25T14:35:31Z&end=2026-11-25T14:35:37Z",
    "start=1795617331&end=1795617337",
    "aws.manifestsettings=manifest_window_seconds:4,time_delay_seconds:2",
    "start=2026-11-25T14:35:31Z",
    "end=-1",
];

const HEADERS: &[&str] = &[
    "x-edgepack-cdn-identifier",
    ":authority",
    ":scheme",
    "access-control-request-headers",
    "origin",
    "range",
    "content-type",
];

/// A token in the request's query.
#[derive(Debug, arbitrary::Arbitrary)]
pub enum Token {
    None,
    /// Minted with the fixture's secret for the request's path, expiring `seconds` after now
    /// (or before, when negative).
    Valid {
        seconds: i32,
    },
    Raw(String),
}

/// A viewer's request, built from the fuzzer's bytes.
#[derive(Debug, arbitrary::Arbitrary)]
pub struct ViewerRequest {
    method: u8,
    other_method: String,
    path: u8,
    /// Replaces the picked path when not empty; with `append`, follows it.
    path_text: String,
    append: bool,
    query: u8,
    query_text: String,
    token: Token,
    headers: Vec<(u8, String)>,
    client_ip: Option<[u8; 4]>,
    now_offset_ms: i32,
    /// The license request's body.
    pub body: Vec<u8>,
    /// The store's answers, in the order the filter asks.
    pub store: Vec<StoreReply>,
}

impl ViewerRequest {
    pub fn method(&self) -> &str {
        match self.method % 6 {
            0 | 1 => "GET",
            2 => "HEAD",
            3 => "OPTIONS",
            4 => "POST",
            _ => &self.other_method,
        }
    }

    pub fn path(&self) -> String {
        let picked = PATHS[usize::from(self.path) % PATHS.len()];
        let mut p = match (self.path_text.is_empty(), self.append) {
            (true, _) => picked.to_owned(),
            (false, true) => format!("{picked}{}", self.path_text),
            (false, false) => self.path_text.clone(),
        };
        let mut query = QUERIES[usize::from(self.query) % QUERIES.len()].to_owned();
        if !self.query_text.is_empty() {
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(&self.query_text);
        }
        let token = match &self.token {
            Token::None => None,
            Token::Raw(t) => Some(t.clone()),
            Token::Valid { seconds } => {
                let expiry = (self.now_ms() / 1000 + i64::from(*seconds)).max(0) as u64;
                let path_only = p.split('?').next().unwrap_or_default();
                edgepack_filter::crypto::token("tok-0123456789abcdef", path_only, expiry).ok()
            }
        };
        if let Some(t) = token {
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str("token=");
            query.push_str(&t);
        }
        if !query.is_empty() {
            p.push('?');
            p.push_str(&query);
        }
        p
    }

    pub fn headers(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .map(|(k, v)| {
                (
                    HEADERS[usize::from(*k) % HEADERS.len()].to_owned(),
                    v.clone(),
                )
            })
            .collect()
    }

    pub fn client_ip(&self) -> Option<std::net::IpAddr> {
        self.client_ip.map(std::net::IpAddr::from)
    }

    pub fn now_ms(&self) -> i64 {
        T0 + i64::from(self.now_offset_ms)
    }
}

/// One answer of the store.
#[derive(Debug, arbitrary::Arbitrary)]
pub struct StoreReply {
    status: u8,
    body: u8,
    /// Arbitrary bytes: the body when `body` picks them, else flipped into the picked body.
    bytes: Vec<u8>,
    at: u16,
    headers: Vec<(bool, String)>,
    /// The content type the store states: none, MPEG-TS, fMP4, WebVTT.
    content_type: u8,
}

/// A WebVTT subtitle segment as ffmpeg writes it.
const WEBVTT_SEGMENT: &str = "WEBVTT\n\n00:00:02.122 --> 00:00:02.922\nCue 2\n\nid\n00:00:03.122 --> 00:00:03.922 line:0\nCue <b>3</b>\n";

impl StoreReply {
    pub fn status(&self) -> u16 {
        const STATUSES: &[u16] = &[
            200, 200, 200, 200, 0, 204, 301, 304, 400, 404, 416, 500, 503, 504,
        ];
        STATUSES[usize::from(self.status) % STATUSES.len()]
    }

    pub fn body(&self) -> Vec<u8> {
        let picked: &[u8] = match self.body % 6 {
            0 => STORE_MULTIVARIANT.as_bytes(),
            1 => STORE_MEDIA.as_bytes(),
            2 => STORE_FMP4.as_bytes(),
            3 => TS_SEGMENT,
            4 => WEBVTT_SEGMENT.as_bytes(),
            _ => return self.bytes.clone(),
        };
        let mut out = picked.to_vec();
        // Overwrite a stretch (truncating past the end): a damaged but mostly real answer.
        if !self.bytes.is_empty() {
            let at = usize::from(self.at) * out.len() / usize::from(u16::MAX).max(1);
            let end = (at + self.bytes.len()).min(out.len());
            out[at..end].copy_from_slice(&self.bytes[..end - at]);
            if self.bytes.len().is_multiple_of(7) {
                out.truncate(end);
            }
        }
        out
    }

    pub fn headers(&self) -> Vec<(String, String)> {
        use edgepack_filter::packager::{PDT_HEADER, SEQUENCE_HEADER};
        let mut h = vec![
            (SEQUENCE_HEADER.to_owned(), "10".to_owned()),
            (PDT_HEADER.to_owned(), edgepack_store_api::format_pdt(T0)),
            (
                edgepack_store_api::api::DURATION_HEADER.to_owned(),
                "2.000000".to_owned(),
            ),
        ];
        if let Some(ct) = [
            None,
            Some("video/mp2t"),
            Some("video/mp4"),
            Some("text/vtt"),
        ][usize::from(self.content_type) % 4]
        {
            h.push(("content-type".to_owned(), ct.to_owned()));
        }
        for (seq, v) in &self.headers {
            let name = if *seq { SEQUENCE_HEADER } else { PDT_HEADER };
            h.retain(|(k, _)| k != name);
            h.push((name.to_owned(), v.clone()));
        }
        h
    }
}

/// The remux properties both ingest targets check, for one selection: when the clear remux is
/// taken, its fragment and init re-parse, and `cenc` and `cbcs` take it too, keeping the sample
/// count. Returns the clear remux's sample count (`None`: refused).
pub fn check_remuxes(
    ingest: edgepack_filter::cmaf::Ingest<'_>,
    select: edgepack_filter::cmaf::Select,
) -> Option<usize> {
    use edgepack_filter::cmaf::cenc::{Protection, Scheme};
    use edgepack_filter::cmaf::remux_select;
    let clear = remux_select(ingest, 7, Some(T0), None, select).ok()?;
    let samples = check_fragment(&clear.fragment).unwrap_or_else(|e| panic!("fragment: {e}"));
    let tracks = check_init(&clear.init_segment()).unwrap_or_else(|e| panic!("init: {e}"));
    assert_eq!(tracks, clear.tracks.len());
    for scheme in [Scheme::Cenc, Scheme::Cbcs] {
        let p = Protection {
            scheme,
            key: [7; 16],
            kid: [9; 16],
            iv_base: u64::MAX - 3,
            constant_iv: [1; 16],
        };
        let sealed = match remux_select(ingest, 7, Some(T0), Some(&p), select) {
            Ok(s) => s,
            Err(e) => panic!("{scheme:?} refused what clear took: {e}"),
        };
        let n =
            check_fragment(&sealed.fragment).unwrap_or_else(|e| panic!("{scheme:?} fragment: {e}"));
        assert_eq!(n, samples, "{scheme:?} changed the sample count");
        check_init(&sealed.init_segment()).unwrap_or_else(|e| panic!("{scheme:?} init: {e}"));
    }
    Some(samples)
}
