//! A real S3 server on loopback for the shared-storage tests: `moto` in server mode (PyPI, in the
//! repository's `.venv`, which `make test` builds), started on a port chosen at run time and
//! stopped when dropped. It speaks the S3 protocol, conditional writes included.

// Test support: a failed step must stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::sidecar::{Sidecar, get, raw, write_config};

/// A running S3 server with one bucket.
pub struct S3Server {
    child: Child,
    pub addr: SocketAddr,
    pub bucket: String,
    /// An AWS shared credentials file for the sidecars (moto takes any key).
    pub credentials: PathBuf,
}

fn moto_server() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/moto_server")
}

impl S3Server {
    /// Starts moto on a free loopback port and creates `bucket`; `dir` holds the credentials.
    pub fn start(dir: &Path, bucket: &str) -> S3Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = moto_server();
        assert!(
            server.exists(),
            "{} is missing: `make lint-envoy` installs tests/requirements.txt into .venv",
            server.display()
        );
        let child = Command::new(server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(30);
        while crate::sidecar::try_raw(
            addr,
            b"GET / HTTP/1.1\r\nHost: s3\r\nConnection: close\r\n\r\n",
        )
        .is_none()
        {
            assert!(Instant::now() < deadline, "moto_server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let created = raw(
            addr,
            format!("PUT /{bucket} HTTP/1.1\r\nHost: s3\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        assert_eq!(
            created.status,
            200,
            "creating the bucket: {}",
            created.text()
        );
        let credentials = dir.join("aws-credentials");
        std::fs::write(
            &credentials,
            "[default]\naws_access_key_id = edgepack-test\naws_secret_access_key = edgepack-test-secret\n",
        )
        .unwrap();
        S3Server {
            child,
            addr,
            bucket: bucket.to_owned(),
            credentials,
        }
    }

    /// The sidecar's `[storage]` section for this server: a short request timeout (a paused
    /// server fails fast) and a snapshot every 5 log objects, so tests start sidecars from
    /// snapshots and see superseded log objects deleted.
    pub fn storage_section(&self) -> String {
        format!(
            "\n[storage]\nkind = \"s3\"\nbucket = \"{}\"\nendpoint = \"http://{}\"\nallow_http = true\ncredentials_file = \"{}\"\nrequest_timeout_seconds = 2\nsnapshot_every = 5\n",
            self.bucket,
            self.addr,
            self.credentials.display()
        )
    }

    /// Starts a sidecar on this bucket in `dir/name`, with `server` lines in `[server]`.
    pub fn sidecar(&self, dir: &Path, name: &str, server: &str) -> Sidecar {
        self.sidecar_in_channel(dir, name, server, "")
    }

    /// [`S3Server::sidecar`] with `channel` lines in the channel.
    pub fn sidecar_in_channel(
        &self,
        dir: &Path,
        name: &str,
        server: &str,
        channel: &str,
    ) -> Sidecar {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        Sidecar::start(&write_config(
            &d,
            &format!("{server}\n{}", self.storage_section()),
            channel,
        ))
    }

    /// The keys under `prefix` (first 1,000).
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let r = get(
            self.addr,
            &format!("/{}?list-type=2&prefix={prefix}", self.bucket),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        r.text()
            .split("<Key>")
            .skip(1)
            .filter_map(|k| k.split("</Key>").next())
            .map(str::to_owned)
            .collect()
    }

    /// Downloads every object under `prefix` into `dir` (paths after the prefix) with the S3 API
    /// (boto3, signed as a client of the bucket would: objects are private).
    pub fn download(&self, prefix: &str, dir: &Path) {
        let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
        let script = r#"
import os, sys, boto3
endpoint, bucket, prefix, out = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="edgepack-test", aws_secret_access_key="edgepack-test-secret")
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
    for o in page.get("Contents", []):
        to = os.path.join(out, o["Key"][len(prefix):])
        os.makedirs(os.path.dirname(to), exist_ok=True)
        s3.download_file(bucket, o["Key"], to)
"#;
        let out = Command::new(python)
            .args(["-c", script])
            .arg(format!("http://{}", self.addr))
            .args([&self.bucket, prefix])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "downloading {prefix}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Freezes the server (SIGSTOP): connections open, nothing answers — a bucket that is down.
    pub fn pause(&self) {
        signal(&self.child, "-STOP");
    }

    /// Lets a paused server answer again (SIGCONT).
    pub fn resume(&self) {
        signal(&self.child, "-CONT");
    }
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig}");
}

impl Drop for S3Server {
    fn drop(&mut self) {
        signal(&self.child, "-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
