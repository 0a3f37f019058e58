//! SCTE-35 (ANSI/SCTE 35 2023r1) `splice_info_section`: the binary cue encoders put in HLS tags
//! (base64 or `0x` hex) and in an MPEG-TS stream. Only reading: what a cue says (command, event,
//! times, segmentation descriptors), with its CRC checked. The bytes themselves travel unchanged.

use thiserror::Error;

/// A cue that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Scte35Error {
    #[error("SCTE-35 cue is truncated: {0}")]
    Truncated(&'static str),
    #[error("not a SCTE-35 splice_info_section (table_id 0x{0:02x}, expected 0xfc)")]
    NotASpliceInfo(u8),
    #[error("SCTE-35 cue fails its CRC-32 (computed 0x{computed:08x}, carried 0x{carried:08x})")]
    BadCrc { computed: u32, carried: u32 },
    #[error("SCTE-35 cue is encrypted (encrypted_packet = 1): its command cannot be read")]
    Encrypted,
    #[error("SCTE-35 cue is neither base64 nor 0x-hex")]
    NotEncoded,
}

/// A read `splice_info_section`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpliceInfo {
    /// 90 kHz, added to every `pts_time` of the cue.
    pub pts_adjustment: u64,
    pub tier: u16,
    pub command: Command,
    /// The segmentation descriptors (`CUEI`, tag 2); other descriptors are skipped.
    pub segmentations: Vec<Segmentation>,
}

/// The splice command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Null,
    Insert(SpliceInsert),
    /// `time_signal`: the time its segmentation descriptors apply at (90 kHz, adjusted).
    TimeSignal {
        pts: Option<u64>,
    },
    /// `splice_schedule`, `bandwidth_reservation`, `private_command` or unknown: the type.
    Other(u8),
}

/// `splice_insert`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpliceInsert {
    pub event_id: u32,
    pub cancel: bool,
    /// A break starts (out of the network) rather than ends.
    pub out_of_network: bool,
    pub immediate: bool,
    /// Splice time (90 kHz, adjusted), unless immediate or per component.
    pub pts: Option<u64>,
    /// Break duration (90 kHz).
    pub duration: Option<u64>,
    pub auto_return: bool,
    pub unique_program_id: u16,
    pub avail_num: u8,
    pub avails_expected: u8,
}

/// A segmentation descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segmentation {
    pub event_id: u32,
    pub cancel: bool,
    /// `segmentation_type_id` (0x30 provider advertisement start, 0x22 break start, …).
    pub type_id: u8,
    /// 90 kHz.
    pub duration: Option<u64>,
    /// `None`: delivery not restricted; else the restriction flags.
    pub restrictions: Option<Restrictions>,
    pub upid_type: u8,
    pub upid: Vec<u8>,
    pub segment_num: u8,
    pub segments_expected: u8,
}

/// Delivery restrictions of a segmentation descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restrictions {
    pub web_delivery_allowed: bool,
    pub no_regional_blackout: bool,
    pub archive_allowed: bool,
    pub device_restrictions: u8,
}

impl Segmentation {
    /// What the type id marks, as MediaPackage's ad triggers name them.
    pub fn kind(&self) -> Option<(SegmentationKind, Edge)> {
        use SegmentationKind::*;
        let kind = match self.type_id {
            0x10 | 0x11 => Program,
            0x22 | 0x23 => Break,
            0x30 | 0x31 => ProviderAdvertisement,
            0x32 | 0x33 => DistributorAdvertisement,
            0x34 | 0x35 => ProviderPlacementOpportunity,
            0x36 | 0x37 => DistributorPlacementOpportunity,
            0x38 | 0x39 => ProviderOverlayPlacementOpportunity,
            0x3a | 0x3b => DistributorOverlayPlacementOpportunity,
            _ => return None,
        };
        // Start ids are even, end ids odd, in every pair above.
        let edge = if self.type_id.is_multiple_of(2) {
            Edge::Start
        } else {
            Edge::End
        };
        Some((kind, edge))
    }
}

/// Segmentation types that can mark an ad break (MediaPackage's `AdTriggers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentationKind {
    Program,
    Break,
    ProviderAdvertisement,
    DistributorAdvertisement,
    ProviderPlacementOpportunity,
    DistributorPlacementOpportunity,
    ProviderOverlayPlacementOpportunity,
    DistributorOverlayPlacementOpportunity,
}

/// The start or the end of a segmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    Start,
    End,
}

/// CRC-32/MPEG-2 (polynomial 0x04C11DB7, initial 0xFFFFFFFF, not reflected, no final XOR).
pub fn crc32_mpeg2(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The bytes of a cue as HLS tags carry it: `0x`-prefixed hex (`EXT-X-DATERANGE`) or base64
/// (`EXT-X-CUE-OUT-CONT`, `EXT-OATCLS-SCTE35`, `EXT-X-SCTE35`), quoted or not.
pub fn decode_text(text: &str) -> Result<Vec<u8>, Scte35Error> {
    let text = text.trim().trim_matches('"');
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        if !hex.len().is_multiple_of(2) {
            return Err(Scte35Error::NotEncoded);
        }
        return (0..hex.len())
            .step_by(2)
            .map(|i| {
                hex.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or(Scte35Error::NotEncoded)
            })
            .collect();
    }
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| Scte35Error::NotEncoded)
}

/// The cue as `EXT-X-DATERANGE` writes it: `0x` and upper-case hex.
pub fn to_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 + bytes.len() * 2);
    s.push_str("0x");
    for b in bytes {
        s.push_str(&format!("{b:02X}"));
    }
    s
}

/// The cue in base64, as `EXT-OATCLS-SCTE35` and `EXT-X-CUE-OUT-CONT` write it.
pub fn to_base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A bit reader over a byte slice; every read past the end is an error naming the field.
struct Bits<'a> {
    bytes: &'a [u8],
    bit: usize,
}

impl<'a> Bits<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, bit: 0 }
    }

    fn read(&mut self, n: usize, field: &'static str) -> Result<u64, Scte35Error> {
        if self.bit + n > self.bytes.len() * 8 {
            return Err(Scte35Error::Truncated(field));
        }
        let mut v = 0u64;
        for _ in 0..n {
            let byte = self.bytes[self.bit / 8];
            v = (v << 1) | u64::from((byte >> (7 - self.bit % 8)) & 1);
            self.bit += 1;
        }
        Ok(v)
    }

    fn flag(&mut self, field: &'static str) -> Result<bool, Scte35Error> {
        Ok(self.read(1, field)? == 1)
    }

    fn skip(&mut self, n: usize, field: &'static str) -> Result<(), Scte35Error> {
        if self.bit + n > self.bytes.len() * 8 {
            return Err(Scte35Error::Truncated(field));
        }
        self.bit += n;
        Ok(())
    }

    /// The next `n` whole bytes (the reader is byte-aligned where this is called).
    fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], Scte35Error> {
        let start = self.bit / 8;
        let slice = self
            .bytes
            .get(start..start + n)
            .ok_or(Scte35Error::Truncated(field))?;
        self.bit += n * 8;
        Ok(slice)
    }
}

const PTS_MASK: u64 = (1 << 33) - 1;

/// Reads a `splice_info_section`, checking its CRC.
pub fn parse(bytes: &[u8]) -> Result<SpliceInfo, Scte35Error> {
    let table_id = *bytes.first().ok_or(Scte35Error::Truncated("table_id"))?;
    if table_id != 0xfc {
        return Err(Scte35Error::NotASpliceInfo(table_id));
    }
    let mut b = Bits::new(bytes);
    b.skip(8, "table_id")?;
    b.skip(4, "section_syntax_indicator")?;
    let section_length = b.read(12, "section_length")? as usize;
    let total = 3 + section_length;
    let section = bytes
        .get(..total)
        .ok_or(Scte35Error::Truncated("the section's length"))?;
    if section.len() < 4 + 11 {
        return Err(Scte35Error::Truncated("the section's header"));
    }
    let carried = u32::from_be_bytes([
        section[total - 4],
        section[total - 3],
        section[total - 2],
        section[total - 1],
    ]);
    let computed = crc32_mpeg2(&section[..total - 4]);
    if computed != carried {
        return Err(Scte35Error::BadCrc { computed, carried });
    }
    let mut b = Bits::new(&section[..total - 4]);
    b.skip(24, "table_id")?;
    b.skip(8, "protocol_version")?;
    if b.flag("encrypted_packet")? {
        return Err(Scte35Error::Encrypted);
    }
    b.skip(6, "encryption_algorithm")?;
    let pts_adjustment = b.read(33, "pts_adjustment")?;
    b.skip(8, "cw_index")?;
    let tier = b.read(12, "tier")? as u16;
    let command_length = b.read(12, "splice_command_length")? as usize;
    let command_type = b.read(8, "splice_command_type")? as u8;
    let adjust = |pts: u64| (pts + pts_adjustment) & PTS_MASK;
    let command_start = b.bit / 8;
    let command = match command_type {
        0x00 => Command::Null,
        0x05 => Command::Insert(splice_insert(&mut b, &adjust)?),
        0x06 => Command::TimeSignal {
            pts: splice_time(&mut b)?.map(adjust),
        },
        other => Command::Other(other),
    };
    // The descriptors follow the command: its declared length, where it says one (0xFFF: the
    // legacy "unknown", where the command's own fields end).
    let after_command = if command_length == 0xfff {
        b.bit.div_ceil(8)
    } else {
        command_start + command_length
    };
    let mut b = Bits::new(section.get(..total - 4).unwrap_or_default());
    b.bit = after_command * 8;
    let loop_length = b.read(16, "descriptor_loop_length")? as usize;
    let descriptors = b.bytes(loop_length, "the descriptor loop")?;
    Ok(SpliceInfo {
        pts_adjustment,
        tier,
        command,
        segmentations: segmentations(descriptors)?,
    })
}

fn splice_time(b: &mut Bits<'_>) -> Result<Option<u64>, Scte35Error> {
    if b.flag("time_specified_flag")? {
        b.skip(6, "splice_time reserved")?;
        Ok(Some(b.read(33, "pts_time")?))
    } else {
        b.skip(7, "splice_time reserved")?;
        Ok(None)
    }
}

fn splice_insert(
    b: &mut Bits<'_>,
    adjust: &dyn Fn(u64) -> u64,
) -> Result<SpliceInsert, Scte35Error> {
    let event_id = b.read(32, "splice_event_id")? as u32;
    let cancel = b.flag("splice_event_cancel_indicator")?;
    b.skip(7, "reserved")?;
    let mut s = SpliceInsert {
        event_id,
        cancel,
        out_of_network: false,
        immediate: false,
        pts: None,
        duration: None,
        auto_return: false,
        unique_program_id: 0,
        avail_num: 0,
        avails_expected: 0,
    };
    if cancel {
        return Ok(s);
    }
    s.out_of_network = b.flag("out_of_network_indicator")?;
    let program_splice = b.flag("program_splice_flag")?;
    let has_duration = b.flag("duration_flag")?;
    s.immediate = b.flag("splice_immediate_flag")?;
    b.skip(4, "reserved")?;
    if program_splice && !s.immediate {
        s.pts = splice_time(b)?.map(adjust);
    }
    if !program_splice {
        let count = b.read(8, "component_count")?;
        for _ in 0..count {
            b.skip(8, "component_tag")?;
            if !s.immediate {
                // Per-component times: the first one stands for the splice.
                let t = splice_time(b)?.map(adjust);
                s.pts = s.pts.or(t);
            }
        }
    }
    if has_duration {
        s.auto_return = b.flag("auto_return")?;
        b.skip(6, "reserved")?;
        s.duration = Some(b.read(33, "break_duration")?);
    }
    s.unique_program_id = b.read(16, "unique_program_id")? as u16;
    s.avail_num = b.read(8, "avail_num")? as u8;
    s.avails_expected = b.read(8, "avails_expected")? as u8;
    Ok(s)
}

/// The segmentation descriptors of a descriptor loop (tag 2, identifier `CUEI`).
fn segmentations(mut loop_bytes: &[u8]) -> Result<Vec<Segmentation>, Scte35Error> {
    let mut out = Vec::new();
    while !loop_bytes.is_empty() {
        let [tag, len, rest @ ..] = loop_bytes else {
            return Err(Scte35Error::Truncated("a splice descriptor"));
        };
        let body = rest
            .get(..usize::from(*len))
            .ok_or(Scte35Error::Truncated("a splice descriptor's body"))?;
        loop_bytes = &rest[usize::from(*len)..];
        if *tag == 0x02 && body.get(..4) == Some(b"CUEI") {
            out.push(segmentation(&body[4..])?);
        }
    }
    Ok(out)
}

fn segmentation(body: &[u8]) -> Result<Segmentation, Scte35Error> {
    let mut b = Bits::new(body);
    let event_id = b.read(32, "segmentation_event_id")? as u32;
    let cancel = b.flag("segmentation_event_cancel_indicator")?;
    b.skip(7, "reserved")?;
    let mut s = Segmentation {
        event_id,
        cancel,
        type_id: 0,
        duration: None,
        restrictions: None,
        upid_type: 0,
        upid: Vec::new(),
        segment_num: 0,
        segments_expected: 0,
    };
    if cancel {
        return Ok(s);
    }
    let program = b.flag("program_segmentation_flag")?;
    let has_duration = b.flag("segmentation_duration_flag")?;
    let not_restricted = b.flag("delivery_not_restricted_flag")?;
    if not_restricted {
        b.skip(5, "reserved")?;
    } else {
        s.restrictions = Some(Restrictions {
            web_delivery_allowed: b.flag("web_delivery_allowed_flag")?,
            no_regional_blackout: b.flag("no_regional_blackout_flag")?,
            archive_allowed: b.flag("archive_allowed_flag")?,
            device_restrictions: b.read(2, "device_restrictions")? as u8,
        });
    }
    if !program {
        let count = b.read(8, "component_count")?;
        for _ in 0..count {
            b.skip(8 + 7 + 33, "a component")?;
        }
    }
    if has_duration {
        s.duration = Some(b.read(40, "segmentation_duration")?);
    }
    s.upid_type = b.read(8, "segmentation_upid_type")? as u8;
    let upid_length = b.read(8, "segmentation_upid_length")? as usize;
    s.upid = b.bytes(upid_length, "segmentation_upid")?.to_vec();
    s.type_id = b.read(8, "segmentation_type_id")? as u8;
    s.segment_num = b.read(8, "segment_num")? as u8;
    s.segments_expected = b.read(8, "segments_expected")? as u8;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Cues from SCTE 35 2023r1 section 14 (sample messages), in base64.
    /// 14.2 splice_insert: out of network, break of 60.0 s (5,400,000 ticks at 90 kHz).
    const SPLICE_INSERT: &str =
        "/DAvAAAAAAAA///wFAVIAACPf+/+c2nALv4AUsz1AAAAAAAKAAhDVUVJAAABNWLbowo=";
    /// 14.1 time_signal with a placement opportunity start (segmentation type 0x34).
    const TIME_SIGNAL: &str =
        "/DA0AAAAAAAA///wBQb+cr0AUAAeAhxDVUVJSAAAjn/PAAGlmbAICAAAAAAsoKGKNAIAmsnRfg==";

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn reads_the_standards_sample_splice_insert() {
        let info = parse(&decode_text(SPLICE_INSERT).unwrap()).unwrap();
        let Command::Insert(s) = info.command else {
            panic!("{:?}", info.command)
        };
        assert_eq!(s.event_id, 0x4800_008f);
        assert!(s.out_of_network && !s.cancel && !s.immediate);
        assert_eq!(s.pts, Some(0x7369_c02e));
        assert_eq!(s.duration, Some(0x52_ccf5), "60.3 s");
        assert!(s.auto_return);
        assert_eq!(
            info.segmentations,
            vec![],
            "an avail descriptor, not a segmentation"
        );
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn reads_the_standards_sample_time_signal() {
        let info = parse(&decode_text(TIME_SIGNAL).unwrap()).unwrap();
        assert_eq!(
            info.command,
            Command::TimeSignal {
                pts: Some(0x72bd_0050)
            }
        );
        let [seg] = &info.segmentations[..] else {
            panic!("{:?}", info.segmentations)
        };
        assert_eq!(seg.event_id, 0x4800_008e);
        assert_eq!(seg.type_id, 0x34);
        assert_eq!(
            seg.kind(),
            Some((SegmentationKind::ProviderPlacementOpportunity, Edge::Start))
        );
        assert_eq!(seg.duration, Some(0x01a5_99b0), "307.0 s");
        assert_eq!(seg.upid_type, 0x08);
        assert_eq!(seg.upid, vec![0, 0, 0, 0, 0x2c, 0xa0, 0xa1, 0x8a]);
        assert!(seg.restrictions.is_some());
    }

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn bad_cues_say_what_is_wrong() {
        let good = decode_text(SPLICE_INSERT).unwrap();
        let mut bad = good.clone();
        bad[20] ^= 1;
        assert!(matches!(parse(&bad), Err(Scte35Error::BadCrc { .. })));
        for cut in 0..good.len() {
            assert!(parse(&good[..cut]).is_err(), "cut at {cut}");
        }
        assert_eq!(parse(&[0x47, 0]), Err(Scte35Error::NotASpliceInfo(0x47)));
        assert_eq!(decode_text("0xFC3"), Err(Scte35Error::NotEncoded));
        assert_eq!(decode_text("not base64!"), Err(Scte35Error::NotEncoded));
        assert_eq!(decode_text(&to_hex(&good)).unwrap(), good);
        assert_eq!(
            decode_text(&format!("\"{}\"", to_base64(&good))).unwrap(),
            good
        );
    }
}
