//! Reads what the test host can take from an Envoy bootstrap (`envoy/envoy.yaml`): the wasm
//! plugin configuration, the `stats_tags`, the static clusters, the direct-response routes the
//! filter is disabled on, and the stdout access log's format. It reads; Envoy's own strict check of the file is `make lint-envoy`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The parts of a bootstrap the host uses.
#[derive(Debug, Clone, Default)]
pub struct Bootstrap {
    /// Each wasm filter's `configuration` (StringValue JSON), in file order.
    pub plugin_configs: Vec<String>,
    /// Each wasm filter's `vm_config.code.local.filename`.
    pub wasm_files: Vec<PathBuf>,
    /// `stats_config.stats_tags`: (tag name, regex).
    pub stats_tags: Vec<(String, String)>,
    /// STATIC clusters with one socket address.
    pub clusters: Vec<(String, SocketAddr)>,
    /// Listener name, address, and whether it terminates TLS.
    pub listeners: Vec<(String, SocketAddr, bool)>,
    /// Exact-path routes answered with a file, with the wasm filter disabled on them.
    pub file_routes: Vec<FileRoute>,
    /// The first stdout access log's `log_format.json_format`.
    pub access_log_format: Option<serde_json::Map<String, Value>>,
}

/// `match: { path }` + `direct_response: { body: { filename } }`.
#[derive(Debug, Clone)]
pub struct FileRoute {
    pub path: String,
    pub status: u16,
    pub filename: PathBuf,
    pub content_type: Option<String>,
}

fn socket(v: &Value) -> Option<SocketAddr> {
    let s = &v["socket_address"];
    format!("{}:{}", s["address"].as_str()?, s["port_value"].as_u64()?)
        .parse()
        .ok()
}

fn walk<'a>(v: &'a Value, found: &mut Vec<&'a Value>, pred: &dyn Fn(&Value) -> bool) {
    if pred(v) {
        found.push(v);
    }
    match v {
        Value::Object(m) => m.values().for_each(|x| walk(x, found, pred)),
        Value::Array(a) => a.iter().for_each(|x| walk(x, found, pred)),
        _ => {}
    }
}

impl Bootstrap {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let doc: Value =
            serde_yaml_ng::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut b = Bootstrap::default();

        let mut wasm = Vec::new();
        walk(&doc, &mut wasm, &|v| {
            v["@type"]
                .as_str()
                .is_some_and(|t| t.ends_with("envoy.extensions.filters.http.wasm.v3.Wasm"))
        });
        for w in wasm {
            if let Some(c) = w["config"]["configuration"]["value"].as_str() {
                b.plugin_configs.push(c.to_owned());
            }
            if let Some(f) = w["config"]["vm_config"]["code"]["local"]["filename"].as_str() {
                b.wasm_files.push(PathBuf::from(f));
            }
        }
        for t in doc["stats_config"]["stats_tags"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let (Some(n), Some(r)) = (t["tag_name"].as_str(), t["regex"].as_str()) {
                b.stats_tags.push((n.to_owned(), r.to_owned()));
            }
        }
        let mut logs = Vec::new();
        walk(&doc, &mut logs, &|v| {
            v["@type"].as_str().is_some_and(|t| {
                t.ends_with("envoy.extensions.access_loggers.stream.v3.StdoutAccessLog")
            })
        });
        b.access_log_format = logs
            .first()
            .and_then(|l| l["log_format"]["json_format"].as_object())
            .cloned();
        let resources = &doc["static_resources"];
        for c in resources["clusters"].as_array().into_iter().flatten() {
            let endpoint = &c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"];
            if let (Some(name), Some(addr)) = (c["name"].as_str(), socket(&endpoint["address"])) {
                b.clusters.push((name.to_owned(), addr));
            }
        }
        for l in resources["listeners"].as_array().into_iter().flatten() {
            if let (Some(name), Some(addr)) = (l["name"].as_str(), socket(&l["address"])) {
                let tls = l["filter_chains"][0]["transport_socket"].is_object();
                b.listeners.push((name.to_owned(), addr, tls));
            }
        }
        let mut routes = Vec::new();
        walk(&doc, &mut routes, &|v| {
            v["direct_response"]["body"]["filename"].is_string() && v["match"]["path"].is_string()
        });
        for r in routes {
            let disabled = r["typed_per_filter_config"]["envoy.filters.http.wasm"]["disabled"]
                .as_bool()
                .unwrap_or(false);
            let path = r["match"]["path"].as_str().unwrap_or_default().to_owned();
            if !disabled || b.file_routes.iter().any(|f| f.path == path) {
                continue;
            }
            let content_type = r["response_headers_to_add"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|h| h["header"]["key"].as_str() == Some("content-type"))
                .and_then(|h| h["header"]["value"].as_str())
                .map(str::to_owned);
            b.file_routes.push(FileRoute {
                path,
                status: r["direct_response"]["status"].as_u64().unwrap_or(200) as u16,
                filename: PathBuf::from(
                    r["direct_response"]["body"]["filename"]
                        .as_str()
                        .unwrap_or_default(),
                ),
                content_type,
            });
        }
        Ok(b)
    }
}
