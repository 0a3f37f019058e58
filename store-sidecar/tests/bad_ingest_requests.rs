//! User story: a misconfigured or hostile client gets a specific status and a reason it can act
//! on for every bad ingest request, and the stored state does not change.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use edgepack_test_support::sidecar::*;
use md5::Digest as _;

const PLAYLIST: &str = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:5\n\
#EXTINF:2.000000,\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T14:00:00.000+0000\nseg5.ts\n";

fn seeded(dir: &std::path::Path) -> Sidecar {
    let sc = Sidecar::start(&write_config(
        dir,
        "max_segment_bytes = 4096\nmax_playlist_bytes = 2048\nmax_path_bytes = 200",
        "",
    ));
    let auth = basic("enc1", PASSWORD_1);
    assert_eq!(
        put(
            sc.ingest,
            "/in/v1/news/1/seg5.ts",
            Some(&auth),
            &ts_bytes(7, 1000)
        )
        .status,
        201
    );
    assert_eq!(
        put(
            sc.ingest,
            "/in/v1/news/1/hd.m3u8",
            Some(&auth),
            PLAYLIST.as_bytes()
        )
        .status,
        201
    );
    let pl = sc.get("/store/v1/news/hd/index.m3u8");
    assert_eq!(segment_uris(&pl.text()), vec!["5.ts"]);
    sc
}

fn tmp_is_empty(sc: &Sidecar) -> bool {
    std::fs::read_dir(sc.data.join("news/tmp")).unwrap().count() == 0
}

#[test]
fn every_bad_request_gets_its_status_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = seeded(dir.path());
    let before = snapshot(&sc.data);
    let served_before = sc.get_ok("/store/v1/news/hd/index.m3u8");
    let ok = basic("enc1", PASSWORD_1);
    let ingest = sc.ingest;
    let req = |head: &str| {
        raw(
            ingest,
            format!("{head}\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
    };

    // Credentials: missing, wrong password, the other input's credentials.
    let r = put(ingest, "/in/v1/news/1/seg6.ts", None, b"x");
    assert_eq!(r.status, 401, "{}", r.text());
    let challenges = r.headers_named("www-authenticate");
    assert!(challenges[0].starts_with("Digest ") && challenges[0].contains("algorithm=SHA-256"));
    assert!(challenges[1].contains("algorithm=MD5") && challenges[1].contains("qop=\"auth\""));
    assert!(challenges[2].starts_with("Basic "));
    let r = put(
        ingest,
        "/in/v1/news/1/seg6.ts",
        Some(&basic("enc1", "wrong")),
        b"x",
    );
    assert_eq!(r.status, 401);
    assert!(r.text().contains("wrong username or password"));
    let r = put(
        ingest,
        "/in/v1/news/1/seg6.ts",
        Some(&basic("enc2", PASSWORD_2)),
        b"x",
    );
    assert_eq!(r.status, 401, "input 2's credentials do not open input 1");
    let r = put(ingest, "/in/v1/news/1/seg6.ts", Some("Bearer abc"), b"x");
    assert_eq!(r.status, 401);
    assert!(r.text().contains("Digest or Basic"));

    // Unknown channel, input not 1|2, not an ingest path.
    let r = put(ingest, "/in/v1/sports/1/a.ts", Some(&ok), b"x");
    assert_eq!(r.status, 404);
    assert!(
        r.text()
            .contains("unknown channel 'sports'; configured: news"),
        "{}",
        r.text()
    );
    let r = put(ingest, "/in/v1/news/3/a.ts", Some(&ok), b"x");
    assert_eq!(r.status, 404);
    assert!(r.text().contains("inputs are 1 and 2"));
    assert_eq!(put(ingest, "/elsewhere", Some(&ok), b"x").status, 404);

    // Path traversal, raw on the wire so no client normalizes it away.
    for path in [
        "/in/v1/news/1/../../etc/passwd",
        "/in/v1/news/1/a/%2e%2e/%2e%2e/x.ts",
        "/in/v1/news/1/..%2f..%2fx.ts",
        "/in/v1/news/1//etc/passwd",
        "/in/v1/news/1/a%00.ts",
        "/in/v1/news/1/a%5c..%5cb.ts",
    ] {
        let r = put(ingest, path, Some(&ok), b"x");
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        assert!(r.text().contains("not allowed"), "{path}: {}", r.text());
    }

    // Limits: path, segment body (declared and streamed), playlist body.
    let long = format!("/in/v1/news/1/{}.ts", "a".repeat(300));
    assert_eq!(put(ingest, &long, Some(&ok), b"x").status, 414);
    let r = put(ingest, "/in/v1/news/1/big.ts", Some(&ok), &[0u8; 5000]);
    assert_eq!(r.status, 413, "{}", r.text());
    let mut chunked = format!(
        "PUT /in/v1/news/1/big2.ts HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: {ok}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..5 {
        chunked.extend_from_slice(b"400\r\n");
        chunked.extend_from_slice(&[1u8; 1024]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(raw(ingest, &chunked).status, 413);
    let big_playlist = format!("{PLAYLIST}{}", "#EXT-X-FOO:1\n".repeat(200));
    assert_eq!(
        put(
            ingest,
            "/in/v1/news/1/hd.m3u8",
            Some(&ok),
            big_playlist.as_bytes()
        )
        .status,
        413
    );

    // Bad playlists: the previous good one stays.
    for (body, needle) in [
        ("not a playlist", "#EXTM3U"),
        ("#EXTM3U\n#EXTINF:2,\nseg6.ts\n", "TARGETDURATION"),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:two,\nseg6.ts\n",
            "line 3",
        ),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n../../x.ts\n",
            "outside",
        ),
    ] {
        let r = put(ingest, "/in/v1/news/1/hd.m3u8", Some(&ok), body.as_bytes());
        assert_eq!(r.status, 400, "{body:?}: {}", r.text());
        assert!(r.text().contains(needle), "{body:?}: {}", r.text());
    }
    let regress = PLAYLIST.replace("MEDIA-SEQUENCE:5", "MEDIA-SEQUENCE:4");
    let r = put(
        ingest,
        "/in/v1/news/1/hd.m3u8",
        Some(&ok),
        regress.as_bytes(),
    );
    assert_eq!(r.status, 409);
    assert!(r.text().contains("went backwards"), "{}", r.text());

    // Methods.
    let r = req(&format!(
        "PATCH /in/v1/news/1/a.ts HTTP/1.1\r\nAuthorization: {ok}\r\nContent-Length: 0"
    ));
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("OPTIONS, PUT, POST, DELETE, MKCOL"));
    assert!(r.text().contains("use PUT (or POST)"), "{}", r.text());
    // POST uploads as PUT does (ffmpeg POSTs its WebVTT playlists): an empty segment is no media.
    let r = req(&format!(
        "POST /in/v1/news/1/a.ts HTTP/1.1\r\nAuthorization: {ok}\r\nContent-Length: 0"
    ));
    assert_eq!(r.status, 415, "{}", r.text());
    assert_eq!(req("OPTIONS /in/v1/news/1/a.ts HTTP/1.1").status, 200);
    let r = req("POST /store/v1/news/status HTTP/1.1");
    assert_eq!(
        r.status, 404,
        "the internal API is not on the ingest listener"
    );

    assert!(tmp_is_empty(&sc));
    assert_eq!(snapshot(&sc.data), before, "stored state must not change");
    assert_eq!(sc.get_ok("/store/v1/news/hd/index.m3u8"), served_before);
    sc.stop();
}

#[test]
fn encoder_delete_does_not_shorten_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = seeded(dir.path());
    let ok = basic("enc1", PASSWORD_1);
    let r = raw(
        sc.ingest,
        format!("DELETE /in/v1/news/1/seg5.ts HTTP/1.1\r\nHost: x\r\nAuthorization: {ok}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n").as_bytes(),
    );
    assert_eq!(r.status, 204);
    assert_eq!(sc.get_ok("/store/v1/news/hd/5.ts"), ts_bytes(7, 1000));
    let r = raw(
        sc.ingest,
        format!("MKCOL /in/v1/news/1/dir HTTP/1.1\r\nHost: x\r\nAuthorization: {ok}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    assert_eq!(r.status, 201);
    sc.stop();
}

#[test]
fn playlist_before_its_segment_is_published_only_after_the_upload() {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = seeded(dir.path());
    let ok = basic("enc1", PASSWORD_1);
    let next = format!("{PLAYLIST}#EXTINF:2.000000,\nseg6.ts\n");
    assert_eq!(
        put(
            sc.ingest,
            "/in/v1/news/1/hd.m3u8",
            Some(&ok),
            next.as_bytes()
        )
        .status,
        204
    );
    let pl = sc.get_ok("/store/v1/news/hd/index.m3u8");
    assert_eq!(
        segment_uris(&String::from_utf8(pl).unwrap()),
        vec!["5.ts"],
        "seg6 not uploaded yet"
    );
    assert_eq!(sc.get("/store/v1/news/hd/6.ts").status, 404);
    // A proxy's error page instead of the segment: refused (the playlists say the input is
    // clear, so these bytes are no encrypted segment), and nothing is stored.
    let r = put(
        sc.ingest,
        "/in/v1/news/1/seg6.ts",
        Some(&ok),
        b"<!DOCTYPE html><title>502</title>",
    );
    assert_eq!(r.status, 415, "{}", r.text());
    assert_eq!(
        r.text(),
        "'seg6.ts' is not MPEG-TS, fMP4, WebVTT or packed audio (it begins \"<!DOCTYPE html><\"); \
         nothing was stored. Segments an encoder encrypted itself are taken while its playlists \
         carry their EXT-X-KEY\n"
    );
    assert!(!sc.data.join("news/incoming/1/seg6.ts").exists());
    assert_eq!(sc.get("/store/v1/news/hd/6.ts").status, 404);
    assert_eq!(
        put(sc.ingest, "/in/v1/news/1/seg6.ts", Some(&ok), &[0x47u8; 10]).status,
        201
    );
    let pl = String::from_utf8(sc.get_ok("/store/v1/news/hd/index.m3u8")).unwrap();
    assert_eq!(segment_uris(&pl), vec!["5.ts", "6.ts"]);
    let seg = sc.get("/store/v1/news/hd/6.ts");
    assert_eq!(seg.body, vec![0x47u8; 10]);
    assert_eq!(
        seg.header("x-edgepack-program-date-time"),
        Some("2026-11-25T14:00:02.000Z")
    );
    assert_eq!(seg.header("x-edgepack-duration"), Some("2.000000"));
    // The PDT of a segment without one follows from the previous segment.
    assert!(
        pl.contains("#EXT-X-PROGRAM-DATE-TIME:2026-11-25T14:00:02.000Z"),
        "{pl}"
    );
    sc.stop();
}

/// RFC 7616 response for one request.
fn digest_response(nonce: &str, method: &str, uri: &str, pass: &str) -> String {
    let h = |s: String| hex::encode(md5::Md5::digest(s.as_bytes()));
    let ha1 = h(format!("enc1:edgepack:{pass}"));
    let ha2 = h(format!("{method}:{uri}"));
    let resp = h(format!("{ha1}:{nonce}:00000001:c0ffee:auth:{ha2}"));
    format!(
        "Digest username=\"enc1\", realm=\"edgepack\", nonce=\"{nonce}\", uri=\"{uri}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c0ffee\", response=\"{resp}\""
    )
}

#[test]
fn digest_nonces_work_and_expire_as_stale() {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = seeded(dir.path());
    let uri = "/in/v1/news/1/seg9.ts";
    let r = put(sc.ingest, uri, None, b"x");
    let challenge = r.headers_named("www-authenticate")[1].to_owned();
    let nonce = challenge
        .split("nonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let good = digest_response(&nonce, "PUT", uri, PASSWORD_1);
    assert_eq!(put(sc.ingest, uri, Some(&good), b"Gdata").status, 201);
    let bad = digest_response(&nonce, "PUT", uri, "nope");
    assert_eq!(put(sc.ingest, uri, Some(&bad), b"Gdata").status, 401);
    // A nonce this server never issued (or issued before a restart) with the right password:
    // the client is told to retry with a fresh nonce instead of asking for a password.
    let foreign = digest_response(
        "5f00aa.00112233445566778899aabbccddeeff",
        "PUT",
        uri,
        PASSWORD_1,
    );
    let r = put(sc.ingest, uri, Some(&foreign), b"Gdata");
    assert_eq!(r.status, 401);
    assert!(
        r.headers_named("www-authenticate")[0].contains("stale=true"),
        "{:?}",
        r.headers
    );
    sc.stop();
}

#[test]
fn curl_digest_upload_works() {
    let dir = tempfile::tempdir().unwrap();
    let mut sc = seeded(dir.path());
    let file = dir.path().join("seg7.ts");
    std::fs::write(&file, [0x47u8; 333]).unwrap();
    let out = std::process::Command::new("curl")
        .args(["-sS", "--digest", "-u", &format!("enc1:{PASSWORD_1}"), "-T"])
        .arg(&file)
        .args(["-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://{}/in/v1/news/1/seg7.ts", sc.ingest))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "201");
    let next = format!("{PLAYLIST}#EXTINF:2.000000,\nseg6.ts\n#EXTINF:2.000000,\nseg7.ts\n");
    let ok = basic("enc1", PASSWORD_1);
    put(sc.ingest, "/in/v1/news/1/seg6.ts", Some(&ok), &[0x47u8; 5]);
    put(
        sc.ingest,
        "/in/v1/news/1/hd.m3u8",
        Some(&ok),
        next.as_bytes(),
    );
    assert_eq!(sc.get_ok("/store/v1/news/hd/7.ts"), vec![0x47u8; 333]);
    sc.stop();
}
