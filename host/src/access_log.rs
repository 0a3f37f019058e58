//! Envoy's stdout access log (`envoy.extensions.access_loggers.stream.v3.StdoutAccessLog`) with a
//! `json_format`, for the command operators `envoy/envoy.yaml` uses: one JSON line per request,
//! the same fields Envoy would print. An operator this host does not know is refused when the
//! bootstrap is read, not printed wrong.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

/// One field's value source.
#[derive(Debug, Clone, PartialEq)]
enum Operator {
    StartTime,
    Request(String),
    ResponseCode,
    BytesSent,
    Duration,
    DownstreamRemoteAddress,
    /// `%FILTER_STATE(KEY:PLAIN)%`.
    FilterState(String),
    Text(String),
}

/// Where lines go.
#[derive(Debug, Clone)]
pub enum Sink {
    Stdout,
    /// Kept in memory (tests read them).
    Memory(Arc<Mutex<Vec<String>>>),
}

/// A parsed `json_format` and where its lines go.
#[derive(Debug, Clone)]
pub struct AccessLog {
    fields: Vec<(String, Operator)>,
    pub sink: Sink,
}

/// What one request leaves for its log line.
#[derive(Debug, Default)]
pub struct Entry<'a> {
    pub start_ms: i64,
    pub request_headers: &'a [(String, String)],
    pub status: u16,
    pub bytes_sent: u64,
    pub duration_ms: u64,
    pub downstream: String,
    /// Filter state: `set_property` paths, joined with `.` (Envoy prefixes them `wasm.`).
    pub properties: Option<&'a HashMap<String, Vec<u8>>>,
}

fn operator(value: &str) -> Result<Operator, String> {
    let Some(inner) = value.strip_prefix('%').and_then(|v| v.strip_suffix('%')) else {
        return Ok(Operator::Text(value.to_owned()));
    };
    Ok(match inner {
        "START_TIME" => Operator::StartTime,
        "RESPONSE_CODE" => Operator::ResponseCode,
        "BYTES_SENT" => Operator::BytesSent,
        "DURATION" => Operator::Duration,
        "DOWNSTREAM_REMOTE_ADDRESS" => Operator::DownstreamRemoteAddress,
        _ => {
            if let Some(h) = inner.strip_prefix("REQ(").and_then(|r| r.strip_suffix(')')) {
                Operator::Request(h.to_ascii_lowercase())
            } else if let Some(key) = inner
                .strip_prefix("FILTER_STATE(")
                .and_then(|r| r.strip_suffix(":PLAIN)"))
            {
                Operator::FilterState(key.to_owned())
            } else {
                return Err(format!(
                    "access log operator '{value}' is not one this host prints (START_TIME, REQ(…), RESPONSE_CODE, BYTES_SENT, DURATION, DOWNSTREAM_REMOTE_ADDRESS, FILTER_STATE(…:PLAIN))"
                ));
            }
        }
    })
}

impl AccessLog {
    /// From a `log_format.json_format` object (flat: string values).
    pub fn from_json_format(format: &Map<String, Value>, sink: Sink) -> Result<Self, String> {
        let mut fields = Vec::new();
        for (k, v) in format {
            let v = v
                .as_str()
                .ok_or_else(|| format!("access log field '{k}' must be a string"))?;
            fields.push((k.clone(), operator(v)?));
        }
        Ok(Self { fields, sink })
    }

    /// The JSON line for `e`: typed numbers where Envoy types them, `null` for a value not set.
    pub fn line(&self, e: &Entry<'_>) -> String {
        let mut out = Map::new();
        for (k, op) in &self.fields {
            let v = match op {
                Operator::StartTime => Value::from(edgepack_store_api::format_pdt(e.start_ms)),
                Operator::Request(h) => e
                    .request_headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(h))
                    .map_or(Value::Null, |(_, v)| Value::from(v.as_str())),
                Operator::ResponseCode => Value::from(e.status),
                Operator::BytesSent => Value::from(e.bytes_sent),
                Operator::Duration => Value::from(e.duration_ms),
                Operator::DownstreamRemoteAddress => Value::from(e.downstream.as_str()),
                Operator::FilterState(key) => key
                    .strip_prefix("wasm.")
                    .and_then(|k| e.properties?.get(k))
                    .map_or(Value::Null, |v| Value::from(String::from_utf8_lossy(v))),
                Operator::Text(t) => Value::from(t.as_str()),
            };
            out.insert(k.clone(), v);
        }
        Value::Object(out).to_string()
    }

    /// Writes the line for `e`.
    pub fn write(&self, e: &Entry<'_>) {
        let line = self.line(e);
        match &self.sink {
            Sink::Stdout => {
                let _ = writeln!(std::io::stdout().lock(), "{line}");
            }
            Sink::Memory(lines) => {
                if let Ok(mut l) = lines.lock() {
                    l.push(line);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_has_envoys_fields() {
        let format: Map<String, Value> = serde_json::from_str(
            r#"{"start":"%START_TIME%","path":"%REQ(:PATH)%","status":"%RESPONSE_CODE%",
                "bytes":"%BYTES_SENT%","ms":"%DURATION%","client":"%DOWNSTREAM_REMOTE_ADDRESS%",
                "channel":"%FILTER_STATE(wasm.edgepack_channel:PLAIN)%",
                "nothing":"%FILTER_STATE(wasm.unset:PLAIN)%","proxy":"edge"}"#,
        )
        .unwrap();
        let log = AccessLog::from_json_format(&format, Sink::Stdout).unwrap();
        let headers = vec![(":path".to_owned(), "/out/v1/news/hls/index.m3u8".to_owned())];
        let props = HashMap::from([("edgepack_channel".to_owned(), b"news".to_vec())]);
        let line = log.line(&Entry {
            start_ms: 0,
            request_headers: &headers,
            status: 200,
            bytes_sent: 512,
            duration_ms: 3,
            downstream: "127.0.0.1:4000".into(),
            properties: Some(&props),
        });
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["start"], "1970-01-01T00:00:00.000Z");
        assert_eq!(v["path"], "/out/v1/news/hls/index.m3u8");
        assert_eq!(
            (v["status"].as_u64(), v["bytes"].as_u64()),
            (Some(200), Some(512))
        );
        assert_eq!(v["ms"], 3);
        assert_eq!(v["client"], "127.0.0.1:4000");
        assert_eq!(v["channel"], "news");
        assert!(v["nothing"].is_null());
        assert_eq!(v["proxy"], "edge");
    }

    #[test]
    fn an_operator_the_host_cannot_print_is_refused() {
        let format: Map<String, Value> =
            serde_json::from_str(r#"{"x":"%UPSTREAM_HOST%"}"#).unwrap();
        let e = AccessLog::from_json_format(&format, Sink::Stdout).unwrap_err();
        assert!(e.contains("UPSTREAM_HOST"), "{e}");
    }
}
