//! Reading what the filter writes, independently of its code: ISO BMFF boxes of CMAF fragments
//! (decode times, WebVTT-in-fMP4 cues) and the first video timestamp of an MPEG-TS segment.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

/// `(type, body)` of each box in `d`.
pub fn boxes(mut d: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    while d.len() >= 8 {
        let n = u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as usize;
        assert!(n >= 8 && n <= d.len(), "a box of {n} bytes in {}", d.len());
        out.push(([d[4], d[5], d[6], d[7]], &d[8..n]));
        d = &d[n..];
    }
    out
}

/// The body of the first box along `path`.
pub fn find<'a>(d: &'a [u8], path: &[&[u8; 4]]) -> &'a [u8] {
    let (first, rest) = path.split_first().expect("a path");
    let body = boxes(d)
        .into_iter()
        .find(|(k, _)| k == *first)
        .map(|(_, b)| b)
        .unwrap_or_else(|| panic!("no {}", String::from_utf8_lossy(*first)));
    if rest.is_empty() {
        body
    } else {
        find(body, rest)
    }
}

/// The fragment's base media decode time (`tfdt` of its first track).
pub fn tfdt(fragment: &[u8]) -> u64 {
    let b = find(fragment, &[b"moof", b"traf", b"tfdt"]);
    if b[0] == 1 {
        u64::from_be_bytes(b[4..12].try_into().unwrap())
    } else {
        u64::from(u32::from_be_bytes(b[4..8].try_into().unwrap()))
    }
}

/// Each cue of a `wvtt` fragment once, with the decode time of the first sample showing it:
/// `(start, payload)`. Samples are read from `trun` (sizes and durations per sample, as the
/// filter writes them) and `mdat`.
pub fn wvtt_cues(fragment: &[u8]) -> Vec<(u64, String)> {
    let trun = find(fragment, &[b"moof", b"traf", b"trun"]);
    let flags = u32::from_be_bytes(trun[0..4].try_into().unwrap()) & 0xFF_FFFF;
    assert_eq!(flags & 0x0300, 0x0300, "durations and sizes per sample");
    let n = u32::from_be_bytes(trun[4..8].try_into().unwrap()) as usize;
    let mut at = 8 + if flags & 1 != 0 { 4 } else { 0 } + if flags & 4 != 0 { 4 } else { 0 };
    let per = 4 * [0x100, 0x200, 0x400, 0x800]
        .iter()
        .filter(|f| flags & **f != 0)
        .count();
    let mdat = find(fragment, &[b"mdat"]);
    let (mut time, mut offset) = (tfdt(fragment), 0usize);
    let mut cues: Vec<(u64, String)> = Vec::new();
    for _ in 0..n {
        let duration = u32::from_be_bytes(trun[at..at + 4].try_into().unwrap());
        let size = u32::from_be_bytes(trun[at + 4..at + 8].try_into().unwrap()) as usize;
        at += per;
        for (kind, body) in boxes(&mdat[offset..offset + size]) {
            if &kind == b"vttc" {
                let text = String::from_utf8(find(body, &[b"payl"]).to_vec()).unwrap();
                if !cues.iter().any(|(_, t)| *t == text) {
                    cues.push((time, text));
                }
            } else {
                assert_eq!(&kind, b"vtte", "a WebVTT sample holds vttc or vtte boxes");
            }
        }
        offset += size;
        time += u64::from(duration);
    }
    assert_eq!(offset, mdat.len(), "the samples fill the mdat");
    cues
}

/// The PTS (90 kHz) of the first H.264 PES of an MPEG-TS segment.
pub fn first_video_pts(ts: &[u8]) -> u64 {
    let mut pmt = None;
    let mut video = None;
    for p in ts.chunks_exact(188) {
        let pid = (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2]);
        let start = p[1] & 0x40 != 0;
        let mut o = 4;
        if p[3] & 0x20 != 0 {
            o += 1 + usize::from(p[4]);
        }
        if !start || o >= 188 {
            continue;
        }
        let payload = &p[o..];
        if pid == 0 {
            let s = &payload[1 + usize::from(payload[0])..];
            pmt = Some((u16::from(s[10] & 0x1F) << 8) | u16::from(s[11]));
        } else if Some(pid) == pmt {
            let s = &payload[1 + usize::from(payload[0])..];
            let len = usize::from(u16::from_be_bytes([s[1], s[2]]) & 0x0FFF);
            let mut i = 12 + usize::from(u16::from_be_bytes([s[10], s[11]]) & 0x0FFF);
            while i + 5 <= 3 + len - 4 {
                let es = (u16::from(s[i + 1] & 0x1F) << 8) | u16::from(s[i + 2]);
                if s[i] == 0x1B {
                    video = Some(es);
                }
                i += 5 + usize::from(u16::from_be_bytes([s[i + 3], s[i + 4]]) & 0x0FFF);
            }
        } else if Some(pid) == video {
            let b = &payload[9..14];
            return (u64::from(b[0] & 0x0E) << 29)
                | (u64::from(b[1]) << 22)
                | (u64::from(b[2] & 0xFE) << 14)
                | (u64::from(b[3]) << 7)
                | (u64::from(b[4]) >> 1);
        }
    }
    panic!("no H.264 PES in the segment")
}
