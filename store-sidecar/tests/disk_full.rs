//! User story (#16 §3): the disk fills up during live ingest. The encoder gets 507 with a reason,
//! nothing partial is ever visible, the journal stays readable, ingest resumes by itself once
//! there is space again, and a restart reads back exactly what was acknowledged.
//!
//! The full disk is real: a tmpfs of 2 MiB mounted over the data directory (root only; without
//! root the test says so and does nothing).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

use std::path::{Path, PathBuf};
use std::process::Command;

use edgepack_test_support::sidecar::*;

/// A tmpfs mounted by the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount -t tmpfs failed (as root)");
        Tmpfs(at.to_owned())
    }

    fn resize(&self, size: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

/// 200 KB of MPEG-TS packets (sync byte, then the segment's number).
fn segment(n: usize) -> Vec<u8> {
    (0..1064)
        .flat_map(|_| {
            let mut p = vec![n as u8; 188];
            p[0] = 0x47;
            p
        })
        .collect()
}

/// The encoder uploads segment `n`.
fn push(sc: &Sidecar, auth: &str, n: usize) -> Response {
    put(
        sc.ingest,
        &format!("/in/v1/news/1/s{n}.ts"),
        Some(auth),
        &segment(n),
    )
}

fn playlist(count: usize) -> String {
    let mut p = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n");
    for i in 0..count {
        p.push_str(&format!("#EXTINF:2.0,\ns{i}.ts\n"));
    }
    p
}

/// What the store serves of rendition `hd`: each listed segment's bytes, in order.
fn served(sc: &Sidecar) -> Vec<Vec<u8>> {
    let r = sc.get("/store/v1/news/hd/index.m3u8");
    if r.status == 404 {
        return Vec::new();
    }
    assert_eq!(r.status, 200, "{}", r.text());
    segment_uris(&r.text())
        .iter()
        .map(|uri| sc.get_ok(&format!("/store/v1/news/hd/{uri}")))
        .collect()
}

fn journal_lines_parse(data: &Path) {
    let text = std::fs::read_to_string(data.join("news/renditions/hd/journal.jsonl")).unwrap();
    for (i, line) in text.lines().enumerate() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "journal line {} is torn: {line:?}",
            i + 1
        );
    }
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "journal ends mid-line"
    );
}

fn temp_files(data: &Path) -> usize {
    std::fs::read_dir(data.join("news/tmp")).map_or(0, |d| d.count())
}

#[test]
fn a_full_disk_answers_507_keeps_what_was_acknowledged_and_recovers() {
    if !is_root() {
        eprintln!("SKIPPED disk_full: mounting a small tmpfs needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&dir.path().join("data"), "2m");
    let config = write_config(dir.path(), "", "");
    let mut sc = Sidecar::start(&config);
    let ok = basic("enc1", PASSWORD_1);

    // The encoder pushes until the disk says no.
    let mut acknowledged = 0;
    let refusal = loop {
        assert!(acknowledged < 40, "a 2 MiB disk took 8 MB");
        let n = acknowledged;
        let r = push(&sc, &ok, n);
        if r.status != 201 {
            break r;
        }
        let r = put(
            sc.ingest,
            "/in/v1/news/1/hd.m3u8",
            Some(&ok),
            playlist(n + 1).as_bytes(),
        );
        if !matches!(r.status, 201 | 204) {
            break r;
        }
        acknowledged += 1;
    };
    assert_eq!(refusal.status, 507, "{}", refusal.text());
    assert!(
        refusal.text().contains("storage is full"),
        "507 says why: {}",
        refusal.text()
    );
    assert!(
        acknowledged >= 3,
        "only {acknowledged} segments fit in 2 MiB"
    );

    // What was acknowledged is served whole; nothing else, nothing partial.
    let want: Vec<Vec<u8>> = (0..acknowledged).map(segment).collect();
    let listed = served(&sc);
    assert!(
        listed.len() == acknowledged || listed.len() + 1 == acknowledged,
        "served {} of {acknowledged} acknowledged",
        listed.len()
    );
    assert_eq!(
        listed[..],
        want[..listed.len()],
        "served bytes are what was sent"
    );
    let missing = sc.get(&format!("/store/v1/news/hd/{acknowledged}.ts"));
    assert_eq!(missing.status, 404, "{}", missing.text());
    assert_eq!(temp_files(&sc.data), 0, "a partial upload is left in tmp/");
    journal_lines_parse(&sc.data);

    // More attempts while full: refused the same way, nothing changes.
    for _ in 0..3 {
        let r = push(&sc, &ok, acknowledged);
        assert_eq!(r.status, 507, "{}", r.text());
    }
    assert_eq!(served(&sc), listed);
    assert_eq!(temp_files(&sc.data), 0);

    // Space comes back: the encoder's next uploads go through, no restart needed.
    disk.resize("64m");
    for n in acknowledged..acknowledged + 3 {
        let r = push(&sc, &ok, n);
        assert_eq!(r.status, 201, "{}", r.text());
        let r = put(
            sc.ingest,
            "/in/v1/news/1/hd.m3u8",
            Some(&ok),
            playlist(n + 1).as_bytes(),
        );
        assert!(matches!(r.status, 201 | 204), "{}", r.text());
    }
    let total = acknowledged + 3;
    let after: Vec<Vec<u8>> = (0..total).map(segment).collect();
    assert_eq!(
        served(&sc),
        after,
        "every acknowledged segment, in order, whole"
    );
    journal_lines_parse(&sc.data);

    // A restart reads back exactly that.
    sc.stop();
    let mut sc = Sidecar::start(&config);
    assert_eq!(
        served(&sc),
        after,
        "the journal gives back what was acknowledged"
    );
    sc.stop();
    drop(disk);
}
