//! User story: the filter core repackages MPEG-TS segments as a real encoder makes them (Debian's
//! ffmpeg: H.264 with B-frames, AAC, 2 s segments) into CMAF, and a real decoder agrees: the
//! initialization segment plus the fragments, as a player would append them, decode to exactly
//! the frames of the source — every video frame with the same MD5, every audio frame too — and
//! ffprobe reads the codecs, picture size and timing the source has. The reference packager
//! (shaka-packager, from npm) packaging the same input agrees on streams, codecs, sizes and
//! decoded frame counts.

#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::path::Path;
use std::process::Command;

use edgepack_filter::cmaf;
use edgepack_test_support::player;

/// `ffmpeg -f framemd5` of the first stream `map` selects: the MD5 of each decoded frame.
fn frame_md5s(input: &Path, map: &str) -> Vec<String> {
    let per = player::decoded(input.to_str().unwrap(), map).unwrap();
    per.into_values().next().unwrap_or_default()
}

fn probe(input: &Path, entries: &str) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", entries, "-of", "csv=p=0"])
        .arg(input)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn remuxed_segments_decode_to_the_source_frames() {
    let dir = tempfile::tempdir().unwrap();
    // B-frames (libx264's default) give composition offsets; closed 2 s GOPs as for HLS.
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", "6", "-c:v", "libx264", "-preset", "fast", "-bf", "2"])
        .args(["-g", "50", "-keyint_min", "50", "-sc_threshold", "0"])
        .args(["-c:a", "aac", "-b:a", "96k", "-f", "hls", "-hls_time", "2"])
        .args(["-hls_list_size", "0", "-hls_segment_filename"])
        .arg(dir.path().join("s%d.ts"))
        .arg(dir.path().join("index.m3u8"))
        .status()
        .unwrap();
    assert!(status.success());

    let pdt0 = 1_795_600_000_000i64;
    let mut whole_ts = Vec::new();
    let mut whole_mp4 = Vec::new();
    let mut init = None;
    let mut video_samples = 0;
    // The codec string from the source's own level, as ffprobe reads it (High profile: 0x64).
    let level: u8 = probe(&dir.path().join("s0.ts"), "stream=level")
        .lines()
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    for i in 0..3u64 {
        let ts = std::fs::read(dir.path().join(format!("s{i}.ts"))).unwrap();
        whole_ts.extend_from_slice(&ts);
        let r = cmaf::remux(&ts, i, Some(pdt0 + i as i64 * 2000)).unwrap();
        assert_eq!(
            r.codecs(),
            [format!("avc1.6400{level:02x}"), "mp4a.40.2".into()]
        );
        // Every segment describes the same tracks: one initialization segment serves them all.
        let this_init = r.init_segment();
        match &init {
            None => {
                whole_mp4.extend_from_slice(&this_init);
                init = Some(this_init);
            }
            Some(first) => assert_eq!(first, &this_init, "segment {i}"),
        }
        let cmaf::mp4::Codec::Avc(avc) = &r.tracks[0].codec else {
            panic!("video first")
        };
        assert_eq!((avc.width, avc.height), (320, 180));
        whole_mp4.extend_from_slice(&r.fragment);
        video_samples += 50;
    }
    // A segment cut in the middle of a GOP (SDT, PAT and PMT kept, then the second half of the
    // packets): its first frame is not an IDR frame. An error that says so, not a panic.
    let s0 = std::fs::read(dir.path().join("s0.ts")).unwrap();
    let packets: Vec<&[u8]> = s0.chunks(188).collect();
    let mut cut: Vec<u8> = packets[..3].concat();
    cut.extend(packets[packets.len() / 2..].concat());
    let e = cmaf::remux(&cut, 0, None).unwrap_err();
    assert!(matches!(e, cmaf::CmafError::Unsupported(_)), "{e}");
    assert!(e.to_string().contains("IDR"), "{e}");

    let ts_path = dir.path().join("all.ts");
    let mp4_path = dir.path().join("all.mp4");
    std::fs::write(&ts_path, &whole_ts).unwrap();
    std::fs::write(&mp4_path, &whole_mp4).unwrap();

    let video_src = frame_md5s(&ts_path, "0:v");
    let video_out = frame_md5s(&mp4_path, "0:v");
    assert_eq!(
        video_src.len(),
        video_samples,
        "the source has 6 s at 25 fps"
    );
    assert_eq!(video_out, video_src, "every video frame, identical");
    let audio_src = frame_md5s(&ts_path, "0:a");
    let audio_out = frame_md5s(&mp4_path, "0:a");
    assert!(audio_src.len() > 250, "{}", audio_src.len());
    assert_eq!(audio_out, audio_src, "every audio frame, identical");

    // What ffprobe reads from our boxes is what it reads from the source.
    let entries = "stream=codec_name,profile,level,width,height,pix_fmt,sample_rate,channels";
    // (ffprobe lists a TS's streams twice: under its program and alone.)
    let two = |t: String| {
        t.lines()
            .filter(|l| !l.is_empty())
            .take(2)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let streams = two(probe(&mp4_path, entries));
    assert_eq!(streams, two(probe(&ts_path, entries)));
    assert!(streams.contains("h264,High"), "{streams}");
    assert!(streams.contains("aac,LC"), "{streams}");
    // Decode times continue from the source's timestamps (placed on the wall clock through the
    // program date time), so the file starts late; it lasts the source's 6 s.
    let times: Vec<f64> = probe(&mp4_path, "format=start_time,duration")
        .trim()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    let length = times[1] - times[0];
    assert!(
        (length - 6.0).abs() < 0.1,
        "start {} end {}",
        times[0],
        times[1]
    );
}

/// `ffmpeg -decryption_key` turns our `cenc` and `cbcs` CMAF tracks (one track per file, as CMAF
/// has them; several fragments, each with its own IVs) back into exactly the source's video and
/// audio frames, and so does shaka-packager's raw-key decryption (the reference); without the
/// key the frames differ.
#[test]
fn cenc_and_cbcs_tracks_decrypt_to_the_source_frames() {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", "6", "-c:v", "libx264", "-preset", "fast"])
        .args(["-g", "50", "-keyint_min", "50", "-sc_threshold", "0"])
        .args([
            "-c:a",
            "aac",
            "-f",
            "hls",
            "-hls_time",
            "2",
            "-hls_list_size",
            "0",
        ])
        .arg("-hls_segment_filename")
        .arg(dir.path().join("s%d.ts"))
        .arg(dir.path().join("index.m3u8"))
        .status()
        .unwrap();
    assert!(status.success());
    let key_hex = "0123456789abcdef0123456789abcdef";
    let kid_hex = "00112233445566778899aabbccddeeff";
    let mut key = [0u8; 16];
    let mut kid = [0u8; 16];
    hex::decode_to_slice(key_hex, &mut key).unwrap();
    hex::decode_to_slice(kid_hex, &mut kid).unwrap();
    let packager = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/browser/node_modules/shaka-packager/bin/packager-linux-x64");
    let segments: Vec<Vec<u8>> = (0..3)
        .map(|i| std::fs::read(dir.path().join(format!("s{i}.ts"))).unwrap())
        .collect();
    // One track: the initialization segment and every fragment, as a player appends them.
    let track = |select: cmaf::Select, protection: Option<cmaf::cenc::Protection>, name: &str| {
        let mut whole = Vec::new();
        for (i, ts) in segments.iter().enumerate() {
            let p = protection.clone().map(|mut p| {
                p.iv_base = (i as u64) << 32;
                p
            });
            let pdt = 1_795_600_000_000 + 2000 * i as i64;
            let r = cmaf::remux_select(ts, i as u64, Some(pdt), p.as_ref(), select).unwrap();
            if i == 0 {
                whole.extend(r.init_segment());
            }
            whole.extend(&r.fragment);
        }
        let path = dir.path().join(format!("{name}.mp4"));
        std::fs::write(&path, &whole).unwrap();
        path
    };
    // Read as a stream (stdin), as players and ffmpeg's own HLS/DASH demuxers read fragments:
    // given a seekable multi-fragment file without `sidx`, ffmpeg 5.1 reads every `moof` first
    // and then applies the last fragment's sample encryption to all of them (its bug; it
    // fails on such files from any packager).
    let md5s = |path: &Path, key: Option<&str>| -> Vec<String> {
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-hide_banner", "-v", "quiet"]);
        if let Some(k) = key {
            cmd.args(["-decryption_key", k]);
        }
        let out = cmd
            .args(["-i", "pipe:0", "-f", "framemd5", "-"])
            .stdin(std::fs::File::open(path).unwrap())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.rsplit(',').next().unwrap().trim().to_owned())
            .collect()
    };
    for (select, kind) in [
        (cmaf::Select::Video, "video"),
        (cmaf::Select::Audio, "audio"),
    ] {
        let clear = md5s(&track(select, None, &format!("clear-{kind}")), None);
        assert!(clear.len() >= 140, "{kind}: {} frames", clear.len());
        for scheme in [cmaf::cenc::Scheme::Cenc, cmaf::cenc::Scheme::Cbcs] {
            let name = format!("{scheme:?}-{kind}");
            let p = cmaf::cenc::Protection {
                scheme,
                key,
                kid,
                iv_base: 0,
                constant_iv: [7; 16],
            };
            let path = track(select, Some(p), &name);
            assert_eq!(
                md5s(&path, Some(key_hex)),
                clear,
                "{name}: ffmpeg decrypts every frame"
            );
            assert_ne!(md5s(&path, None), clear, "{name}: really encrypted");
            let dec = dir.path().join(format!("{name}-dec.mp4"));
            let ok = Command::new(&packager)
                .arg(format!(
                    "in={},stream={kind},output={}",
                    path.display(),
                    dec.display()
                ))
                .args(["--enable_raw_key_decryption", "--quiet", "--keys"])
                .arg(format!("label=:key_id={kid_hex}:key={key_hex}"))
                .status()
                .unwrap();
            assert!(ok.success(), "{name}: shaka-packager decrypts it");
            assert_eq!(
                md5s(&dec, None),
                clear,
                "{name}: shaka-packager's decryption"
            );
        }
    }
}

/// fMP4 ingest leaves the edge as MPEG-TS ingest does: ffmpeg encodes once as MPEG-TS HLS and
/// copies the same stream into fMP4 HLS (`-hls_segment_type fmp4`, its own timescales and
/// boxes); every segment read back from fMP4 gives the tracks and runs — codec configuration,
/// sample sizes, durations, composition offsets, sync samples, data, decode times on the program
/// date time — that the same segment gives from MPEG-TS, per track as DASH asks and both
/// together as CMAF HLS asks — from either of two encoders' layouts of the same stream (one
/// failing over to the other changes nothing downstream). A segment cut short or an init without its `moov` is refused with
/// a reason.
#[test]
fn fmp4_ingest_gives_the_tracks_and_samples_of_mpeg_ts_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let ffmpeg = |args: &[&str]| {
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error"])
            .args(args)
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "ffmpeg {args:?}");
    };
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x180:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        "6",
        "-c:v",
        "libx264",
        "-preset",
        "fast",
        "-bf",
        "2",
        "-g",
        "50",
        "-keyint_min",
        "50",
        "-sc_threshold",
        "0",
        "-c:a",
        "aac",
        "-b:a",
        "96k",
        "-f",
        "hls",
        "-hls_time",
        "2",
        "-hls_list_size",
        "0",
        "-hls_segment_filename",
        "s%d.ts",
        "ts.m3u8",
    ]);
    // The same stream copied into fMP4 HLS (`name`: its init `init-{name}.mp4`, segments
    // `{name}{n}.m4s`), the tracks in the order `maps` gives.
    let fmp4_copy = |name: &str, maps: &[&str]| {
        let (init, segments, playlist) = (
            format!("init-{name}.mp4"),
            format!("{name}%d.m4s"),
            format!("{name}.m3u8"),
        );
        let mut args = vec!["-i", "ts.m3u8"];
        args.extend_from_slice(maps);
        args.extend([
            "-c",
            "copy",
            "-bsf:a",
            "aac_adtstoasc",
            "-f",
            "hls",
            "-hls_time",
            "2",
            "-hls_list_size",
            "0",
            "-hls_segment_type",
            "fmp4",
            "-hls_fmp4_init_filename",
            &init,
            "-hls_segment_filename",
            &segments,
            &playlist,
        ]);
        ffmpeg(&args);
    };
    fmp4_copy("f", &[]);
    // A second encoder's fMP4 of the same stream, its initialization segment laid out otherwise
    // (audio as track 1, video as track 2): as after a failover between two encoders.
    fmp4_copy("b", &["-map", "0:a", "-map", "0:v"]);
    let init_a = std::fs::read(dir.path().join("init-f.mp4")).unwrap();
    let init_b = std::fs::read(dir.path().join("init-b.mp4")).unwrap();
    assert!(init_a != init_b, "two layouts");
    let pdt0 = 1_795_600_000_000i64;
    for (i, (init, name)) in (0..3u64).flat_map(|i| [(i, (&init_a, "f")), (i, (&init_b, "b"))]) {
        let ts = std::fs::read(dir.path().join(format!("s{i}.ts"))).unwrap();
        let m4s = std::fs::read(dir.path().join(format!("{name}{i}.m4s"))).unwrap();
        let pdt = Some(pdt0 + i as i64 * 2000);
        let fmp4 = cmaf::Ingest::Fmp4 {
            init,
            segment: &m4s,
        };
        for select in [cmaf::Select::Video, cmaf::Select::Audio, cmaf::Select::All] {
            let from_ts = cmaf::tracks_and_runs(&ts, pdt, None, select).unwrap();
            let from_fmp4 = cmaf::tracks_and_runs(fmp4, pdt, None, select).unwrap();
            assert_eq!(from_fmp4.0, from_ts.0, "segment {i} {select:?}: tracks");
            assert_eq!(from_fmp4.1.len(), from_ts.1.len());
            for (a, b) in from_fmp4.1.iter().zip(&from_ts.1) {
                // ffmpeg states the audio's offset from the video in an edit list counted in
                // milliseconds (its movie timescale): within 1 ms of MPEG-TS's exact offset.
                // Video is exact: it is what both are anchored on.
                let tolerance = if a.track_id == 1 && select != cmaf::Select::Audio {
                    0
                } else {
                    48
                };
                assert!(
                    a.base_decode_time.abs_diff(b.base_decode_time) <= tolerance,
                    "segment {i} {select:?}: {} vs {}",
                    a.base_decode_time,
                    b.base_decode_time
                );
                assert_eq!(a.samples, b.samples, "segment {i} {select:?}");
                assert!(a.data == b.data, "segment {i} {select:?}: sample data");
            }
        }
    }
    // Hostile fMP4: reasons, not panics.
    let m4s = std::fs::read(dir.path().join("f0.m4s")).unwrap();
    let cut = cmaf::Ingest::Fmp4 {
        init: &init_a,
        segment: &m4s[..m4s.len() / 2],
    };
    let e = cmaf::tracks_and_runs(cut, None, None, cmaf::Select::All).unwrap_err();
    assert!(matches!(e, cmaf::CmafError::Malformed(_)), "{e}");
    let no_moov = cmaf::Ingest::Fmp4 {
        init: &init_a[..32],
        segment: &m4s,
    };
    let e = cmaf::tracks_and_runs(no_moov, None, None, cmaf::Select::All).unwrap_err();
    assert!(
        e.to_string().contains("box") || e.to_string().contains("moov"),
        "{e}"
    );
}
