//! `edgepack-host`: runs the edgepack filter in the proxy-wasm test host for local use.
//!
//! edgepack-host [--bootstrap envoy.yaml [--map-dir FROM=TO]] [--wasm PATH] [--config FILE.json]
//!               [--cluster NAME=HOST:PORT …] [--file PATH=FILE …] [--listen ADDR] [--admin ADDR]
//!               [--workers N] [--route CLUSTER]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use edgepack_host::access_log::{AccessLog, Sink};
use edgepack_host::bootstrap::Bootstrap;
use edgepack_host::{DirectResponse, HostOptions, start};

const USAGE: &str =
    "usage: edgepack-host [--bootstrap envoy.yaml [--map-dir FROM=TO ...]] [--wasm PATH] \
[--config FILE.json] [--cluster NAME=HOST:PORT ...] [--file PATH=FILE ...] [--listen ADDR] \
[--admin ADDR] [--workers N] [--route CLUSTER]

Runs edgepack_filter.wasm in the proxy-wasm test host (not Envoy): requests to --listen (default
127.0.0.1:10000) go through the filter; store fetches go to the clusters; requests the filter
continues go to --route (404 without one). Metrics: http://ADMIN/stats/prometheus.

--bootstrap takes from an Envoy bootstrap the wasm filter's configuration and .wasm file, the
static clusters, stats_tags, the exact-path direct_response file routes the filter is disabled
on, and the stdout access log's json_format (one line per request on stdout); --map-dir rewrites the files' paths (the bootstrap names container paths). --wasm, --config,
--cluster and --file override it. Prints one line `edgepack-host listening http=ADDR admin=ADDR`
when ready.";

fn content_type(file: &Path) -> &'static str {
    match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "application/javascript",
        _ => "application/octet-stream",
    }
}

fn read(file: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))
}

/// The options from the command line (`USAGE`), the bootstrap filling what the flags leave out.
/// Longer than most: one match arm per flag, and the merge needs every flag's value.
fn parse() -> Result<HostOptions, String> {
    let mut args = std::env::args().skip(1);
    let mut bootstrap = None;
    let mut maps: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut wasm = None;
    let mut config = None;
    let mut clusters: Vec<(String, SocketAddr)> = Vec::new();
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    let mut listen = SocketAddr::from(([127, 0, 0, 1], 10000));
    let mut admin = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut workers = 2;
    let mut route = None;
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--bootstrap" => bootstrap = Some(PathBuf::from(value("--bootstrap")?)),
            "--map-dir" => {
                let v = value("--map-dir")?;
                let (from, to) = v.split_once('=').ok_or("--map-dir is FROM=TO")?;
                maps.push((from.into(), to.into()));
            }
            "--wasm" => wasm = Some(PathBuf::from(value("--wasm")?)),
            "--config" => config = Some(read(Path::new(&value("--config")?))?),
            "--cluster" => {
                let v = value("--cluster")?;
                let (name, addr) = v.split_once('=').ok_or("--cluster is NAME=HOST:PORT")?;
                let addr = addr
                    .parse()
                    .map_err(|_| format!("--cluster {v}: bad address"))?;
                clusters.push((name.to_owned(), addr));
            }
            "--file" => {
                let v = value("--file")?;
                let (path, file) = v.split_once('=').ok_or("--file is PATH=FILE")?;
                files.push((path.to_owned(), file.into()));
            }
            "--listen" => listen = value("--listen")?.parse().map_err(|_| "bad --listen")?,
            "--admin" => admin = value("--admin")?.parse().map_err(|_| "bad --admin")?,
            "--workers" => workers = value("--workers")?.parse().map_err(|_| "bad --workers")?,
            "--route" => route = Some(value("--route")?),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n\n{USAGE}")),
        }
    }
    let map = |p: &Path| -> PathBuf {
        for (from, to) in &maps {
            if let Ok(rest) = p.strip_prefix(from) {
                return to.join(rest);
            }
        }
        p.to_owned()
    };
    let mut stats_tags = Vec::new();
    let mut direct_responses = Vec::new();
    let mut access_log = None;
    if let Some(b) = &bootstrap {
        let b = Bootstrap::load(b)?;
        if config.is_none() {
            config = b.plugin_configs.first().map(|c| c.clone().into_bytes());
        }
        if wasm.is_none() {
            wasm = b.wasm_files.first().map(|w| map(w));
        }
        for c in b.clusters {
            if !clusters.iter().any(|(n, _)| *n == c.0) {
                clusters.push(c);
            }
        }
        stats_tags = b.stats_tags;
        if let Some(format) = &b.access_log_format {
            access_log = Some(AccessLog::from_json_format(format, Sink::Stdout)?);
        }
        for r in b.file_routes {
            if files.iter().any(|(p, _)| *p == r.path) {
                continue;
            }
            let file = map(&r.filename);
            direct_responses.push(DirectResponse {
                content_type: r
                    .content_type
                    .unwrap_or_else(|| content_type(&file).to_owned()),
                body: read(&file)?,
                path: r.path,
                status: r.status,
            });
        }
    }
    for (path, file) in files {
        direct_responses.push(DirectResponse {
            path,
            status: 200,
            content_type: content_type(&file).to_owned(),
            body: read(&file)?,
        });
    }
    let wasm = wasm.ok_or_else(|| format!("--wasm (or --bootstrap) is required\n\n{USAGE}"))?;
    let config =
        config.ok_or_else(|| format!("--config (or --bootstrap) is required\n\n{USAGE}"))?;
    let mut o = HostOptions::new(wasm, config);
    o.clusters = clusters;
    o.listen = listen;
    o.admin = admin;
    o.workers = workers;
    o.route_cluster = route;
    o.stats_tags = stats_tags;
    o.direct_responses = direct_responses;
    o.access_log = access_log;
    Ok(o)
}

fn main() -> ExitCode {
    let opts = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match start(opts) {
        Ok(host) => {
            println!(
                "edgepack-host listening http={} admin={}",
                host.addr, host.admin
            );
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            // Runs until killed (Ctrl-C ends the process).
            std::mem::forget(tx);
            let _ = rx.recv();
            host.stop();
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("edgepack-host: {e}");
            ExitCode::FAILURE
        }
    }
}
