//! Ad markers in HLS media playlists (`ad_markers`, MediaPackage's modes): the store reads each
//! cue the encoder sent — whatever its form — into its own tag (`#EXT-X-EDGEPACK-CUE`, with the
//! break in progress on a view's first segment); this writes the endpoint's markers from them.
//! `passthrough` leaves the encoder's tags as they were; `none` drops them; `scte35_enhanced` and
//! `daterange` write their own from the cues that are ads (`ad_triggers`,
//! `ads_on_delivery_restrictions`).

use std::fmt::Write as _;

use edgepack_store_api::cues::{self, Cue, CueEdge};
use edgepack_store_api::scte35::{self, Command, SegmentationKind, SpliceInfo};
use edgepack_store_api::write_pdt;

use crate::config::{AdMarkers, AdSettings, AdTrigger, DeliveryRestrictions};
use crate::media_playlist::Segment;

/// A break being written.
#[derive(Debug, Clone)]
struct Break {
    id: String,
    start_ms: i64,
    duration: Option<f64>,
    scte35: Option<Vec<u8>>,
}

/// Writes one playlist's markers, segment by segment in document order.
pub struct Writer<'a> {
    ads: &'a AdSettings,
    current: Option<Break>,
}

impl<'a> Writer<'a> {
    pub fn new(ads: &'a AdSettings) -> Self {
        Self { ads, current: None }
    }

    /// `EXT-X-DATERANGE` needs an `EXT-X-PROGRAM-DATE-TIME` in the playlist (RFC 8216bis 4.4.5.1).
    pub fn needs_program_date_time(&self) -> bool {
        self.ads.markers == AdMarkers::Daterange
    }

    /// Whether one of the encoder's segment tags goes out as it is.
    pub fn keeps(&self, tag: &str) -> bool {
        match self.ads.markers {
            AdMarkers::Passthrough => !tag.starts_with(cues::STORE_TAG),
            _ => !cues::is_cue_tag(tag),
        }
    }

    /// Writes the markers that go before segment `s` (after its date, before its `EXTINF`).
    pub fn before_segment(&mut self, out: &mut String, s: &Segment<'_>) {
        if matches!(self.ads.markers, AdMarkers::None | AdMarkers::Passthrough) {
            return;
        }
        let Some(pdt) = s.pdt_ms else { return };
        let cue = s.tags.iter().find_map(|t| Cue::from_store_tag(t));
        // A break whose duration ran out ends at the first segment starting after it (with the
        // segment's own return cue, if it has one).
        let returns_here = cue.as_ref().is_some_and(|c| c.edge == CueEdge::In);
        if !returns_here
            && let Some(b) = &self.current
            && let Some(d) = b.duration
            && pdt
                >= b.start_ms
                    .saturating_add((d * 1000.0).round() as i64)
                    .saturating_sub(TOLERANCE_MS)
        {
            let b = b.clone();
            self.end(out, &b, pdt, None);
        }
        let mut just_started = false;
        if let Some(cue) = cue {
            match cue.edge {
                CueEdge::Out if self.is_ad(&cue) => {
                    if let Some(b) = self.current.clone() {
                        // Overlapping breaks: the new one ends the old.
                        self.end(out, &b, pdt, None);
                    }
                    let start_ms = cue.start_ms.filter(|&st| st < pdt).unwrap_or(pdt);
                    let b = Break {
                        id: cue.id.clone().unwrap_or_else(|| start_ms.to_string()),
                        start_ms,
                        duration: cue.duration,
                        scte35: cue.scte35.clone(),
                    };
                    if start_ms == pdt {
                        self.start(out, &b, &cue);
                        just_started = true;
                    } else if self.ads.markers == AdMarkers::Daterange {
                        // Started before the window: its DATERANGE names its real start.
                        self.start(out, &b, &cue);
                        just_started = true;
                    }
                    self.current = Some(b);
                }
                CueEdge::In if self.is_ad(&cue) => {
                    if let Some(b) = self.current.clone() {
                        self.end(out, &b, pdt, cue.scte35.as_deref());
                    }
                }
                // A continuation, or a cue that is not an ad: nothing of its own.
                _ => {}
            }
        }
        if !just_started
            && self.ads.markers == AdMarkers::Scte35Enhanced
            && let Some(b) = &self.current
        {
            let _ = write!(
                out,
                "#EXT-X-CUE-OUT-CONT:ElapsedTime={:.3}",
                pdt.saturating_sub(b.start_ms) as f64 / 1000.0
            );
            if let Some(d) = b.duration {
                let _ = write!(out, ",Duration={d:.3}");
            }
            if let Some(bytes) = &b.scte35 {
                let _ = write!(out, ",SCTE35={}", scte35::to_base64(bytes));
            }
            out.push('\n');
        }
    }

    fn start(&self, out: &mut String, b: &Break, cue: &Cue) {
        match self.ads.markers {
            AdMarkers::Scte35Enhanced => {
                match b.duration {
                    Some(d) => {
                        let _ = writeln!(out, "#EXT-X-CUE-OUT:{d:.3}");
                    }
                    None => out.push_str("#EXT-X-CUE-OUT\n"),
                }
                if let Some(bytes) = &b.scte35 {
                    let _ = writeln!(out, "#EXT-OATCLS-SCTE35:{}", scte35::to_base64(bytes));
                }
                if let Some(upid) = cue
                    .splice_info()
                    .and_then(|i| i.segmentations.into_iter().find(|s| !s.upid.is_empty()))
                    .map(|s| s.upid)
                {
                    let _ = writeln!(out, "#EXT-X-ASSET:CAID={}", scte35::to_hex(&upid));
                }
            }
            AdMarkers::Daterange => {
                let _ = write!(out, "#EXT-X-DATERANGE:ID=\"{}\",START-DATE=\"", b.id);
                let _ = write_pdt(out, b.start_ms);
                out.push('"');
                if let Some(d) = b.duration {
                    let _ = write!(out, ",PLANNED-DURATION={d:.3}");
                }
                if let Some(bytes) = &b.scte35 {
                    let _ = write!(out, ",SCTE35-OUT={}", scte35::to_hex(bytes));
                }
                out.push('\n');
            }
            AdMarkers::None | AdMarkers::Passthrough => {}
        }
    }

    fn end(&mut self, out: &mut String, b: &Break, at_ms: i64, scte35_in: Option<&[u8]>) {
        match self.ads.markers {
            AdMarkers::Scte35Enhanced => out.push_str("#EXT-X-CUE-IN\n"),
            AdMarkers::Daterange => {
                let _ = write!(out, "#EXT-X-DATERANGE:ID=\"{}\",START-DATE=\"", b.id);
                let _ = write_pdt(out, b.start_ms);
                out.push_str("\",END-DATE=\"");
                let _ = write_pdt(out, at_ms);
                let _ = write!(
                    out,
                    "\",DURATION={:.3}",
                    at_ms.saturating_sub(b.start_ms) as f64 / 1000.0
                );
                if let Some(bytes) = scte35_in {
                    let _ = write!(out, ",SCTE35-IN={}", scte35::to_hex(bytes));
                }
                out.push('\n');
            }
            AdMarkers::None | AdMarkers::Passthrough => {}
        }
        self.current = None;
    }

    /// Whether a cue marks an ad break for this endpoint: a cue without its binary form is taken
    /// at the encoder's word; a binary one by its command and segmentation types.
    fn is_ad(&self, cue: &Cue) -> bool {
        match cue.splice_info() {
            None => true,
            Some(info) => is_ad(self.ads, &info),
        }
    }
}

/// A DASH event for an ad break starting in a period (`urn:scte:scte35:2014:xml+bin`).
#[derive(Debug, Clone, PartialEq)]
pub struct DashEvent {
    /// Epoch ms the break starts.
    pub start_ms: i64,
    /// Seconds, when the cue says.
    pub duration: Option<f64>,
    /// The splice event id (else the start's seconds).
    pub id: u32,
    /// The binary cue, base64.
    pub scte35_base64: String,
}

/// The ad breaks starting in `segments` (one period), and on its first segment the break it
/// starts inside of: what a DASH `EventStream` announces. Cues without their binary form cannot
/// be carried (the scheme is the binary cue) and are left out; `ad_markers: none` has none.
pub fn dash_events(ads: &AdSettings, segments: &[Segment<'_>]) -> Vec<DashEvent> {
    if ads.markers == AdMarkers::None {
        return Vec::new();
    }
    segments
        .iter()
        .filter_map(|s| {
            let cue = s.tags.iter().find_map(|t| Cue::from_store_tag(t))?;
            if cue.edge != CueEdge::Out {
                return None;
            }
            let info = cue.splice_info()?;
            if !is_ad(ads, &info) {
                return None;
            }
            let start_ms = cue.start_ms.unwrap_or(s.pdt_ms?);
            let id = match &info.command {
                Command::Insert(i) => Some(i.event_id),
                _ => info.segmentations.first().map(|g| g.event_id),
            }
            .unwrap_or((start_ms / 1000) as u32);
            Some(DashEvent {
                start_ms,
                duration: cue.duration,
                id,
                scte35_base64: scte35::to_base64(cue.scte35.as_deref()?),
            })
        })
        .collect()
}

/// Whether a new DASH period starts at `s` (`period_triggers: ["ads"]`): it carries the start
/// of an ad break (a cue [`dash_events`] announces) or a return from one.
pub fn splice_point(ads: &AdSettings, s: &Segment<'_>) -> bool {
    if !ads.periods_at_breaks || ads.markers == AdMarkers::None {
        return false;
    }
    let Some(cue) = s.tags.iter().find_map(|t| Cue::from_store_tag(t)) else {
        return false;
    };
    match cue.edge {
        // A view's first segment inside a break carries the break's start: not a splice here.
        CueEdge::Out => cue.start_ms.is_none() && cue.splice_info().is_some_and(|i| is_ad(ads, &i)),
        CueEdge::In => true,
        CueEdge::Cont => false,
    }
}

/// Segment times are rounded by encoders: a break of 30 s ends at a segment starting 29.9 s in.
const TOLERANCE_MS: i64 = 100;

fn is_ad(ads: &AdSettings, info: &SpliceInfo) -> bool {
    match &info.command {
        Command::Insert(_) => ads.triggers.contains(&AdTrigger::SpliceInsert),
        Command::TimeSignal { .. } => info.segmentations.iter().any(|s| {
            let Some((kind, _)) = s.kind() else {
                return false;
            };
            let restricted = s.restrictions.is_some();
            let allowed = match ads.on_delivery_restrictions {
                DeliveryRestrictions::None => false,
                DeliveryRestrictions::Restricted => restricted,
                DeliveryRestrictions::Unrestricted => !restricted,
                DeliveryRestrictions::Both => true,
            };
            allowed && ads.triggers.contains(&trigger(kind))
        }),
        Command::Null | Command::Other(_) => false,
    }
}

fn trigger(kind: SegmentationKind) -> AdTrigger {
    match kind {
        SegmentationKind::Program => AdTrigger::Program,
        SegmentationKind::Break => AdTrigger::Break,
        SegmentationKind::ProviderAdvertisement => AdTrigger::ProviderAdvertisement,
        SegmentationKind::DistributorAdvertisement => AdTrigger::DistributorAdvertisement,
        SegmentationKind::ProviderPlacementOpportunity => AdTrigger::ProviderPlacementOpportunity,
        SegmentationKind::DistributorPlacementOpportunity => {
            AdTrigger::DistributorPlacementOpportunity
        }
        SegmentationKind::ProviderOverlayPlacementOpportunity => {
            AdTrigger::ProviderOverlayPlacementOpportunity
        }
        SegmentationKind::DistributorOverlayPlacementOpportunity => {
            AdTrigger::DistributorOverlayPlacementOpportunity
        }
    }
}

#[cfg(test)]
mod tests {
    use edgepack_store_api::cues::{Cue, CueEdge};
    use edgepack_store_api::format_pdt;

    use crate::config::Settings;
    use crate::media_playlist;
    use crate::media_rewrite;
    use crate::playlist_window::PlaylistType;

    /// SCTE 35 2023r1 14.2: splice_insert, out of network, 60.3 s.
    const INSERT: &str = "/DAvAAAAAAAA///wFAVIAACPf+/+c2nALv4AUsz1AAAAAAAKAAhDVUVJAAABNWLbowo=";
    /// 14.1: time_signal, provider placement opportunity start, delivery restricted.
    const PLACEMENT: &str =
        "/DA0AAAAAAAA///wBQb+cr0AUAAeAhxDVUVJSAAAjn/PAAGlmbAICAAAAAAsoKGKNAIAmsnRfg==";
    const T0: i64 = 1_795_617_000_000;

    /// A store view of ten 2 s segments; `cues[i]` on segment i.
    fn view(cues: &[(usize, Cue)], encoder_tags: &[(usize, &str)]) -> String {
        let mut s = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n");
        for i in 0..10 {
            s.push_str(&format!(
                "#EXT-X-PROGRAM-DATE-TIME:{}\n",
                format_pdt(T0 + i as i64 * 2000)
            ));
            for (_, t) in encoder_tags.iter().filter(|(at, _)| *at == i) {
                s.push_str(t);
                s.push('\n');
            }
            for (_, c) in cues.iter().filter(|(at, _)| *at == i) {
                s.push_str(&c.store_tag());
                s.push('\n');
            }
            s.push_str(&format!("#EXTINF:2.000,\n{i}.ts\n"));
        }
        s
    }

    fn cue(edge: CueEdge, duration: Option<f64>, b64: Option<&str>) -> Cue {
        Cue {
            edge,
            id: Some("ad-1".into()),
            duration,
            scte35: b64.map(|b| edgepack_store_api::scte35::decode_text(b).unwrap()),
            start_ms: None,
        }
    }

    fn render(mode: &str, extra: &str, text: &str) -> String {
        let json = format!(
            r#"{{"store":{{"cluster":"s"}},"channels":{{"news":{{"endpoints":{{"e":{{"format":"hls","ad_markers":"{mode}"{extra}}}}}}}}}}}"#
        );
        let settings = Settings::from_json(json.as_bytes()).unwrap();
        let ep = &settings.channels["news"]["e"];
        let pl = media_playlist::parse(text.as_bytes()).unwrap();
        media_rewrite::write(&pl, 0..pl.segments.len(), PlaylistType::Live, ep, T0).unwrap()
    }

    fn lines_before(out: &str, uri: &str) -> Vec<String> {
        let lines: Vec<&str> = out.lines().collect();
        let at = lines.iter().position(|l| *l == uri).unwrap();
        let start = lines[..at - 1]
            .iter()
            .rposition(|l| l.ends_with(".ts"))
            .map_or(0, |p| p + 1);
        lines[start..at - 1]
            .iter()
            .filter(|l| {
                ![
                    "#EXTM3U",
                    "#EXT-X-VERSION",
                    "#EXT-X-TARGETDURATION",
                    "#EXT-X-MEDIA-SEQUENCE",
                    "#EXT-X-DISCONTINUITY-SEQUENCE",
                    "#EXT-X-PROGRAM-DATE-TIME",
                    "#EXT-X-KEY",
                ]
                .iter()
                .any(|h| l.starts_with(h))
            })
            .map(|l| l.to_string())
            .collect()
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn scte35_enhanced_marks_out_cont_and_in() {
        let text = view(
            &[
                (2, cue(CueEdge::Out, Some(6.0), Some(INSERT))),
                (5, cue(CueEdge::In, None, None)),
            ],
            &[(2, "#EXT-X-CUE-OUT:6"), (5, "#EXT-X-CUE-IN")],
        );
        let out = render("scte35_enhanced", "", &text);
        assert_eq!(
            lines_before(&out, "2.ts"),
            [
                "#EXT-X-CUE-OUT:6.000".to_owned(),
                format!("#EXT-OATCLS-SCTE35:{INSERT}"),
            ]
        );
        assert_eq!(
            lines_before(&out, "3.ts"),
            [format!(
                "#EXT-X-CUE-OUT-CONT:ElapsedTime=2.000,Duration=6.000,SCTE35={INSERT}"
            )]
        );
        assert!(lines_before(&out, "4.ts")[0].contains("ElapsedTime=4.000"));
        assert_eq!(lines_before(&out, "5.ts"), ["#EXT-X-CUE-IN"]);
        assert!(lines_before(&out, "6.ts").is_empty());
        assert!(
            !out.contains("EDGEPACK"),
            "the store's tag never reaches viewers: {out}"
        );
        assert_eq!(
            out.matches("#EXT-X-CUE-OUT:").count(),
            1,
            "the encoder's tag is replaced"
        );
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn a_break_without_its_in_ends_with_its_duration_and_a_window_can_start_inside_one() {
        // The window starts 4 s into a 6 s break (the store's tag on the first segment).
        let started = Cue {
            start_ms: Some(T0 - 4000),
            ..cue(CueEdge::Out, Some(6.0), None)
        };
        let text = view(&[(0, started)], &[]);
        let out = render("scte35_enhanced", "", &text);
        assert_eq!(
            lines_before(&out, "0.ts"),
            ["#EXT-X-CUE-OUT-CONT:ElapsedTime=4.000,Duration=6.000"]
        );
        assert_eq!(
            lines_before(&out, "1.ts"),
            ["#EXT-X-CUE-IN"],
            "6 s after its start"
        );
        let out = render("daterange", "", &text);
        let start = format_pdt(T0 - 4000);
        assert_eq!(
            lines_before(&out, "0.ts"),
            [format!(
                "#EXT-X-DATERANGE:ID=\"ad-1\",START-DATE=\"{start}\",PLANNED-DURATION=6.000"
            )]
        );
        assert_eq!(
            lines_before(&out, "1.ts"),
            [format!(
                "#EXT-X-DATERANGE:ID=\"ad-1\",START-DATE=\"{start}\",END-DATE=\"{}\",DURATION=6.000",
                format_pdt(T0 + 2000)
            )]
        );
        assert!(
            out.contains("#EXT-X-PROGRAM-DATE-TIME:"),
            "DATERANGE needs a date: {out}"
        );
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn daterange_none_and_passthrough() {
        let text = view(
            &[
                (2, cue(CueEdge::Out, Some(30.0), Some(INSERT))),
                (4, cue(CueEdge::In, None, None)),
            ],
            &[
                (2, "#EXT-X-CUE-OUT:30"),
                (4, "#EXT-X-CUE-IN"),
                (3, "#EXT-X-COMMENT-OF-MY-OWN"),
            ],
        );
        let out = render("daterange", "", &text);
        let hex = edgepack_store_api::scte35::to_hex(
            &edgepack_store_api::scte35::decode_text(INSERT).unwrap(),
        );
        assert_eq!(
            lines_before(&out, "2.ts"),
            [format!(
                "#EXT-X-DATERANGE:ID=\"ad-1\",START-DATE=\"{}\",PLANNED-DURATION=30.000,SCTE35-OUT={hex}",
                format_pdt(T0 + 4000)
            )]
        );
        assert!(
            lines_before(&out, "4.ts")[0].contains("END-DATE=")
                && lines_before(&out, "4.ts")[0].contains("DURATION=4.000")
        );
        assert_eq!(
            lines_before(&out, "3.ts"),
            ["#EXT-X-COMMENT-OF-MY-OWN"],
            "other tags pass"
        );
        let none = render("none", "", &text);
        assert!(
            !none.contains("CUE") && !none.contains("DATERANGE") && !none.contains("EDGEPACK"),
            "{none}"
        );
        assert!(none.contains("#EXT-X-COMMENT-OF-MY-OWN"));
        let pass = render("passthrough", "", &text);
        assert_eq!(lines_before(&pass, "2.ts"), ["#EXT-X-CUE-OUT:30"]);
        assert_eq!(lines_before(&pass, "4.ts"), ["#EXT-X-CUE-IN"]);
        assert!(!pass.contains("EDGEPACK"));
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn ad_triggers_and_delivery_restrictions_choose_which_cues_are_ads() {
        let text = view(&[(2, cue(CueEdge::Out, Some(4.0), Some(PLACEMENT)))], &[]);
        // A restricted provider placement opportunity: an ad by default.
        let out = render("scte35_enhanced", "", &text);
        assert_eq!(lines_before(&out, "2.ts")[0], "#EXT-X-CUE-OUT:4.000");
        assert_eq!(
            lines_before(&out, "2.ts")[2],
            "#EXT-X-ASSET:CAID=0x000000002CA0A18A",
            "the segmentation UPID"
        );
        for extra in [
            r#","ads_on_delivery_restrictions":"unrestricted""#,
            r#","ads_on_delivery_restrictions":"none""#,
            r#","ad_triggers":["splice_insert","break"]"#,
        ] {
            let out = render("scte35_enhanced", extra, &text);
            assert!(!out.contains("CUE-OUT"), "{extra}: {out}");
        }
        let both = render(
            "scte35_enhanced",
            r#","ads_on_delivery_restrictions":"both""#,
            &text,
        );
        assert!(both.contains("#EXT-X-CUE-OUT:4.000"));
        let insert = view(&[(2, cue(CueEdge::Out, Some(4.0), Some(INSERT)))], &[]);
        let out = render(
            "daterange",
            r#","ad_triggers":["provider_advertisement"]"#,
            &insert,
        );
        assert!(
            !out.contains("DATERANGE"),
            "splice_insert is not a trigger here: {out}"
        );
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn dash_events_carry_the_binary_cues_that_are_ads() {
        let settings = |mode: &str| {
            let json = format!(
                r#"{{"store":{{"cluster":"s"}},"channels":{{"news":{{"endpoints":{{"e":{{"format":"dash","ad_markers":"{mode}"}}}}}}}}}}"#
            );
            Settings::from_json(json.as_bytes()).unwrap()
        };
        let in_progress = Cue {
            start_ms: Some(T0 - 4000),
            ..cue(CueEdge::Out, Some(6.0), Some(INSERT))
        };
        let text = view(
            &[
                (0, in_progress),
                (3, cue(CueEdge::Out, None, None)),
                (5, cue(CueEdge::Out, Some(2.0), Some(PLACEMENT))),
            ],
            &[],
        );
        let pl = media_playlist::parse(text.as_bytes()).unwrap();
        let s = settings("passthrough");
        let events = super::dash_events(&s.channels["news"]["e"].ads, &pl.segments);
        assert_eq!(
            events.len(),
            2,
            "a cue without its binary form is left out: {events:?}"
        );
        assert_eq!(events[0].start_ms, T0 - 4000);
        assert_eq!(events[0].id, 0x4800_008f);
        assert_eq!(events[0].scte35_base64, INSERT);
        assert_eq!(events[1].start_ms, T0 + 10_000);
        assert_eq!(events[1].id, 0x4800_008e, "the segmentation event id");
        let none = settings("none");
        assert!(super::dash_events(&none.channels["news"]["e"].ads, &pl.segments).is_empty());
    }
}
