//! User story: an encoder (Debian's ffmpeg) pushes a live two-rendition HLS stream with
//! credentials, and the edge reads back exactly what it sent: the multivariant playlist, media
//! playlists that list only committed segments, every segment byte-identical.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::collections::BTreeMap;
use std::time::Duration;

use edgepack_test_support::player;
use edgepack_test_support::sidecar::*;

/// Checks that every segment a served playlist lists can be fetched right now.
fn listed_segments_are_all_served(sc: &Sidecar, rendition: &str) -> usize {
    let r = sc.get(&format!("/store/v1/news/{rendition}/index.m3u8"));
    if r.status == 404 {
        return 0;
    }
    assert_eq!(r.status, 200);
    let uris = segment_uris(&r.text());
    for uri in &uris {
        let s = sc.get(&format!("/store/v1/news/{rendition}/{uri}"));
        assert_eq!(
            s.status, 200,
            "listed segment {rendition}/{uri} is not served"
        );
    }
    uris.len()
}

#[test]
fn ffmpeg_digest_push_two_renditions_served_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = Sidecar::start(&write_config(dir.path(), "", ""));
    let local = dir.path().join("local");
    let mut enc = Encoder::start(EncoderSpec {
        two_renditions: true,
        local_copy: Some(&local),
        ..EncoderSpec::digest(sc.ingest, 1, 12)
    });
    // While the encoder runs (and its playlist PUTs race its segment PUTs), every served
    // playlist lists only segments that can be fetched.
    let mut checks = 0;
    while enc.running() {
        listed_segments_are_all_served(&sc, "stream_0");
        listed_segments_are_all_served(&sc, "stream_1");
        checks += 1;
        std::thread::sleep(Duration::from_millis(150));
    }
    assert!(checks > 10);
    enc.wait(Duration::from_secs(5));

    let master = String::from_utf8(sc.get_ok("/store/v1/news/index.m3u8")).unwrap();
    assert_eq!(
        segment_uris(&master),
        vec!["stream_0/index.m3u8", "stream_1/index.m3u8"],
        "{master}"
    );
    assert!(master.contains("RESOLUTION=320x240") && master.contains("RESOLUTION=160x120"));

    let mut local_files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for e in std::fs::read_dir(&local).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "ts") {
            local_files.insert(
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            );
        }
    }
    for v in 0..2 {
        let rendition = format!("stream_{v}");
        let pl = String::from_utf8(sc.get_ok(&format!("/store/v1/news/{rendition}/index.m3u8")))
            .unwrap();
        assert_eq!(tag_value(&pl, "#EXT-X-MEDIA-SEQUENCE"), Some("0"));
        assert_eq!(tag_value(&pl, "#EXT-X-TARGETDURATION"), Some("2"));
        assert!(!pl.contains("#EXT-X-DISCONTINUITY\n"), "{pl}");
        let uris = segment_uris(&pl);
        let expected: Vec<&String> = local_files
            .keys()
            .filter(|k| k.starts_with(&format!("stream_{v}_")))
            .collect();
        // ffmpeg deleted all but 3 segments from the ingest (delete_segments): the startover
        // history keeps every one of them.
        assert_eq!(uris.len(), expected.len(), "{pl}");
        assert!(uris.len() >= 5, "12 s of 2 s segments: {pl}");
        assert_eq!(
            pl.matches("#EXT-X-PROGRAM-DATE-TIME:").count(),
            uris.len(),
            "every segment carries a program date time"
        );
        for (i, uri) in uris.iter().enumerate() {
            assert_eq!(uri, &format!("{i}.ts"));
            let r = sc.get(&format!("/store/v1/news/{rendition}/{uri}"));
            assert_eq!(r.status, 200);
            assert_eq!(r.header("content-type"), Some("video/mp2t"));
            assert_eq!(r.header("x-edgepack-active-input"), Some("1"));
            let sent = &local_files[&format!("stream_{v}_{i}.ts")];
            assert!(
                r.body == *sent,
                "{rendition}/{uri}: {} bytes served, {} sent",
                r.body.len(),
                sent.len()
            );
            // Conditional GET with the ETag.
            let etag = r.header("etag").unwrap().to_owned();
            let again = raw(
                sc.internal,
                format!(
                    "GET /store/v1/news/{rendition}/{uri} HTTP/1.1\r\nHost: s\r\nIf-None-Match: {etag}\r\nConnection: close\r\n\r\n"
                )
                .as_bytes(),
            );
            assert_eq!(again.status, 304);
        }
    }
    let status = sc.status();
    assert_eq!(status["active_input"], 1);
    assert_eq!(status["renditions"].as_array().unwrap().len(), 2);
    // Nothing half-written is left behind.
    assert_eq!(
        std::fs::read_dir(sc.data.join("news/tmp")).unwrap().count(),
        0
    );
    // Metrics count what happened.
    let metrics = String::from_utf8(sc.get_ok("/metrics")).unwrap();
    assert!(
        metrics.contains(
            "edgepack_store_ingest_requests_total{channel=\"news\",input=\"1\",method=\"PUT\",status_class=\"2xx\"}"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("edgepack_store_active_input{channel=\"news\"} 1"));
    // The access log has a line for every upload, with who sent what and how it went.
    sc.stop();
    let log = access_log(&sc);
    for (name, bytes) in &local_files {
        let line = log
            .iter()
            .find(|l| l["path"] == format!("/in/v1/news/1/{name}") && l["status"] == 201)
            .unwrap_or_else(|| panic!("no 201 for {name} in {log:?}"));
        assert_eq!(line["bytes"], bytes.len(), "{line}");
        let what = [&line["channel"], &line["input"], &line["method"]];
        assert_eq!(what, ["news", "1", "PUT"], "{line}");
        assert_eq!(line["user"], "enc1");
        assert!(
            line["client"].as_str().unwrap().starts_with("127.0.0.1:"),
            "{line}"
        );
        assert!(line["duration_ms"].as_f64().unwrap() > 0.0, "{line}");
    }
    // ffmpeg's Digest: each exchange starts with a challenge, answered 401 without a user.
    assert!(
        log.iter()
            .any(|l| l["status"] == 401 && l["user"].is_null())
    );
}

/// The sidecar's access log: its standard output, one JSON object per line.
fn access_log(sc: &Sidecar) -> Vec<serde_json::Value> {
    sc.printed
        .lock()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn ffmpeg_fmp4_push_is_served_with_its_initialization_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = Sidecar::start(&write_config(dir.path(), "", ""));
    let local = dir.path().join("local");
    Encoder::start(EncoderSpec {
        two_renditions: true,
        local_copy: Some(&local),
        fmp4: true,
        ..EncoderSpec::digest(sc.ingest, 1, 8)
    })
    .wait(Duration::from_secs(60));
    for v in 0..2 {
        let rendition = format!("stream_{v}");
        let pl = String::from_utf8(sc.get_ok(&format!("/store/v1/news/{rendition}/index.m3u8")))
            .unwrap();
        // One initialization segment, named by the store, announced before the first segment.
        let maps: Vec<&str> = pl
            .lines()
            .filter(|l| l.starts_with("#EXT-X-MAP:"))
            .collect();
        assert_eq!(maps.len(), 1, "{pl}");
        let init_uri = maps[0]
            .trim_start_matches("#EXT-X-MAP:URI=\"")
            .trim_end_matches('"');
        assert!(
            init_uri.starts_with("init-") && init_uri.ends_with(".mp4"),
            "{pl}"
        );
        assert!(pl.find("#EXT-X-MAP").unwrap() < pl.find("#EXTINF").unwrap());
        let init = sc.get(&format!("/store/v1/news/{rendition}/{init_uri}"));
        assert_eq!(init.status, 200);
        assert_eq!(init.header("content-type"), Some("video/mp4"));
        let sent_init = std::fs::read(local.join(format!("init_{v}.mp4"))).unwrap();
        assert!(
            init.body == sent_init,
            "initialization segment byte-identical"
        );
        assert_eq!(
            sc.get(&format!("/store/v1/news/{rendition}/init.mp4")).body,
            sent_init
        );

        let uris = segment_uris(&pl);
        assert_eq!(uris.len(), 4, "8 s of 2 s segments: {pl}");
        let mut whole = init.body.clone();
        for (i, uri) in uris.iter().enumerate() {
            assert_eq!(uri, &format!("{i}.m4s"));
            let r = sc.get(&format!("/store/v1/news/{rendition}/{uri}"));
            assert_eq!(r.header("content-type"), Some("video/mp4"));
            let sent = std::fs::read(local.join(format!("stream_{v}_{i}.m4s"))).unwrap();
            assert!(r.body == sent, "{rendition}/{uri} byte-identical");
            whole.extend_from_slice(&r.body);
        }
        // Initialization segment + media segments, as served, are a stream ffmpeg decodes whole.
        let file = dir.path().join(format!("{rendition}.mp4"));
        std::fs::write(&file, &whole).unwrap();
        let frames = player::decoded_frames(file.to_str().unwrap()).unwrap();
        assert_eq!(frames[&0].len(), 200, "8 s at 25 fps, every frame");
    }
    assert_eq!(
        sc.get("/store/v1/news/stream_0/init-0000.mp4").status,
        404,
        "unknown initialization segment"
    );
    sc.stop();
}

#[test]
fn segments_the_encoder_encrypted_itself_are_stored_under_its_key() {
    use aes::cipher::{BlockDecryptMut as _, KeyIvInit as _, block_padding::Pkcs7};
    let dir = tempfile::tempdir().unwrap();
    let mut sc = Sidecar::start(&write_config(dir.path(), "", ""));
    let key = [0x5au8; 16];
    let key_file = dir.path().join("k.bin");
    std::fs::write(&key_file, key).unwrap();
    // ffmpeg's key info file: the URI for the playlist, the key's file; no IV line, so each
    // segment's IV is its media sequence number.
    let info = dir.path().join("key_info");
    let uri = "https://keys.example.com/news/k.bin";
    std::fs::write(&info, format!("{uri}\n{}\n", key_file.display())).unwrap();
    let local = dir.path().join("local");
    Encoder::start(EncoderSpec {
        local_copy: Some(&local),
        key_info: Some(&info),
        ..EncoderSpec::digest(sc.ingest, 1, 6)
    })
    .wait(Duration::from_secs(60));

    // The segments look like noise; the first arrived before any playlist named its key. The
    // store takes them all, byte for byte, and passes the source's key on.
    let pl = String::from_utf8(sc.get_ok("/store/v1/news/stream_0/index.m3u8")).unwrap();
    assert!(
        pl.contains(&format!("#EXT-X-KEY:METHOD=AES-128,URI=\"{uri}\"")),
        "{pl}"
    );
    let uris = segment_uris(&pl);
    assert_eq!(uris.len(), 3, "6 s of 2 s segments: {pl}");
    let mut clear = Vec::new();
    for (i, uri) in uris.iter().enumerate() {
        let served = sc.get_ok(&format!("/store/v1/news/stream_0/{uri}"));
        let sent = std::fs::read(local.join(format!("stream_0_{i}.ts"))).unwrap();
        assert!(served == sent, "{uri} byte-identical");
        let iv = (i as u128).to_be_bytes();
        let plain = cbc::Decryptor::<aes::Aes128>::new(&key.into(), &iv.into())
            .decrypt_padded_vec_mut::<Pkcs7>(&served)
            .unwrap();
        assert_eq!(
            (plain[0], plain[188]),
            (0x47, 0x47),
            "{uri} decrypts to MPEG-TS"
        );
        clear.extend_from_slice(&plain);
    }
    let file = dir.path().join("clear.ts");
    std::fs::write(&file, &clear).unwrap();
    let frames = player::decoded_frames(file.to_str().unwrap()).unwrap();
    assert_eq!(frames[&0].len(), 150, "6 s at 25 fps, every frame");
    sc.stop();
}

#[test]
fn an_encoder_restarted_from_zero_continues_the_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = Sidecar::start(&write_config(dir.path(), "", ""));
    // ffmpeg's default numbering starts at 0 on every run: the second run numbers its segments
    // again from 0 (and its tone differs: a restarted live encoder sends other pictures).
    for tone_hz in [440, 660] {
        Encoder::start(EncoderSpec {
            tone_hz,
            ..EncoderSpec::digest(sc.ingest, 1, 6)
        })
        .wait(Duration::from_secs(60));
    }
    let pl = String::from_utf8(sc.get_ok("/store/v1/news/stream_0/index.m3u8")).unwrap();
    assert_eq!(
        segment_uris(&pl),
        ["0.ts", "1.ts", "2.ts", "3.ts", "4.ts", "5.ts"],
        "{pl}"
    );
    assert_eq!(pl.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{pl}");
    assert!(pl.contains("2.ts\n#EXT-X-DISCONTINUITY\n"), "{pl}");
    // Each run's segments, as served, decode whole.
    for (run, range) in [(0, 0..3), (1, 3..6)] {
        let mut ts = Vec::new();
        for n in range {
            ts.extend(sc.get_ok(&format!("/store/v1/news/stream_0/{n}.ts")));
        }
        let file = dir.path().join(format!("run{run}.ts"));
        std::fs::write(&file, &ts).unwrap();
        let frames = player::decoded_frames(file.to_str().unwrap()).unwrap();
        assert_eq!(
            frames[&0].len(),
            150,
            "run {run}: 6 s at 25 fps, every frame"
        );
    }
    sc.stop();
}

#[test]
fn ffmpeg_basic_auth_header_push_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = Sidecar::start(&write_config(dir.path(), "", ""));
    let local = dir.path().join("local");
    let enc = Encoder::start(EncoderSpec {
        auth: Auth::BasicHeader {
            user: "enc2",
            pass: PASSWORD_2,
        },
        local_copy: Some(&local),
        ..EncoderSpec::digest(sc.ingest, 2, 6)
    });
    enc.wait(Duration::from_secs(60));
    let pl = String::from_utf8(sc.get_ok("/store/v1/news/stream_0/index.m3u8")).unwrap();
    let uris = segment_uris(&pl);
    assert!(uris.len() >= 3, "{pl}");
    for (i, uri) in uris.iter().enumerate() {
        let body = sc.get_ok(&format!("/store/v1/news/stream_0/{uri}"));
        assert_eq!(
            body,
            std::fs::read(local.join(format!("stream_0_{i}.ts"))).unwrap()
        );
    }
    // No multivariant was sent: one is synthesized from the rendition.
    let master = String::from_utf8(sc.get_ok("/store/v1/news/index.m3u8")).unwrap();
    assert!(master.contains("#EXT-X-STREAM-INF:BANDWIDTH="), "{master}");
    assert_eq!(segment_uris(&master), vec!["stream_0/index.m3u8"]);
    assert_eq!(sc.status()["active_input"], 2);
    sc.stop();
}

#[test]
fn ffmpeg_with_wrong_password_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = Sidecar::start(&write_config(dir.path(), "", ""));
    let enc = Encoder::start(EncoderSpec {
        auth: Auth::DigestInUrl {
            user: "enc1",
            pass: "not-the-password",
        },
        ..EncoderSpec::digest(sc.ingest, 1, 4)
    });
    // ffmpeg ignores the 401s and exits 0; what matters is what was stored.
    enc.wait(Duration::from_secs(60));
    let stored: Vec<String> = snapshot(&sc.data).into_iter().map(|(p, _)| p).collect();
    assert!(stored.is_empty(), "nothing may be stored, found {stored:?}");
    assert_eq!(sc.get("/store/v1/news/index.m3u8").status, 404);
    let metrics = String::from_utf8(sc.get_ok("/metrics")).unwrap();
    assert!(metrics.contains("status_class=\"4xx\""));
    sc.stop();
    // Every refusal is in the access log with the user who tried; none stored a byte.
    let log = access_log(&sc);
    assert!(
        log.iter()
            .any(|l| l["status"] == 401 && l["user"] == "enc1"),
        "{log:?}"
    );
    assert!(
        log.iter().all(|l| l["status"] == 401 && l["bytes"] == 0),
        "{log:?}"
    );
}

/// IngressResponseTime against a measured latency: one upload moves the sidecar's request-time
/// histogram by at most what the encoder waited, and IngressBytes by exactly its body.
#[test]
fn ingest_metrics_match_what_the_encoder_measured() {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = Sidecar::start(&write_config(dir.path(), "", ""));
    let metric = |name: &str| -> f64 {
        let text = String::from_utf8(sc.get_ok("/metrics")).unwrap();
        let prefix = format!("{name}{{channel=\"news\",input=\"1\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map_or(0.0, |v| v.parse().unwrap())
    };
    let ok = basic("enc1", PASSWORD_1);
    let body = ts_bytes(9, 188 * 1000);
    // A first upload defines the series.
    assert_eq!(
        put(sc.ingest, "/in/v1/news/1/s0.ts", Some(&ok), &body).status,
        201
    );
    let (seconds, bytes) = (
        metric("edgepack_store_ingest_duration_seconds_sum"),
        metric("edgepack_store_ingress_bytes_total"),
    );
    let started = std::time::Instant::now();
    assert_eq!(
        put(sc.ingest, "/in/v1/news/1/s1.ts", Some(&ok), &body).status,
        201
    );
    let measured = started.elapsed().as_secs_f64();
    let moved = metric("edgepack_store_ingest_duration_seconds_sum") - seconds;
    assert!(
        moved > 0.0 && moved <= measured,
        "the sidecar recorded {moved} s for an upload the encoder waited {measured} s for"
    );
    assert_eq!(
        metric("edgepack_store_ingress_bytes_total") - bytes,
        body.len() as f64
    );
    sc.stop();
}
