//! AAC in ADTS framing (ISO/IEC 13818-7), as MPEG-TS carries it: raw access units and the
//! `AudioSpecificConfig` (ISO/IEC 14496-3) that MP4's `esds` wants instead of per-frame headers.

use super::CmafError;

const RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// What every frame of the stream shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AacConfig {
    /// Audio object type (2 = AAC LC).
    pub object_type: u8,
    pub rate_index: u8,
    pub sample_rate: u32,
    pub channels: u8,
}

impl AacConfig {
    /// The two-byte `AudioSpecificConfig`.
    pub fn audio_specific_config(&self) -> [u8; 2] {
        [
            (self.object_type << 3) | (self.rate_index >> 1),
            ((self.rate_index & 1) << 7) | (self.channels << 3),
        ]
    }

    /// RFC 6381 codec string, `mp4a.40.{object type}`.
    pub fn codec(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }
}

/// The configuration an MP4 `esds` states (its `AudioSpecificConfig`, ISO/IEC 14496-3 1.6.2.1):
/// object type, sampling frequency index and channel configuration. What this packager writes
/// back is those two bytes, so a configuration they cannot say is refused.
pub fn from_audio_specific_config(asc: &[u8]) -> Result<AacConfig, CmafError> {
    let [a, b, ..] = *asc else {
        return Err(CmafError::Malformed(
            "an AudioSpecificConfig shorter than two bytes".into(),
        ));
    };
    let object_type = a >> 3;
    let rate_index = ((a & 7) << 1) | (b >> 7);
    let channels = (b >> 3) & 0x0F;
    if object_type == 0 || object_type == 31 {
        return Err(CmafError::Unsupported(format!(
            "AAC audio object type {object_type} (escape or none) is not supported"
        )));
    }
    let sample_rate = *RATES.get(usize::from(rate_index)).ok_or_else(|| {
        CmafError::Unsupported(format!(
            "AAC sampling frequency index {rate_index} (an explicit rate) is not supported"
        ))
    })?;
    if channels == 0 || channels > 7 {
        return Err(CmafError::Unsupported(format!(
            "AAC channel configuration {channels} is not supported"
        )));
    }
    Ok(AacConfig {
        object_type,
        rate_index,
        sample_rate,
        channels,
    })
}

/// Splits ADTS data into raw AAC frames; returns the stream's configuration with them.
pub fn frames(data: &[u8]) -> Result<(AacConfig, Vec<&[u8]>), CmafError> {
    let mut out = Vec::new();
    let mut config = None;
    let mut i = 0;
    while i + 7 <= data.len() {
        let h = &data[i..];
        if h[0] != 0xFF || h[1] & 0xF0 != 0xF0 {
            return Err(CmafError::Malformed(format!(
                "no ADTS sync word at byte {i} of an audio PES"
            )));
        }
        let header_len = if h[1] & 1 == 1 { 7 } else { 9 };
        let rate_index = (h[2] >> 2) & 0x0F;
        let c = AacConfig {
            object_type: (h[2] >> 6) + 1,
            rate_index,
            sample_rate: *RATES.get(usize::from(rate_index)).ok_or_else(|| {
                CmafError::Malformed(format!("ADTS sampling frequency index {rate_index}"))
            })?,
            channels: ((h[2] & 1) << 2) | (h[3] >> 6),
        };
        if c.channels == 0 {
            return Err(CmafError::Unsupported(
                "ADTS channel configuration 0 (a program config element) is not supported".into(),
            ));
        }
        if *config.get_or_insert(c) != c {
            return Err(CmafError::Unsupported(
                "the AAC configuration changes inside a segment".into(),
            ));
        }
        let frame_len =
            (usize::from(h[3] & 3) << 11) | (usize::from(h[4]) << 3) | (usize::from(h[5]) >> 5);
        if frame_len < header_len || i + frame_len > data.len() {
            return Err(CmafError::Malformed(format!(
                "ADTS frame of {frame_len} bytes at byte {i} does not fit the PES"
            )));
        }
        out.push(&data[i + header_len..i + frame_len]);
        i += frame_len;
    }
    match config {
        Some(c) => Ok((c, out)),
        None => Err(CmafError::Malformed(
            "an audio PES without ADTS frames".into(),
        )),
    }
}
