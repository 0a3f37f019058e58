//! User story (#16 §3): abusive clients on the ingest listener — a connection that never sends a
//! request, a slowloris sending half a request head, an upload whose body stops, a flood of wrong
//! credentials — are closed or refused, leave nothing behind, and the good encoder's uploads go
//! through all along.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use edgepack_test_support::sidecar::*;

/// Reads until the server closes the connection (or 10 s pass: then the server kept it open).
fn read_until_closed(s: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("still open after {:?}: {e}", started.elapsed()),
        }
    }
    (
        String::from_utf8_lossy(&out).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn idle_slow_and_stalled_connections_are_closed_while_the_encoder_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "idle_timeout_seconds = 2", "");
    let mut sc = Sidecar::start(&config);
    let ok = basic("enc1", PASSWORD_1);

    let mut idle = TcpStream::connect(sc.ingest).unwrap();
    let mut slowloris = TcpStream::connect(sc.ingest).unwrap();
    write!(
        slowloris,
        "PUT /in/v1/news/1/s9.ts HTTP/1.1\r\nHost: x\r\nAuthorization: {ok}\r\n"
    )
    .unwrap();
    let mut stalled = TcpStream::connect(sc.ingest).unwrap();
    write!(
        stalled,
        "PUT /in/v1/news/1/s8.ts HTTP/1.1\r\nHost: x\r\nAuthorization: {ok}\r\nContent-Length: 100000\r\n\r\n"
    )
    .unwrap();
    stalled.write_all(&[0x47; 10]).unwrap();

    // The encoder goes on meanwhile.
    let mut playlist = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n");
    for n in 0..3 {
        let r = put(
            sc.ingest,
            &format!("/in/v1/news/1/s{n}.ts"),
            Some(&ok),
            &[0x47; 1880],
        );
        assert_eq!(r.status, 201, "{}", r.text());
        playlist.push_str(&format!("#EXTINF:2.0,\ns{n}.ts\n"));
        let r = put(
            sc.ingest,
            "/in/v1/news/1/hd.m3u8",
            Some(&ok),
            playlist.as_bytes(),
        );
        assert!(matches!(r.status, 201 | 204), "{}", r.text());
    }

    let (said, took) = read_until_closed(&mut idle);
    assert!(
        said.is_empty() || said.starts_with("HTTP/1.1 408"),
        "{said}"
    );
    assert!(
        took <= Duration::from_secs(4),
        "an idle connection stayed {took:?}"
    );
    let (said, took) = read_until_closed(&mut slowloris);
    assert!(
        said.is_empty() || said.starts_with("HTTP/1.1 408"),
        "{said}"
    );
    assert!(
        took <= Duration::from_secs(4),
        "a slowloris stayed {took:?}"
    );
    let (said, _) = read_until_closed(&mut stalled);
    assert!(said.starts_with("HTTP/1.1 408"), "{said}");
    assert!(said.contains("sent no data for 2 s"), "{said}");

    // Nothing of the stalled upload is kept or served.
    wait_for(
        Duration::from_secs(5),
        "the stalled upload's temp file to go",
        || {
            (std::fs::read_dir(sc.data.join("news/tmp")).map_or(0, |d| d.count()) == 0)
                .then_some(())
        },
    );
    assert_eq!(sc.get("/store/v1/news/hd/3.ts").status, 404);
    assert_eq!(
        segment_uris(&String::from_utf8(sc.get_ok("/store/v1/news/hd/index.m3u8")).unwrap()),
        ["0.ts", "1.ts", "2.ts"]
    );

    // A flood of wrong credentials is refused, one by one, and changes nothing.
    let wrong = basic("enc1", "guess");
    for n in 0..500 {
        let r = put(
            sc.ingest,
            &format!("/in/v1/news/1/x{n}.ts"),
            Some(&wrong),
            b"x",
        );
        assert_eq!(r.status, 401);
    }
    let r = put(sc.ingest, "/in/v1/news/1/s3.ts", Some(&ok), &[0x47; 1880]);
    assert_eq!(r.status, 201, "{}", r.text());
    sc.stop();
}

/// 10,000 tiny PUTs from a misbehaving client (authenticated: the flood a broken encoder makes)
/// while the good encoder pushes: every upload is answered, the good encoder's go through, and
/// its latency is printed beside the flood's (never asserted: timing depends on the machine).
/// About two minutes (every upload is fsynced): `make soak` runs it, not `make test`.
#[test]
#[ignore = "10,000 fsynced uploads take ~2 minutes: make soak runs it"]
fn ten_thousand_tiny_puts_do_not_stop_the_good_encoder() {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = Sidecar::start(&write_config(dir.path(), "", ""));
    let ingest = sc.ingest;
    let flooder = std::thread::spawn(move || {
        let auth = basic("enc2", PASSWORD_2);
        let started = Instant::now();
        for n in 0..10_000 {
            let r = put(
                ingest,
                &format!("/in/v1/news/2/flood/{n}.ts"),
                Some(&auth),
                b"G",
            );
            assert_eq!(r.status, 201, "{}", r.text());
        }
        started.elapsed()
    });
    let ok = basic("enc1", PASSWORD_1);
    let mut latencies = Vec::new();
    let mut playlist = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n");
    let mut n = 0;
    while !flooder.is_finished() || n < 5 {
        let started = Instant::now();
        let r = put(
            ingest,
            &format!("/in/v1/news/1/s{n}.ts"),
            Some(&ok),
            &[0x47; 18_800],
        );
        assert_eq!(r.status, 201, "{}", r.text());
        playlist.push_str(&format!("#EXTINF:2.0,\ns{n}.ts\n"));
        let r = put(
            ingest,
            "/in/v1/news/1/hd.m3u8",
            Some(&ok),
            playlist.as_bytes(),
        );
        assert!(matches!(r.status, 201 | 204), "{}", r.text());
        latencies.push(started.elapsed());
        n += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    let flood = flooder.join().unwrap();
    latencies.sort_unstable();
    println!(
        "10,000 tiny PUTs in {flood:.1?}; meanwhile the good encoder's {n} segment + playlist \
         uploads: p50 {:.1?}, max {:.1?}",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
    let pl = String::from_utf8(sc.get_ok("/store/v1/news/hd/index.m3u8")).unwrap();
    assert_eq!(segment_uris(&pl).len(), n, "{pl}");
    sc.stop();
}
