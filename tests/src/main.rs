//! `edgepack-host`: runs the edgepack filter in the proxy-wasm test host for local use.
//!
//! edgepack-host --wasm PATH --config FILE.json --cluster NAME=HOST:PORT [--cluster …]
//!               --listen 127.0.0.1:PORT [--admin 127.0.0.1:PORT] [--workers N] [--route NAME]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use edgepack_tests::{HostOptions, start};

const USAGE: &str =
    "usage: edgepack-host --wasm PATH --config FILE.json --cluster NAME=HOST:PORT [--cluster ...] \
--listen 127.0.0.1:PORT [--admin 127.0.0.1:PORT] [--workers N] [--route CLUSTER]

Runs edgepack_filter.wasm in the proxy-wasm test host (not Envoy): requests to --listen go through
the filter; store fetches go to the clusters; requests the filter continues go to --route (404
without one). Metrics: http://ADMIN/stats/prometheus. Prints one line
`edgepack-host listening http=ADDR admin=ADDR` when ready.";

fn parse() -> Result<HostOptions, String> {
    let mut args = std::env::args().skip(1);
    let mut wasm = None;
    let mut config = None;
    let mut clusters = Vec::new();
    let mut listen = SocketAddr::from(([127, 0, 0, 1], 10000));
    let mut admin = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut workers = 2;
    let mut route = None;
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--wasm" => wasm = Some(PathBuf::from(value("--wasm")?)),
            "--config" => config = Some(PathBuf::from(value("--config")?)),
            "--cluster" => {
                let v = value("--cluster")?;
                let (name, addr) = v.split_once('=').ok_or("--cluster is NAME=HOST:PORT")?;
                let addr = addr
                    .parse()
                    .map_err(|_| format!("--cluster {v}: bad address"))?;
                clusters.push((name.to_owned(), addr));
            }
            "--listen" => listen = value("--listen")?.parse().map_err(|_| "bad --listen")?,
            "--admin" => admin = value("--admin")?.parse().map_err(|_| "bad --admin")?,
            "--workers" => workers = value("--workers")?.parse().map_err(|_| "bad --workers")?,
            "--route" => route = Some(value("--route")?),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n\n{USAGE}")),
        }
    }
    let wasm = wasm.ok_or_else(|| format!("--wasm is required\n\n{USAGE}"))?;
    let config = config.ok_or_else(|| format!("--config is required\n\n{USAGE}"))?;
    let config =
        std::fs::read(&config).map_err(|e| format!("cannot read {}: {e}", config.display()))?;
    let mut o = HostOptions::new(wasm, config);
    o.clusters = clusters;
    o.listen = listen;
    o.admin = admin;
    o.workers = workers;
    o.route_cluster = route;
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
