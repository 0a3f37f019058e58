//! SCTE-35 in MPEG-TS (SCTE 35 §8): the `splice_info_section`s carried on the PIDs that a PMT
//! declares with stream type 0x86, as bytes for [`crate::scte35::parse`] (which checks their CRC).
//! Reads only PAT, PMT and those PIDs; everything else in the segment is skipped.

const PACKET: usize = 188;
/// PMT stream type of a SCTE-35 stream.
pub const STREAM_TYPE: u8 = 0x86;
/// Sections kept per segment at most (a cue is one or a few; this bounds a hostile segment).
const MAX_SECTIONS: usize = 64;

/// One TS packet's PID, whether a section starts in it, and its payload.
fn packet(p: &[u8]) -> Option<(u16, bool, &[u8])> {
    if p.len() != PACKET || p[0] != 0x47 {
        return None;
    }
    let pid = (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2]);
    let start = p[1] & 0x40 != 0;
    let payload = match (p[3] >> 4) & 0x3 {
        0b01 => &p[4..],
        0b11 => p.get(5 + usize::from(p[4])..)?,
        _ => return None,
    };
    Some((pid, start, payload))
}

/// The section starting a payload that begins one (its pointer field skipped).
fn first_section(payload: &[u8]) -> Option<&[u8]> {
    let pointer = usize::from(*payload.first()?);
    payload.get(1 + pointer..)
}

/// A PSI section's length, header included (`section_length` + 3).
fn section_len(s: &[u8]) -> Option<usize> {
    let hi = usize::from(*s.get(1)? & 0x0F);
    Some(((hi << 8) | usize::from(*s.get(2)?)) + 3)
}

/// The PMT PIDs a PAT section names.
fn pat(s: &[u8]) -> Vec<u16> {
    let Some(len) = section_len(s).filter(|l| s.first() == Some(&0x00) && *l >= 12) else {
        return Vec::new();
    };
    // Programs after the 8-byte header, before the CRC.
    s.get(8..len.min(s.len()).saturating_sub(4))
        .unwrap_or(&[])
        .chunks_exact(4)
        .filter(|p| u16::from_be_bytes([p[0], p[1]]) != 0)
        .map(|p| (u16::from(p[2] & 0x1F) << 8) | u16::from(p[3]))
        .collect()
}

/// The SCTE-35 PIDs a PMT section declares.
fn pmt(s: &[u8]) -> Vec<u16> {
    let Some(len) = section_len(s).filter(|l| s.first() == Some(&0x02) && *l >= 16) else {
        return Vec::new();
    };
    let end = len.min(s.len()).saturating_sub(4);
    let Some(info) = s.get(10..12) else {
        return Vec::new();
    };
    let mut at = 12 + ((usize::from(info[0] & 0x0F) << 8) | usize::from(info[1]));
    let mut pids = Vec::new();
    while at + 5 <= end {
        let e = &s[at..at + 5];
        if e[0] == STREAM_TYPE {
            pids.push((u16::from(e[1] & 0x1F) << 8) | u16::from(e[2]));
        }
        at += 5 + ((usize::from(e[3] & 0x0F) << 8) | usize::from(e[4]));
    }
    pids
}

/// The PIDs that `ts`'s PMTs declare as SCTE-35 streams. RFC 8216 §3.2 puts a PAT and a PMT
/// at the start of every media segment, so the segment's first packets are enough.
pub fn scte35_pids(ts: &[u8]) -> Vec<u16> {
    let packets = || ts.chunks_exact(PACKET).filter_map(packet);
    let mut pmts = Vec::new();
    let mut scte = Vec::new();
    for (pid, start, payload) in packets() {
        if !start {
            continue;
        }
        let Some(s) = first_section(payload) else {
            continue;
        };
        if pid == 0 {
            for p in pat(s) {
                if !pmts.contains(&p) {
                    pmts.push(p);
                }
            }
        } else if pmts.contains(&pid) {
            for p in pmt(s) {
                if !scte.contains(&p) {
                    scte.push(p);
                }
            }
        }
    }
    scte
}

/// Every complete `splice_info_section` (table id 0xFC) carried in `ts`, in order.
pub fn sections(ts: &[u8]) -> Vec<Vec<u8>> {
    let packets = || ts.chunks_exact(PACKET).filter_map(packet);
    let scte = scte35_pids(ts);
    if scte.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<Vec<u8>> = Vec::new();
    // The section being put together, per SCTE-35 PID.
    let mut open: Vec<(u16, Vec<u8>)> = Vec::new();
    for (pid, start, payload) in packets().filter(|(pid, ..)| scte.contains(pid)) {
        let slot = match open.iter().position(|(p, _)| *p == pid) {
            Some(i) => i,
            None => {
                open.push((pid, Vec::new()));
                open.len() - 1
            }
        };
        let mut data: &[u8] = payload;
        if start {
            // The rest of a section begun before, then new sections.
            let pointer = usize::from(*payload.first().unwrap_or(&0));
            let tail = payload.get(1..1 + pointer).unwrap_or(&[]);
            open[slot].1.extend_from_slice(tail);
            finish(&mut open[slot].1, &mut out);
            open[slot].1.clear();
            data = payload.get(1 + pointer..).unwrap_or(&[]);
            // Each complete section in this packet; a partial one stays open.
            while let Some(&table) = data.first() {
                if table == 0xFF {
                    data = &[];
                    break;
                }
                match section_len(data) {
                    Some(len) if len <= data.len() => {
                        out.push(data[..len].to_vec());
                        data = &data[len..];
                    }
                    _ => break,
                }
            }
        }
        open[slot].1.extend_from_slice(data);
        finish(&mut open[slot].1, &mut out);
        if out.len() >= MAX_SECTIONS {
            break;
        }
    }
    out.retain(|s| s.first() == Some(&0xFC));
    out.truncate(MAX_SECTIONS);
    out
}

/// Moves `buf` to `out` once it holds a whole section (it is then cleared).
fn finish(buf: &mut Vec<u8>, out: &mut Vec<Vec<u8>>) {
    if let Some(len) = section_len(buf).filter(|l| *l <= buf.len()) {
        out.push(buf[..len].to_vec());
        buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scte35::{self, crc32_mpeg2};

    /// A PSI section with its CRC.
    fn section(table: u8, body: &[u8]) -> Vec<u8> {
        let len = body.len() + 5 + 4;
        let mut s = vec![table, 0xB0 | (len >> 8) as u8, len as u8, 0, 1, 0xC1, 0, 0];
        s.extend_from_slice(body);
        let crc = crc32_mpeg2(&s);
        s.extend_from_slice(&crc.to_be_bytes());
        s
    }

    /// Packets of `pid` carrying `data` from a section start, stuffed with 0xFF.
    fn packets(pid: u16, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest: Vec<u8> = [&[0u8][..], data].concat();
        let mut first = true;
        while !rest.is_empty() {
            let n = rest.len().min(184);
            let mut p = vec![
                0x47,
                ((pid >> 8) as u8) | if first { 0x40 } else { 0 },
                pid as u8,
                0x10,
            ];
            p.extend(rest.drain(..n));
            p.resize(PACKET, 0xFF);
            out.extend(p);
            first = false;
        }
        out
    }

    /// PAT (program 1 → PMT 0x1000), PMT (video 0x100, SCTE-35 on 0x1F4), then `cue` on 0x1F4.
    fn segment_with(cue: &[u8]) -> Vec<u8> {
        let pat = section(0x00, &[0, 1, 0xF0, 0x00]);
        let pmt = [section(
            0x02,
            &[
                0xE1, 0x00, 0xF0, 0x00, 0x1B, 0xE1, 0x00, 0xF0, 0x00, 0x86, 0xE1, 0xF4, 0xF0, 0x00,
            ],
        )
        .as_slice()]
        .concat();
        let mut ts = packets(0, &pat);
        ts.extend(packets(0x1000, &pmt));
        ts.extend(packets(0x100, &[0u8; 300]));
        ts.extend(packets(0x1F4, cue));
        ts
    }

    /// A splice_insert out of network (SCTE 35's own example, as the cue tests use).
    const CUE_B64: &str = "/DAvAAAAAAAA///wFAVIAACPf+/+c2nALv4AUsz1AAAAAAAKAAhDVUVJAAABNWLbowo=";

    #[test]
    fn a_cue_on_a_scte35_pid_is_found() {
        let cue = scte35::decode_text(CUE_B64).unwrap();
        assert_eq!(scte35_pids(&segment_with(&[])), [0x1F4]);
        let found = sections(&segment_with(&cue));
        assert_eq!(found, vec![cue.clone()]);
        assert!(scte35::parse(&found[0]).is_ok());
        // A cue longer than a packet spans two.
        let mut long = cue.clone();
        long.resize(400, 0);
        let len = long.len() - 3;
        long[1] = (long[1] & 0xF0) | (len >> 8) as u8;
        long[2] = len as u8;
        assert_eq!(sections(&segment_with(&long)), vec![long]);
    }

    #[test]
    fn nothing_else_is_read_as_a_cue() {
        let cue = scte35::decode_text(CUE_B64).unwrap();
        // The same bytes on a PID the PMT does not declare as SCTE-35.
        let mut ts = segment_with(&[]);
        ts.extend(packets(0x1F5, &cue));
        assert!(sections(&ts).is_empty());
        for junk in [
            &b""[..],
            &[0x47; 188],
            &[0u8; 1000],
            &[0x47, 0x40, 0, 0x30, 200, 1, 2],
        ] {
            assert!(sections(junk).is_empty());
        }
    }
}
