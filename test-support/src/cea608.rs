//! CEA-608 captions embedded in H.264, as a broadcast encoder sends them (ATSC A/53 Part 4:
//! `user_data_registered_itu_t_t35` SEI messages, `GA94`, `cc_data` of NTSC field 1), for tests:
//! no encoder here embeds captions, so the test encoder's Annex B stream gets them added.
//! Captions are pop-on (CEA-608: load in memory with RCL, show with EOC, clear with EDM); one
//! byte pair per frame, control codes sent twice as broadcasters do.

/// Odd parity in bit 7, as every CEA-608 byte carries.
fn parity(b: u8) -> u8 {
    if b.count_ones().is_multiple_of(2) {
        b | 0x80
    } else {
        b
    }
}

const RCL: (u8, u8) = (0x94, 0x20);
const ENM: (u8, u8) = (0x94, 0xAE);
const EOC: (u8, u8) = (0x94, 0x2F);
const EDM: (u8, u8) = (0x94, 0x2C);

/// The SEI NAL unit carrying one `cc_data` pair (or padding).
fn sei(pair: Option<(u8, u8)>) -> Vec<u8> {
    let (a, b) = pair.unwrap_or((0x80, 0x80));
    // itu_t_t35 country (USA), provider (ATSC), user identifier, cc_data(): process_cc_data,
    // cc_count 1, em_data, one field-1 pair, marker bits.
    let payload = [
        0xB5, 0x00, 0x31, b'G', b'A', b'9', b'4', 0x03, 0x41, 0xFF, 0xFC, a, b, 0xFF,
    ];
    let mut nal = vec![0x06, 0x04, payload.len() as u8];
    nal.extend_from_slice(&payload);
    nal.push(0x80); // rbsp trailing bits
    nal
}

/// The byte pairs that show `text` on its own (pop-on): load, then display.
fn pop_on(text: &str) -> Vec<(u8, u8)> {
    let mut bytes: Vec<u8> = text.bytes().map(parity).collect();
    if bytes.len() % 2 == 1 {
        bytes.push(0x80);
    }
    let mut pairs = vec![RCL, RCL, ENM, ENM];
    pairs.extend(bytes.chunks(2).map(|c| (c[0], c[1])));
    pairs.extend([EOC, EOC]);
    pairs
}

/// `annex_b` (an H.264 stream with an access unit delimiter before each picture, x264's
/// `aud=1`) with captions: `cues` are `(first frame, last frame, text)`; each text is loaded
/// from its first frame on, shown a few frames later, and cleared at its last frame.
pub fn with_captions(annex_b: &[u8], cues: &[(u32, u32, String)]) -> Vec<u8> {
    let mut schedule = std::collections::HashMap::new();
    for (first, last, text) in cues {
        for (i, pair) in pop_on(text).into_iter().enumerate() {
            schedule.insert(first + i as u32, pair);
        }
        schedule.insert(*last, EDM);
        schedule.insert(last + 1, EDM);
    }
    // NAL units between start codes.
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= annex_b.len() {
        if annex_b[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(annex_b.len() + starts.len() * 24);
    let mut frame = None::<u32>;
    for (n, &s) in starts.iter().enumerate() {
        let mut end = starts.get(n + 1).map_or(annex_b.len(), |next| next - 3);
        while end > s && annex_b[end - 1] == 0 {
            end -= 1;
        }
        let nal = &annex_b[s..end];
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
        if nal.first().is_some_and(|h| h & 0x1F == 9) {
            let f = frame.map_or(0, |f| f + 1);
            frame = Some(f);
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(&sei(schedule.get(&f).copied()));
        }
    }
    assert!(
        frame.is_some(),
        "no access unit delimiter: encode with -x264-params aud=1"
    );
    out
}
