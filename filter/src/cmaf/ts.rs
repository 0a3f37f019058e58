//! MPEG-TS demultiplexing (ISO/IEC 13818-1) of one HLS segment: PAT → PMT → the H.264 and AAC
//! (ADTS) elementary streams, reassembled into PES packets with their timestamps. The last PES of
//! each stream is flushed at the end of the segment (no later start marks its end).

use super::CmafError;

const PACKET: usize = 188;
/// `stream_type` of H.264 video and of AAC audio in ADTS, in the PMT.
pub const STREAM_H264: u8 = 0x1B;
pub const STREAM_AAC_ADTS: u8 = 0x0F;

/// One PES packet's payload and its 33-bit timestamps (90 kHz).
#[derive(Debug, Clone, PartialEq)]
pub struct Pes {
    pub pts: u64,
    pub dts: u64,
    pub data: Vec<u8>,
}

/// The elementary streams of a segment.
#[derive(Debug, Default)]
pub struct Demuxed {
    pub video: Vec<Pes>,
    pub audio: Vec<Pes>,
    /// Elementary stream types found but not carried over (e.g. HEVC 0x24, AC-3 0x81).
    pub skipped: Vec<u8>,
}

#[derive(Default)]
struct Stream {
    pid: Option<u16>,
    current: Option<Vec<u8>>,
    done: Vec<Pes>,
}

impl Stream {
    fn flush(&mut self) -> Result<(), CmafError> {
        if let Some(buf) = self.current.take()
            && let Some(pes) = parse_pes(&buf)?
        {
            self.done.push(pes);
        }
        Ok(())
    }
}

fn timestamp(b: &[u8]) -> u64 {
    (u64::from(b[0] & 0x0E) << 29)
        | (u64::from(b[1]) << 22)
        | (u64::from(b[2] & 0xFE) << 14)
        | (u64::from(b[3]) << 7)
        | (u64::from(b[4]) >> 1)
}

fn parse_pes(b: &[u8]) -> Result<Option<Pes>, CmafError> {
    if b.len() < 9 || b[..3] != [0, 0, 1] {
        return Err(CmafError::Malformed(
            "a PES packet without a start code".into(),
        ));
    }
    let flags = b[7] >> 6;
    let header_len = usize::from(b[8]);
    let data_start = 9 + header_len;
    if b.len() < data_start || (flags & 2 != 0 && header_len < 5) {
        return Err(CmafError::Malformed("a truncated PES header".into()));
    }
    if flags & 2 == 0 {
        // No PTS: nothing a player could place in time.
        return Ok(None);
    }
    let pts = timestamp(&b[9..14]);
    let dts = if flags == 3 && header_len >= 10 {
        timestamp(&b[14..19])
    } else {
        pts
    };
    Ok(Some(Pes {
        pts,
        dts,
        data: b[data_start..].to_vec(),
    }))
}

/// The section that starts in this payload (after the pointer field), if it is whole.
fn section(payload: &[u8]) -> Option<&[u8]> {
    let pointer = usize::from(*payload.first()?);
    let s = payload.get(1 + pointer..)?;
    let len = usize::from(u16::from_be_bytes([*s.get(1)?, *s.get(2)?]) & 0x0FFF);
    s.get(..3 + len)
}

/// Demultiplexes a whole segment.
// Long on purpose: one pass over the packets (PAT, PMT, PES reassembly) with the state the three
// share.
pub fn demux(ts: &[u8]) -> Result<Demuxed, CmafError> {
    if ts.is_empty() || !ts.len().is_multiple_of(PACKET) {
        return Err(CmafError::Malformed(format!(
            "{} bytes is not a whole number of 188-byte TS packets",
            ts.len()
        )));
    }
    let mut pmt_pid: Option<u16> = None;
    let mut video = Stream::default();
    let mut audio = Stream::default();
    let mut skipped = Vec::new();
    for p in ts.chunks_exact(PACKET) {
        if p[0] != 0x47 {
            return Err(CmafError::Malformed("lost TS sync (no 0x47)".into()));
        }
        let pid = (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2]);
        let start = p[1] & 0x40 != 0;
        let afc = (p[3] >> 4) & 3;
        let mut offset = 4;
        if afc & 2 != 0 {
            offset += 1 + usize::from(p[4]);
        }
        if afc & 1 == 0 || offset >= PACKET {
            continue;
        }
        let payload = &p[offset..];
        if pid == 0 && start {
            // PAT: the first program's PMT.
            if let Some(s) = section(payload)
                && s[0] == 0
            {
                let entries = s.get(8..s.len().saturating_sub(4)).unwrap_or(&[]);
                pmt_pid = entries.chunks_exact(4).find_map(|e| {
                    let program = u16::from_be_bytes([e[0], e[1]]);
                    (program != 0).then_some((u16::from(e[2] & 0x1F) << 8) | u16::from(e[3]))
                });
            }
        } else if Some(pid) == pmt_pid && start {
            if let Some(s) = section(payload)
                && s[0] == 2
                && s.len() >= 16
            {
                let info_len = usize::from(u16::from_be_bytes([s[10], s[11]]) & 0x0FFF);
                let mut i = 12 + info_len;
                let end = s.len() - 4;
                while i + 5 <= end {
                    let stream_type = s[i];
                    let es_pid = (u16::from(s[i + 1] & 0x1F) << 8) | u16::from(s[i + 2]);
                    let es_info = usize::from(u16::from_be_bytes([s[i + 3], s[i + 4]]) & 0x0FFF);
                    match stream_type {
                        STREAM_H264 if video.pid.is_none() => video.pid = Some(es_pid),
                        STREAM_AAC_ADTS if audio.pid.is_none() => audio.pid = Some(es_pid),
                        t if !skipped.contains(&t) => skipped.push(t),
                        _ => {}
                    }
                    i += 5 + es_info;
                }
            }
        } else {
            for s in [&mut video, &mut audio] {
                if s.pid == Some(pid) {
                    if start {
                        s.flush()?;
                        s.current = Some(Vec::with_capacity(8 * 1024));
                    }
                    // Continuation bytes before the first start of the segment are dropped.
                    if let Some(buf) = &mut s.current {
                        buf.extend_from_slice(payload);
                    }
                }
            }
        }
    }
    if pmt_pid.is_none() {
        return Err(CmafError::Malformed(
            "no PAT/PMT in the segment: cannot find its streams".into(),
        ));
    }
    video.flush()?;
    audio.flush()?;
    if video.pid.is_none() && audio.pid.is_none() {
        return Err(CmafError::Unsupported(format!(
            "no H.264 or AAC stream (stream types found: {skipped:02x?})"
        )));
    }
    Ok(Demuxed {
        video: video.done,
        audio: audio.done,
        skipped,
    })
}
