//! The access log of the ingest listener: one JSON line per request on standard output (the
//! process's own log is on standard error), as a web server's access log — what an operator
//! greps when an encoder says its uploads fail.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use crate::config::AccessLogTarget;

/// One request, as logged.
#[derive(Debug)]
pub(super) struct Line<'a> {
    pub channel: &'a str,
    pub input: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    /// Body bytes stored (0 for a refusal).
    pub bytes: u64,
    pub duration: Duration,
    /// The username the request presented (unverified: the status says whether it was taken).
    pub user: Option<&'a str>,
    pub client: Option<SocketAddr>,
}

impl Line<'_> {
    /// The JSON text of the line (no line break).
    pub(super) fn to_json(&self) -> String {
        serde_json::json!({
            "time": edgepack_store_api::format_pdt(crate::channel::now_ms()),
            "channel": self.channel,
            "input": self.input,
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "bytes": self.bytes,
            "duration_ms": (self.duration.as_secs_f64() * 1e6).round() / 1e3,
            "user": self.user,
            "client": self.client.map(|c| c.to_string()),
        })
        .to_string()
    }
}

/// Writes `line` where `target` says. A closed or full standard output loses the line, never
/// the request.
pub(super) fn write(target: AccessLogTarget, line: &Line<'_>) {
    if target == AccessLogTarget::Stdout {
        let text = line.to_json();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_has_every_field_and_no_secret() {
        let line = Line {
            channel: "news",
            input: "1",
            method: "PUT",
            path: "/in/v1/news/1/seg\"5.ts",
            status: 201,
            bytes: 1880,
            duration: Duration::from_micros(12_345),
            user: Some("enc1"),
            client: Some("127.0.0.1:5000".parse().unwrap()),
        };
        let v: serde_json::Value = serde_json::from_str(&line.to_json()).unwrap();
        assert_eq!(v["path"], "/in/v1/news/1/seg\"5.ts");
        assert_eq!(v["status"], 201);
        assert_eq!(v["bytes"], 1880);
        assert_eq!(v["duration_ms"], 12.345);
        assert_eq!(v["user"], "enc1");
        assert_eq!(v["client"], "127.0.0.1:5000");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(v.as_object().unwrap().len(), 10);
    }
}
