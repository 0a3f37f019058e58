//! User stories, end to end: Debian's ffmpeg pushes a live two-rendition stream to the store
//! sidecar; the real `edgepack_filter.wasm` runs in the proxy-wasm test host (two worker VMs plus
//! a validation VM); ffmpeg as a player decodes every frame of the clear and the AES-128
//! endpoints through it. Keys come through tokenised key URIs; a token for another key is
//! refused; two host instances serve byte-identical encrypted segments, and each keeps what it
//! made (served with the store gone); the filter's metrics
//! count what was served; no VM traps.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use edgepack_host::RunningHost;
use edgepack_test_support::player::decoded_frames;
use edgepack_test_support::sidecar;
use sidecar::{Encoder, EncoderSpec, PASSWORD_1, Sidecar, raw, write_config};

fn config() -> Vec<u8> {
    br#"{ "store": { "cluster": "edgepack_store", "authority": "store", "timeout_ms": 2000 },
      "channels": { "news": { "endpoints": {
        "hls": { "format": "hls", "manifest_window_seconds": 60 },
        "secure": { "format": "hls", "manifest_window_seconds": 60, "program_date_time_interval_seconds": 10,
          "encryption": { "method": "aes-128", "key_rotation_interval_seconds": 10,
                          "key": { "derived": { "secret": "0123456789abcdef0123" } },
                          "key_token": { "secret": "tok-0123456789abcdef", "ttl_seconds": 300 } } },
        "cdn": { "format": "hls",
          "access": { "cdn_identifier": { "secrets": ["s3cret"] } } } } } } }"#
        .to_vec()
}

fn host(store: SocketAddr, workers: usize) -> RunningHost {
    host_with(store, workers, config())
}

fn host_with(store: SocketAddr, workers: usize, config: Vec<u8>) -> RunningHost {
    edgepack_tests::edge(store, &config, workers)
}

fn get(addr: SocketAddr, path: &str, headers: &str) -> sidecar::Response {
    raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: edge\r\n{headers}Connection: close\r\n\r\n")
            .as_bytes(),
    )
}

/// Pushes ~12 s of live video with Digest credentials and waits until it is all stored.
fn stored_stream(dir: &std::path::Path) -> Sidecar {
    let sc = Sidecar::start(&write_config(dir, "", ""));
    Encoder::start(EncoderSpec {
        two_renditions: true,
        ..EncoderSpec::digest(sc.ingest, 1, 12)
    })
    .wait(Duration::from_secs(90));
    sc
}

#[test]
fn clear_and_aes128_endpoints_play_every_frame() {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = stored_stream(dir.path());
    let h = host(sc.internal, 2);
    let status = sc.status();
    let first = status["renditions"][0]["first_program_date_time"]
        .as_str()
        .unwrap()
        .to_owned();
    let start_s = chrono::DateTime::parse_from_rfc3339(&first)
        .unwrap()
        .timestamp();
    // Everything stored is in the past now: a time-shifted range is a VOD playlist that ffmpeg
    // plays from start to end.
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let range = format!("start={start_s}&end={now_s}");
    let seconds: f64 = status["renditions"][0]["duration_seconds"]
        .as_f64()
        .unwrap();
    let expected = (seconds * 25.0).round() as usize;

    let clear = decoded_frames(&format!(
        "http://{}/out/v1/news/hls/index.m3u8?{range}",
        h.addr
    ))
    .unwrap();
    assert_eq!(clear.len(), 2, "two renditions: {:?}", clear.keys());
    for (stream, f) in &clear {
        assert_eq!(
            f.len(),
            expected,
            "stream {stream}: every frame of {seconds} s decoded"
        );
    }
    let secure = decoded_frames(&format!(
        "http://{}/out/v1/news/secure/index.m3u8?{range}",
        h.addr
    ))
    .unwrap();
    assert_eq!(
        secure, clear,
        "the AES-128 endpoint decodes to the very same frames"
    );

    // The encrypted playlist rotates keys every 10 s and tokenises their URIs.
    let pl = get(
        h.addr,
        &format!("/out/v1/news/secure/stream_0/index.m3u8?{range}"),
        "",
    );
    let text = pl.text();
    assert_eq!(pl.status, 200, "{text}");
    let keys: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("#EXT-X-KEY"))
        .collect();
    assert!(keys.len() >= 2, "{text}");
    let key_uri = keys[0]
        .split("URI=\"")
        .nth(1)
        .unwrap()
        .trim_end_matches('"');
    let key_path = format!("/out/v1/news/secure/{}", key_uri.trim_start_matches("../"));
    let key = get(h.addr, &key_path, "");
    assert_eq!((key.status, key.body.len()), (200, 16));
    assert_eq!(key.header("cache-control"), Some("no-store"));
    // A token is bound to its key: used for the next key it is refused.
    let period: u64 = key_uri
        .trim_start_matches("../key/")
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let other = key_path.replacen(&format!("key/{period}"), &format!("key/{}", period + 1), 1);
    assert_eq!(get(h.addr, &other, "").status, 403);
    let tampered = key_path.replace("token=", "token=9");
    assert_eq!(get(h.addr, &tampered, "").status, 403);

    // Playback with tampered key URIs fails.
    let bad = text.replace("token=", "token=9").replace(
        "URI=\"../key/",
        &format!("URI=\"http://{}/out/v1/news/secure/key/", h.addr),
    );
    let bad = bad
        .lines()
        .map(|l| {
            if l.ends_with(".ts") {
                format!("http://{}/out/v1/news/secure/stream_0/{l}", h.addr)
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let bad_path = dir.path().join("tampered.m3u8");
    std::fs::write(&bad_path, bad).unwrap();
    let out = Command::new("timeout")
        .args([
            "-s",
            "KILL",
            "60",
            "ffmpeg",
            "-v",
            "error",
            "-xerror",
            "-protocol_whitelist",
            "file,http,tcp",
            "-i",
        ])
        .arg(&bad_path)
        .args(["-map", "0:v", "-f", "null", "-"])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "playback with refused keys must fail"
    );

    // A second edge (another host, one worker) serves byte-identical encrypted segments.
    let h2 = host(sc.internal, 1);
    for seq in [0, 3] {
        let path = format!("/out/v1/news/secure/stream_1/{seq}.ts");
        let a = get(h.addr, &path, "");
        let b = get(h2.addr, &path, "");
        assert_eq!(a.status, 200);
        assert_eq!(
            a.header("cache-control"),
            Some("max-age=1209600, immutable")
        );
        assert!(a.body == b.body, "segment {seq} differs between edges");
    }

    // Playlists: a VM keeps each answer it made beside the store playlist it came from, one per
    // kind of request (endpoint, filter, time-shift). With the store gone (within the playlist
    // cache's interval, 10 s here), every request still gets its own answer — never the one
    // another endpoint or filter made from the same store playlist.
    let long_cache = String::from_utf8(config()).unwrap().replace(
        r#""timeout_ms": 2000"#,
        r#""timeout_ms": 2000, "playlist_cache_ms": 10000"#,
    );
    let h3 = host_with(sc.internal, 1, long_cache.into_bytes());
    let kinds = [
        "/out/v1/news/hls/index.m3u8",
        "/out/v1/news/hls/index.m3u8?aws.manifestfilter=video_height:0-200",
        "/out/v1/news/secure/index.m3u8",
        "/out/v1/news/hls/stream_0/index.m3u8",
        "/out/v1/news/secure/stream_0/index.m3u8",
    ];
    let answers = kinds.map(|path| {
        let r = get(h3.addr, path, "");
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        // Asked again at once: the kept answer.
        assert!(
            get(h3.addr, path, "").body == r.body,
            "{path} answered differently"
        );
        r.text()
    });
    assert_ne!(answers[0], answers[1], "the filter selects fewer variants");
    assert_ne!(
        answers[3], answers[4],
        "the secure endpoint's playlist has keys"
    );
    assert!(answers[4].contains("#EXT-X-KEY:METHOD=AES-128"));
    assert!(!answers[3].contains("#EXT-X-KEY"));

    // Encrypted once per edge: with the store gone, a segment this edge made is still served,
    // byte-identical, whichever worker answers (shared data crosses the worker VMs); one it
    // never made is a 502.
    let made = get(h.addr, "/out/v1/news/secure/stream_1/3.ts", "").body;
    sc.stop();
    for _ in 0..6 {
        let r = get(h.addr, "/out/v1/news/secure/stream_1/3.ts", "");
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.body == made, "the kept segment is the one made");
        assert_eq!(
            r.header("cache-control"),
            Some("max-age=1209600, immutable")
        );
    }
    let never = get(
        h.addr,
        "/out/v1/news/cdn/stream_1/2.ts",
        "x-edgepack-cdn-identifier: s3cret\r\n",
    );
    assert_eq!(never.status, 502, "{}", never.text());
    for (path, before) in kinds.iter().zip(&answers) {
        let r = get(h3.addr, path, "");
        assert_eq!(r.status, 200, "{path} with the store gone: {}", r.text());
        assert_eq!(&r.text(), before, "{path}: its own answer");
    }
    assert_eq!(h.traps() + h2.traps() + h3.traps(), 0);
}

#[test]
fn faults_answer_clearly_and_the_vms_survive() {
    // A store address with nothing listening yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let h = host(store, 2);
    for _ in 0..4 {
        let r = get(h.addr, "/out/v1/news/hls/index.m3u8", "");
        assert_eq!(r.status, 502, "{}", r.text());
        assert!(r.text().contains("store is unavailable"), "{}", r.text());
    }
    let r = get(h.addr, "/out/v1/sports/hls/index.m3u8", "");
    assert_eq!(r.status, 404);
    assert!(r.text().contains("configured: news"));
    let r = get(h.addr, "/out/v1/news/dash/index.m3u8", "");
    assert_eq!(r.status, 404);
    assert!(
        r.text().contains("configured: cdn, hls, secure"),
        "{}",
        r.text()
    );
    let cdn_refused = get(h.addr, "/out/v1/news/cdn/index.m3u8", "");
    assert_eq!(cdn_refused.status, 403);
    assert_eq!(
        get(h.addr, "/somewhere/else", "").status,
        404,
        "not ours, and no route"
    );

    // The store comes up on that address: the same VMs serve again.
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "", "");
    let text = std::fs::read_to_string(&cfg).unwrap().replacen(
        "internal_listen = \"127.0.0.1:0\"",
        &format!("internal_listen = \"{store}\""),
        1,
    );
    std::fs::write(&cfg, text).unwrap();
    let mut sc = Sidecar::start(&cfg);
    let ok = sidecar::basic("enc1", PASSWORD_1);
    sidecar::put(sc.ingest, "/in/v1/news/1/s0.ts", Some(&ok), &[0x47; 188]);
    let pl = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:2.0,\ns0.ts\n";
    sidecar::put(sc.ingest, "/in/v1/news/1/hd.m3u8", Some(&ok), pl.as_bytes());
    for _ in 0..4 {
        let r = get(h.addr, "/out/v1/news/hls/index.m3u8", "");
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().contains("hd/index.m3u8"));
    }
    let r = get(
        h.addr,
        "/out/v1/news/cdn/hd/0.ts",
        "x-edgepack-cdn-identifier: s3cret\r\n",
    );
    assert_eq!((r.status, r.body.len()), (200, 188));
    let cdn_bytes = r.body.len() + cdn_refused.body.len();
    assert_eq!(get(h.addr, "/out/v1/news/hls/hd/7.ts", "").status, 404);
    assert_eq!(h.traps(), 0, "no VM trapped");

    // Metrics count what was served, per channel, endpoint and status class.
    let m = &h.metrics;
    let name = |ep: &str, class: &str| {
        format!("edgepack.egress_requests.channel.news.endpoint.{ep}.status_class.{class}")
    };
    assert_eq!(m.get(&name("hls", "5xx")), Some(4));
    assert_eq!(m.get(&name("hls", "2xx")), Some(4));
    assert_eq!(m.get(&name("hls", "4xx")), Some(1));
    assert_eq!(m.get(&name("cdn", "4xx")), Some(1));
    assert_eq!(m.get(&name("cdn", "2xx")), Some(1));
    assert_eq!(
        m.get("edgepack.egress_bytes.channel.news.endpoint.cdn"),
        Some(cdn_bytes as i64),
        "every body byte served, refusals included"
    );
    assert_eq!(
        m.get("edgepack.egress_requests.channel._unknown.endpoint._unknown.status_class.4xx"),
        Some(2)
    );
    let prom = get(h.admin, "/stats/prometheus", "").text();
    assert!(
        prom.contains("edgepack_egress_requests_channel_news_endpoint_hls_status_class_2xx{} 4"),
        "{prom}"
    );
    assert!(
        prom.contains("edgepack_egress_response_time_ms_channel_news_endpoint_hls_count{} 9"),
        "{prom}"
    );
    sc.stop();
}

/// The last sequence and the segment URIs of a media playlist served through the filter.
fn edge_playlist(h: &RunningHost) -> (u64, Vec<String>, String) {
    let r = get(h.addr, "/out/v1/news/hls/stream_0/index.m3u8", "");
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    let uris = sidecar::segment_uris(&text);
    let first: u64 = sidecar::tag_value(&text, "#EXT-X-MEDIA-SEQUENCE")
        .unwrap()
        .parse()
        .unwrap();
    (first + uris.len() as u64, uris, text)
}

#[test]
fn egress_keeps_advancing_from_input_2_when_encoder_1_dies() {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = Sidecar::start(&write_config(dir.path(), "", ""));
    let h = host(sc.internal, 2);
    let encoder =
        |input: u8, seconds: u32| Encoder::start(EncoderSpec::digest(sc.ingest, input, seconds));
    let mut one = encoder(1, 60);
    let two = encoder(2, 24);
    sidecar::wait_for(Duration::from_secs(30), "both inputs publishing", || {
        let s = sc.status();
        (s["inputs"][0]["publishing"] == true && s["inputs"][1]["publishing"] == true).then_some(())
    });
    let (before, _, _) = edge_playlist(&h);
    one.kill();
    sidecar::wait_for(
        Duration::from_secs(20),
        "egress to advance past the kill",
        || (edge_playlist(&h).0 >= before + 4).then_some(()),
    );
    two.wait(Duration::from_secs(60));
    let (_, uris, text) = edge_playlist(&h);
    let first: u64 = sidecar::tag_value(&text, "#EXT-X-MEDIA-SEQUENCE")
        .unwrap()
        .parse()
        .unwrap();
    for (i, uri) in uris.iter().enumerate() {
        assert_eq!(
            uri,
            &format!("{}.ts", first + i as u64),
            "no sequence gap: {text}"
        );
    }
    assert!(!text.contains("#EXT-X-DISCONTINUITY\n"), "{text}");
    assert_eq!(sc.status()["active_input"], 2);
    let last = get(
        h.addr,
        &format!("/out/v1/news/hls/stream_0/{}", uris.last().unwrap()),
        "",
    );
    assert_eq!(last.status, 200);
    assert_eq!(h.traps(), 0);
    sc.stop();
}
