//! H.264 (ISO/IEC 14496-10) as MPEG-TS carries it (Annex B byte stream) turned into what MP4
//! wants (ISO/IEC 14496-15): length-prefixed NAL units, and an `avcC` record from the SPS/PPS.

use super::CmafError;

pub const NAL_IDR: u8 = 5;
pub const NAL_SPS: u8 = 7;
pub const NAL_PPS: u8 = 8;
pub const NAL_AUD: u8 = 9;

/// The NAL units of an Annex B byte stream (start codes removed).
pub fn nal_units(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (k, &s) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(data.len(), |&n| n - 3);
        // A 4-byte start code (or trailing zero bytes) leaves zeros before the next one.
        while end > s && data[end - 1] == 0 {
            end -= 1;
        }
        if end > s {
            out.push(&data[s..end]);
        }
    }
    out
}

pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1F)
}

/// What a sample needs: its NAL units as 4-byte-length-prefixed data, without the access unit
/// delimiter and the parameter sets (those live in `avcC`).
pub fn sample_data(nals: &[&[u8]]) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(nals.iter().map(|n| n.len() + 4).sum());
    let mut idr = false;
    for nal in nals {
        match nal_type(nal) {
            NAL_AUD | NAL_SPS | NAL_PPS => continue,
            NAL_IDR => idr = true,
            _ => {}
        }
        out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        out.extend_from_slice(nal);
    }
    (out, idr)
}

/// The parameter sets and what the sample entry says about the picture.
#[derive(Debug, Clone, PartialEq)]
pub struct AvcConfig {
    pub sps: Vec<u8>,
    pub pps: Vec<u8>,
    pub width: u16,
    pub height: u16,
    pub profile: u8,
    pub compatibility: u8,
    pub level: u8,
    pub chroma_format: u32,
    pub bit_depth_luma: u32,
    pub bit_depth_chroma: u32,
}

impl AvcConfig {
    /// RFC 6381 codec string, `avc1.PPCCLL`.
    pub fn codec(&self) -> String {
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            self.profile, self.compatibility, self.level
        )
    }

    /// The `AVCDecoderConfigurationRecord` (the payload of `avcC`).
    pub fn avcc(&self) -> Vec<u8> {
        let mut r = vec![1, self.profile, self.compatibility, self.level, 0xFF, 0xE1];
        r.extend_from_slice(&(self.sps.len() as u16).to_be_bytes());
        r.extend_from_slice(&self.sps);
        r.push(1);
        r.extend_from_slice(&(self.pps.len() as u16).to_be_bytes());
        r.extend_from_slice(&self.pps);
        if matches!(self.profile, 100 | 110 | 122 | 144) {
            r.push(0xFC | (self.chroma_format as u8 & 3));
            r.push(0xF8 | (self.bit_depth_luma.saturating_sub(8) as u8 & 7));
            r.push(0xF8 | (self.bit_depth_chroma.saturating_sub(8) as u8 & 7));
            r.push(0);
        }
        r
    }
}

/// Removes emulation prevention bytes (00 00 03 → 00 00).
fn rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> Result<u32, CmafError> {
        let byte = self
            .data
            .get(self.pos / 8)
            .ok_or_else(|| CmafError::Malformed("SPS ends early".into()))?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(u32::from(b))
    }
    fn bits(&mut self, n: u32) -> Result<u32, CmafError> {
        let mut v = 0;
        for _ in 0..n {
            v = (v << 1) | self.bit()?;
        }
        Ok(v)
    }
    fn ue(&mut self) -> Result<u32, CmafError> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return Err(CmafError::Malformed("bad Exp-Golomb code in SPS".into()));
            }
        }
        Ok(((1u64 << zeros) - 1 + u64::from(self.bits(zeros)?)) as u32)
    }
    /// An Exp-Golomb value the standard bounds: larger is a malformed SPS (found by fuzzing:
    /// unbounded values overflowed the arithmetic that follows).
    fn ue_max(&mut self, max: u32, field: &str) -> Result<u32, CmafError> {
        let v = self.ue()?;
        if v > max {
            return Err(CmafError::Malformed(format!(
                "SPS {field} is {v}, more than {max}"
            )));
        }
        Ok(v)
    }
    fn se(&mut self) -> Result<i32, CmafError> {
        let k = self.ue()?;
        Ok(if k % 2 == 1 {
            k.div_ceil(2) as i32
        } else {
            -((k / 2) as i32)
        })
    }
}

/// Parses the SPS far enough for the picture size (7.3.2.1.1).
// Long on purpose: it reads the SPS fields in bitstream order (ITU-T H.264 7.3.2.1.1), which is
// clearest as one sequence.
pub fn parse_sps(sps: &[u8], pps: &[u8]) -> Result<AvcConfig, CmafError> {
    let data = rbsp(sps);
    if data.len() < 4 {
        return Err(CmafError::Malformed("SPS too short".into()));
    }
    let (profile, compatibility, level) = (data[1], data[2], data[3]);
    let mut b = Bits {
        data: &data[4..],
        pos: 0,
    };
    b.ue()?; // seq_parameter_set_id
    let (mut chroma_format, mut depth_l, mut depth_c) = (1, 8, 8);
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format = b.ue_max(3, "chroma_format_idc")?;
        if chroma_format == 3 {
            b.bit()?; // separate_colour_plane_flag
        }
        depth_l = b.ue_max(6, "bit_depth_luma_minus8")? + 8;
        depth_c = b.ue_max(6, "bit_depth_chroma_minus8")? + 8;
        b.bit()?; // qpprime_y_zero_transform_bypass_flag
        if b.bit()? == 1 {
            let lists = if chroma_format == 3 { 12 } else { 8 };
            for i in 0..lists {
                if b.bit()? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i32, 8i32);
                    for _ in 0..size {
                        if next != 0 {
                            // delta_scale is -128..=127 (7.4.2.1.1.1).
                            let delta = b.se()?;
                            if !(-128..=127).contains(&delta) {
                                return Err(CmafError::Malformed(format!(
                                    "SPS delta_scale is {delta}, outside -128..127"
                                )));
                            }
                            next = (last + delta + 256) % 256;
                        }
                        if next != 0 {
                            last = next;
                        }
                    }
                }
            }
        }
    }
    b.ue()?; // log2_max_frame_num_minus4
    match b.ue()? {
        0 => {
            b.ue()?;
        }
        1 => {
            b.bit()?;
            b.se()?;
            b.se()?;
            for _ in 0..b.ue()? {
                b.se()?;
            }
        }
        _ => {}
    }
    b.ue()?; // max_num_ref_frames
    b.bit()?; // gaps_in_frame_num_value_allowed_flag
    // The picture size in u64: no value an SPS can hold overflows it.
    let width_mbs = u64::from(b.ue()?) + 1;
    let height_units = u64::from(b.ue()?) + 1;
    let frame_mbs_only = u64::from(b.bit()?);
    if frame_mbs_only == 0 {
        b.bit()?; // mb_adaptive_frame_field_flag
    }
    b.bit()?; // direct_8x8_inference_flag
    let (mut crop_x, mut crop_y) = (0u64, 0u64);
    if b.bit()? == 1 {
        let (l, r, t, bo) = (
            u64::from(b.ue()?),
            u64::from(b.ue()?),
            u64::from(b.ue()?),
            u64::from(b.ue()?),
        );
        let (unit_x, unit_y) = match chroma_format {
            0 => (1, 2 - frame_mbs_only),
            1 => (2, 2 * (2 - frame_mbs_only)),
            2 => (2, 2 - frame_mbs_only),
            _ => (1, 2 - frame_mbs_only),
        };
        crop_x = unit_x * (l + r);
        crop_y = unit_y * (t + bo);
    }
    let width = (width_mbs * 16).saturating_sub(crop_x);
    let height = ((2 - frame_mbs_only) * height_units * 16).saturating_sub(crop_y);
    Ok(AvcConfig {
        sps: sps.to_vec(),
        pps: pps.to_vec(),
        width: u16::try_from(width).unwrap_or(u16::MAX),
        height: u16::try_from(height).unwrap_or(u16::MAX),
        profile,
        compatibility,
        level,
        chroma_format,
        bit_depth_luma: depth_l,
        bit_depth_chroma: depth_c,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing (`fuzz/fuzz_targets/h264_parameter_sets.rs`): unbounded Exp-Golomb values
    /// (bit depth, scaling deltas, picture size, cropping) overflowed u32 arithmetic — a panic in
    /// a debug build, a wrong picture size in a release one. Now refused or computed in u64.
    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn an_sps_with_extreme_values_is_refused_or_sized_without_overflow() {
        let found: &[u8] = &[
            0x00, 0x01, 0x67, 0x64, 0x6c, 0x5b, 0x00, 0x0a, 0x0a, 0x00, 0x00, 0x00, 0x01, 0x1a,
            0x00, 0x01, 0x00, 0x00, 0x01, 0x17, 0x67, 0x01, 0x00, 0x01, 0x17, 0x67, 0x01, 0x67,
            0x00, 0x6c, 0x00, 0xfc, 0x00, 0x01, 0x67, 0x64, 0x6c, 0x5b, 0x00, 0x0a, 0x0a,
        ];
        let r = parse_sps(found, &[0x68, 0xce]);
        println!("{r:?}");
    }
}
