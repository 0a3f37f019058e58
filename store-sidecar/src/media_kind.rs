//! What an uploaded file is, from its first bytes: the formats an HLS encoder pushes (MPEG-TS,
//! fragmented MP4, WebVTT, packed audio). Anything else is refused at ingest unless the encoder
//! encrypted its segments itself (then the bytes cannot be told from noise).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// How many leading bytes [`sniff`] looks at.
pub const SNIFF_BYTES: usize = 2 * TS_PACKET;

const TS_PACKET: usize = 188;

/// Box types an ISO BMFF (fMP4) file starts with: an initialization segment (`ftyp`), a media
/// segment (`styp`, or straight `moof`, with `sidx`, `emsg` or `prft` before it), or padding.
const FIRST_BOXES: [&[u8; 4]; 9] = [
    b"ftyp", b"styp", b"moof", b"sidx", b"emsg", b"prft", b"free", b"skip", b"moov",
];

/// The format of an uploaded file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    MpegTs,
    Fmp4,
    WebVtt,
    /// RFC 8216 §3.4 packed audio: an ID3 tag (the timestamp) then the audio frames.
    PackedAudio,
    /// None of the above: garbage, an error page, or bytes the encoder encrypted.
    Unrecognised,
}

/// Classifies a file from its first [`SNIFF_BYTES`] (or all of it, when shorter).
pub fn sniff(head: &[u8]) -> MediaKind {
    // MPEG-TS: a sync byte at the start of every 188-byte packet.
    if head.first() == Some(&0x47) && head.get(TS_PACKET).is_none_or(|b| *b == 0x47) {
        return MediaKind::MpegTs;
    }
    if let (Some(size), Some(kind)) = (head.get(0..4), head.get(4..8)) {
        let size = u32::from_be_bytes([size[0], size[1], size[2], size[3]]);
        // 0: to the end of the file; 1: a 64-bit size follows; otherwise at least the header.
        let sized = size == 0 || size == 1 || size >= 8;
        if sized && FIRST_BOXES.iter().any(|b| b.as_slice() == kind) {
            return MediaKind::Fmp4;
        }
    }
    if edgepack_store_api::api::is_webvtt(head) {
        return MediaKind::WebVtt;
    }
    if head.starts_with(b"ID3") {
        return MediaKind::PackedAudio;
    }
    MediaKind::Unrecognised
}

/// Classifies a file on disk.
pub fn sniff_file(path: &Path) -> io::Result<(MediaKind, Vec<u8>)> {
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    File::open(path)?
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut head)?;
    Ok((sniff(&head), head))
}

/// The first bytes of a file for a refusal: printable text as text, else hex.
pub fn describe(head: &[u8]) -> String {
    if head.is_empty() {
        return "it is empty".to_owned();
    }
    let start = &head[..head.len().min(16)];
    if start
        .iter()
        .all(|b| b.is_ascii_graphic() || *b == b' ' || *b == b'\n' || *b == b'\r')
    {
        let text = String::from_utf8_lossy(start);
        format!("it begins {:?}", text.as_ref())
    } else {
        let hex: Vec<String> = start.iter().map(|b| format!("{b:02x}")).collect();
        format!("it begins {}", hex.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoder_formats_are_recognised() {
        let mut ts = vec![0u8; 400];
        ts[0] = 0x47;
        ts[188] = 0x47;
        assert_eq!(sniff(&ts), MediaKind::MpegTs);
        // A single packet (a short file) has no second sync byte to check.
        assert_eq!(sniff(&ts[..188]), MediaKind::MpegTs);
        let mut init = 24u32.to_be_bytes().to_vec();
        init.extend_from_slice(b"ftypiso6");
        assert_eq!(sniff(&init), MediaKind::Fmp4);
        let mut media = 16u32.to_be_bytes().to_vec();
        media.extend_from_slice(b"styp");
        assert_eq!(sniff(&media), MediaKind::Fmp4);
        assert_eq!(
            sniff(b"WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n"),
            MediaKind::WebVtt
        );
        assert_eq!(
            sniff(b"\xEF\xBB\xBFWEBVTT X-TIMESTAMP-MAP"),
            MediaKind::WebVtt
        );
        assert_eq!(sniff(b"ID3\x04\x00"), MediaKind::PackedAudio);
    }

    #[test]
    fn everything_else_is_unrecognised() {
        let mut ts_then_junk = vec![0u8; 400];
        ts_then_junk[0] = 0x47;
        for head in [
            &b""[..],
            b"<!DOCTYPE html><html>",
            b"seg5",
            &ts_then_junk,
            b"WEBVTTX",
            // A box type we do not know, and a box too small to be one.
            b"\x00\x00\x00\x10abcd",
            b"\x00\x00\x00\x04ftyp",
            &[0xFF, 0xF1, 0x50, 0x80],
        ] {
            assert_eq!(sniff(head), MediaKind::Unrecognised, "{head:?}");
        }
    }

    #[test]
    fn refusals_show_the_first_bytes() {
        assert_eq!(describe(b""), "it is empty");
        assert_eq!(
            describe(b"<html><body>502 Bad Gateway"),
            "it begins \"<html><body>502 \""
        );
        assert_eq!(describe(&[0x01, 0xab]), "it begins 01 ab");
    }
}
