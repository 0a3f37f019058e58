//! Ad markers: the cue a segment's tags carry, whichever way the encoder wrote it
//! (`EXT-X-CUE-OUT`/`-CONT`/`-IN` with `EXT-OATCLS-SCTE35`, `EXT-X-DATERANGE` with
//! `SCTE35-OUT`/`-IN`/`-CMD`, `EXT-X-SCTE35`), normalized to one [`Cue`]; and the store's own tag
//! for it in a view (`#EXT-X-EDGEPACK-CUE`), which the filter turns into the endpoint's markers.

use crate::parse::attribute;
use crate::scte35::{self, Command, Edge as SegEdge, SpliceInfo};

/// Where a cue stands in a break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CueEdge {
    /// A break starts at this segment.
    Out,
    /// The segment is inside a break (the encoder repeats its cue).
    Cont,
    /// The break ends at this segment.
    In,
}

impl CueEdge {
    fn as_str(self) -> &'static str {
        match self {
            CueEdge::Out => "OUT",
            CueEdge::Cont => "CONT",
            CueEdge::In => "IN",
        }
    }
}

/// A segment's cue.
#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    pub edge: CueEdge,
    /// The break's id: the `EXT-X-DATERANGE` ID, else the SCTE-35 event id, else none.
    pub id: Option<String>,
    /// The break's duration in seconds, when the cue says it.
    pub duration: Option<f64>,
    /// The binary `splice_info_section`, when the encoder sent one.
    pub scte35: Option<Vec<u8>>,
    /// Epoch ms the break started (the store's tag, for a view that starts inside a break).
    pub start_ms: Option<i64>,
}

impl Cue {
    fn new(edge: CueEdge) -> Self {
        Cue {
            edge,
            id: None,
            duration: None,
            scte35: None,
            start_ms: None,
        }
    }

    /// The decoded binary cue, if there is one and it reads.
    pub fn splice_info(&self) -> Option<SpliceInfo> {
        scte35::parse(self.scte35.as_deref()?).ok()
    }

    /// `#EXT-X-EDGEPACK-CUE:EDGE=OUT,ID="…",DURATION=…,START=…,SCTE35=0x…` (the store's tag).
    pub fn store_tag(&self) -> String {
        let mut s = format!("{}:EDGE={}", STORE_TAG, self.edge.as_str());
        if let Some(id) = &self.id {
            // Quotes and line breaks cannot be in a quoted attribute: they are dropped.
            let id: String = id
                .chars()
                .filter(|c| *c != '"' && *c != '\n' && *c != '\r')
                .collect();
            s.push_str(&format!(",ID=\"{id}\""));
        }
        if let Some(d) = self.duration {
            s.push_str(&format!(",DURATION={d:.3}"));
        }
        if let Some(ms) = self.start_ms {
            s.push_str(&format!(",START={ms}"));
        }
        if let Some(b) = &self.scte35 {
            s.push_str(&format!(",SCTE35={}", scte35::to_hex(b)));
        }
        s
    }

    /// Reads the store's tag back (`None`: not the store's tag, or unreadable).
    pub fn from_store_tag(tag: &str) -> Option<Cue> {
        let value = tag.strip_prefix(STORE_TAG)?.strip_prefix(':')?;
        let edge = match attribute(value, "EDGE")? {
            "OUT" => CueEdge::Out,
            "CONT" => CueEdge::Cont,
            "IN" => CueEdge::In,
            _ => return None,
        };
        Some(Cue {
            edge,
            id: attribute(value, "ID").map(|v| v.trim_matches('"').to_owned()),
            duration: attribute(value, "DURATION").and_then(seconds),
            start_ms: attribute(value, "START").and_then(|d| d.parse().ok()),
            scte35: attribute(value, "SCTE35").and_then(|h| scte35::decode_text(h).ok()),
        })
    }
}

/// The store's cue tag in a view. Never shown to viewers.
pub const STORE_TAG: &str = "#EXT-X-EDGEPACK-CUE";

/// The tags an encoder marks breaks with, and the store's own: an endpoint with
/// `ad_markers` other than `passthrough` drops them all and writes its own.
pub fn is_cue_tag(tag: &str) -> bool {
    let name = tag.split(':').next().unwrap_or(tag);
    matches!(
        name,
        "#EXT-X-CUE-OUT"
            | "#EXT-X-CUE-OUT-CONT"
            | "#EXT-X-CUE-IN"
            | "#EXT-X-CUE"
            | "#EXT-OATCLS-SCTE35"
            | "#EXT-X-ASSET"
            | "#EXT-X-SCTE35"
            | STORE_TAG
    ) || (name == "#EXT-X-DATERANGE" && tag.contains("SCTE35-"))
}

/// The cue a segment's tags carry, if any (the first break edge found; an `EXT-OATCLS-SCTE35`
/// beside an `EXT-X-CUE-OUT` gives it its binary cue).
pub fn from_tags<'t>(tags: impl IntoIterator<Item = &'t str>) -> Option<Cue> {
    let mut cue: Option<Cue> = None;
    let mut oatcls: Option<Vec<u8>> = None;
    for tag in tags {
        let (name, value) = tag.split_once(':').unwrap_or((tag, ""));
        let found = match name {
            "#EXT-X-CUE-OUT" => Some(cue_out(value)),
            "#EXT-X-CUE-OUT-CONT" => Some(cue_out_cont(value)),
            "#EXT-X-CUE-IN" => Some(Cue::new(CueEdge::In)),
            "#EXT-OATCLS-SCTE35" => {
                oatcls = scte35::decode_text(value).ok();
                None
            }
            "#EXT-X-DATERANGE" => daterange(value),
            "#EXT-X-SCTE35" => ext_x_scte35(value),
            _ => None,
        };
        if cue.is_none() {
            cue = found;
        }
    }
    let mut cue = cue?;
    if cue.scte35.is_none() && cue.edge == CueEdge::Out {
        cue.scte35 = oatcls;
    }
    fill_from_binary(&mut cue);
    Some(cue)
}

/// What the binary cue adds: the event id and break duration where the tags did not say them.
fn fill_from_binary(cue: &mut Cue) {
    let Some(info) = cue.splice_info() else {
        return;
    };
    let (id, duration) = match &info.command {
        Command::Insert(s) => (Some(s.event_id), s.duration),
        _ => info
            .segmentations
            .first()
            .map_or((None, None), |s| (Some(s.event_id), s.duration)),
    };
    if cue.id.is_none() {
        cue.id = id.map(|i| i.to_string());
    }
    if cue.duration.is_none() {
        cue.duration = duration
            .map(|d| d as f64 / 90_000.0)
            .filter(|d| *d <= MAX_BREAK_SECONDS);
    }
}

/// The edge a binary cue marks: a splice_insert out of network or a segmentation start is a
/// break's start, the opposite its end.
fn edge_of_binary(bytes: &[u8]) -> Option<CueEdge> {
    let info = scte35::parse(bytes).ok()?;
    match &info.command {
        Command::Insert(s) if !s.cancel => Some(if s.out_of_network {
            CueEdge::Out
        } else {
            CueEdge::In
        }),
        Command::TimeSignal { .. } => info.segmentations.iter().find_map(|s| {
            s.kind().map(|(_, edge)| match edge {
                SegEdge::Start => CueEdge::Out,
                SegEdge::End => CueEdge::In,
            })
        }),
        _ => None,
    }
}

/// `EXT-X-CUE-OUT:30`, `EXT-X-CUE-OUT:30.000`, `EXT-X-CUE-OUT:DURATION=30`, `EXT-X-CUE-OUT`.
fn cue_out(value: &str) -> Cue {
    let mut c = Cue::new(CueEdge::Out);
    c.duration = seconds(attribute(value, "DURATION").unwrap_or(value));
    c
}

/// `EXT-X-CUE-OUT-CONT:ElapsedTime=2.0,Duration=30,SCTE35=…` or `EXT-X-CUE-OUT-CONT:2/30`.
fn cue_out_cont(value: &str) -> Cue {
    let mut c = Cue::new(CueEdge::Cont);
    c.duration = attribute(value, "Duration")
        .or_else(|| value.split_once('/').map(|(_, d)| d))
        .and_then(seconds);
    c.scte35 = attribute(value, "SCTE35").and_then(|b| scte35::decode_text(b).ok());
    c
}

/// `EXT-X-DATERANGE` with `SCTE35-OUT`, `SCTE35-IN` or `SCTE35-CMD` (others are not cues).
fn daterange(value: &str) -> Option<Cue> {
    let (edge, bytes) = if let Some(hex) = attribute(value, "SCTE35-OUT") {
        (Some(CueEdge::Out), scte35::decode_text(hex).ok())
    } else if let Some(hex) = attribute(value, "SCTE35-IN") {
        (Some(CueEdge::In), scte35::decode_text(hex).ok())
    } else {
        let bytes = scte35::decode_text(attribute(value, "SCTE35-CMD")?).ok();
        (bytes.as_deref().and_then(edge_of_binary), bytes)
    };
    let mut c = Cue::new(edge?);
    c.id = attribute(value, "ID").map(|v| v.trim_matches('"').to_owned());
    c.duration = attribute(value, "PLANNED-DURATION")
        .or_else(|| attribute(value, "DURATION"))
        .and_then(seconds);
    c.scte35 = bytes;
    Some(c)
}

/// `EXT-X-SCTE35:CUE="base64",ID=…,DURATION=…,CUE-OUT=YES|CUE-IN=YES|CUE-OUT-CONT=YES`; with no
/// edge attribute, the binary cue says which.
fn ext_x_scte35(value: &str) -> Option<Cue> {
    let bytes = attribute(value, "CUE").and_then(|b| scte35::decode_text(b).ok());
    let yes = |k| attribute(value, k) == Some("YES");
    let edge = if yes("CUE-OUT") {
        CueEdge::Out
    } else if yes("CUE-IN") {
        CueEdge::In
    } else if yes("CUE-OUT-CONT") {
        CueEdge::Cont
    } else {
        bytes.as_deref().and_then(edge_of_binary)?
    };
    let mut c = Cue::new(edge);
    c.id = attribute(value, "ID").map(|v| v.trim_matches('"').to_owned());
    c.duration = attribute(value, "DURATION").and_then(seconds);
    c.scte35 = bytes;
    Some(c)
}

/// The longest break a cue may announce (a day); longer, NaN or negative durations are ignored.
pub const MAX_BREAK_SECONDS: f64 = 86_400.0;

/// A break duration in seconds, if it is one.
fn seconds(text: &str) -> Option<f64> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|d| d.is_finite() && (0.0..=MAX_BREAK_SECONDS).contains(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSERT_B64: &str = "/DAvAAAAAAAA///wFAVIAACPf+/+c2nALv4AUsz1AAAAAAAKAAhDVUVJAAABNWLbowo=";

    fn cue(tags: &[&str]) -> Option<Cue> {
        from_tags(tags.iter().copied())
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn every_way_encoders_mark_a_break_reads_as_one_cue() {
        let out = cue(&["#EXT-X-CUE-OUT:30.000"]).unwrap();
        assert_eq!((out.edge, out.duration), (CueEdge::Out, Some(30.0)));
        assert_eq!(
            cue(&["#EXT-X-CUE-OUT:DURATION=15"]).unwrap().duration,
            Some(15.0)
        );
        assert_eq!(cue(&["#EXT-X-CUE-OUT"]).unwrap().duration, None);
        let with_binary = cue(&["#EXT-OATCLS-SCTE35:".to_owned() + INSERT_B64]
            .iter()
            .map(String::as_str)
            .chain(["#EXT-X-CUE-OUT:60"])
            .collect::<Vec<_>>())
        .unwrap();
        assert_eq!(
            with_binary.id.as_deref(),
            Some("1207959695"),
            "the event id"
        );
        assert!(with_binary.scte35.is_some());
        let cont = cue(&["#EXT-X-CUE-OUT-CONT:ElapsedTime=4.0,Duration=30,SCTE35=/DAv"]).unwrap();
        assert_eq!((cont.edge, cont.duration), (CueEdge::Cont, Some(30.0)));
        assert_eq!(
            cue(&["#EXT-X-CUE-OUT-CONT:4/30"]).unwrap().duration,
            Some(30.0)
        );
        assert_eq!(cue(&["#EXT-X-CUE-IN"]).unwrap().edge, CueEdge::In);
        let hex = scte35::to_hex(&scte35::decode_text(INSERT_B64).unwrap());
        let dr = cue(&[&format!(
            "#EXT-X-DATERANGE:ID=\"splice-6FFFFFF0\",START-DATE=\"2014-03-05T11:15:00Z\",PLANNED-DURATION=59.993,SCTE35-OUT={hex}"
        )])
        .unwrap();
        assert_eq!(dr.edge, CueEdge::Out);
        assert_eq!(dr.id.as_deref(), Some("splice-6FFFFFF0"));
        assert_eq!(dr.duration, Some(59.993));
        let cmd = cue(&[&format!(
            "#EXT-X-DATERANGE:ID=\"x\",START-DATE=\"2014-03-05T11:15:00Z\",SCTE35-CMD={hex}"
        )])
        .unwrap();
        assert_eq!(cmd.edge, CueEdge::Out, "a splice_insert out of network");
        assert_eq!(
            cue(&["#EXT-X-DATERANGE:ID=\"x\",START-DATE=\"2014-03-05T11:15:00Z\",SCTE35-IN=0xFC"])
                .unwrap()
                .edge,
            CueEdge::In
        );
        assert_eq!(
            cue(&["#EXT-X-DATERANGE:ID=\"chapter\",START-DATE=\"2014-03-05T11:15:00Z\""]),
            None
        );
        let adobe = cue(&[&format!("#EXT-X-SCTE35:CUE=\"{INSERT_B64}\",ID=\"7\"")]).unwrap();
        assert_eq!((adobe.edge, adobe.id.as_deref()), (CueEdge::Out, Some("7")));
        assert!((adobe.duration.unwrap() - 60.3).abs() < 0.01, "{adobe:?}");
        assert_eq!(
            cue(&["#EXT-X-CUE-IN-THE-OTHER", "#EXT-X-KEY:METHOD=NONE"]),
            None
        );
        // Found by fuzzing: a duration past a day (or not a number) is no duration.
        for d in ["1e300", "inf", "NaN", "-5", "86400.5"] {
            assert_eq!(
                cue(&[&format!("#EXT-X-CUE-OUT:{d}")]).unwrap().duration,
                None,
                "{d}"
            );
        }
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn the_store_tag_reads_back() {
        let c = Cue {
            edge: CueEdge::Out,
            id: Some("ad \"1\"".into()),
            duration: Some(30.0),
            scte35: scte35::decode_text(INSERT_B64).ok(),
            start_ms: Some(1_795_617_000_000),
        };
        let tag = c.store_tag();
        assert!(is_cue_tag(&tag));
        let back = Cue::from_store_tag(&tag).unwrap();
        assert_eq!(
            back,
            Cue {
                id: Some("ad 1".into()),
                ..c
            }
        );
        for tag in [
            "#EXT-X-CUE-OUT:30",
            "#EXT-X-CUE-IN",
            "#EXT-OATCLS-SCTE35:/DA",
            "#EXT-X-ASSET:CAID=0x1",
        ] {
            assert!(is_cue_tag(tag), "{tag}");
        }
        assert!(!is_cue_tag(
            "#EXT-X-DATERANGE:ID=\"chapter\",START-DATE=\"2014-03-05T11:15:00Z\""
        ));
        assert!(!is_cue_tag("#EXT-X-KEY:METHOD=NONE"));
        assert_eq!(
            Cue::from_store_tag("#EXT-X-EDGEPACK-CUE:EDGE=SIDEWAYS"),
            None
        );
    }
}
