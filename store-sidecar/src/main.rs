//! The `edgepack-store` command: flags, logging, then the library's two listeners and its
//! housekeeping until SIGINT or SIGTERM. Everything else lives in the `edgepack_store` library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use edgepack_store::{App, Settings, housekeeping, ingest_router, internal_router, serve};

/// edgepack store sidecar: authenticated live HLS ingest, startover history, redundant inputs,
/// and the internal API the edgepack Envoy filter reads.
///
/// Listeners (addresses in the config file):
///   ingest    PUT|DELETE|MKCOL|OPTIONS /in/v1/{channel}/{1|2}/{file}   (Digest or Basic auth)
///             POST /admin/v1/channels/{channel}/reset|harvest, GET /admin/v1/harvests/{id}
///             GET /healthz
///   internal  GET /store/v1/{channel}/index.m3u8                        multivariant playlist
///             GET /store/v1/{channel}/{rendition}/index.m3u8            media playlist, whole window
///             GET /store/v1/{channel}/{rendition}/{sequence}.{ext}      segment
///             GET /store/v1/{channel}/status                            JSON status
///             GET /metrics (Prometheus), GET /healthz
///
/// Storage: the local disk, or an S3-compatible bucket shared by ingest sidecars (server.role =
/// "ingest", one per input if you like) and read-only edges (server.role = "edge").
/// The config file is TOML; see store-sidecar/edgepack-store.example.toml for every field.
/// Passwords may come from the environment with `password_env = "VAR"`.
/// Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=edgepack_store=debug) to change the level.
/// On start-up one line `edgepack-store listening ingest=ADDR internal=ADDR` is printed on stdout.
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment)]
struct Cli {
    /// Path of the TOML configuration file.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: PathBuf,
    /// Validate the configuration, print a summary and exit (status 0 when valid).
    #[arg(long)]
    check: bool,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    let settings = match Settings::load(&cli.config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("edgepack-store: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check {
        println!(
            "config OK: {} channel(s): {}",
            settings.channels.len(),
            settings
                .channels
                .iter()
                .map(|c| c.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("edgepack-store: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("edgepack-store: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    let ingest_addr = settings.server.ingest_listen;
    let internal_addr = settings.server.internal_listen;
    let app = Arc::new(App::open(settings)?);
    // In a bucket: the channels' index read back before anything is answered.
    edgepack_store::server::replication::catch_up(&app, std::time::Duration::from_secs(30))
        .await
        .map_err(|e| format!("cannot read the bucket: {e}"))?;
    let ingest = tokio::net::TcpListener::bind(ingest_addr)
        .await
        .map_err(|e| format!("cannot listen on ingest_listen {ingest_addr}: {e}"))?;
    let internal = tokio::net::TcpListener::bind(internal_addr)
        .await
        .map_err(|e| format!("cannot listen on internal_listen {internal_addr}: {e}"))?;
    let (ia, na) = (ingest.local_addr()?, internal.local_addr()?);
    println!("edgepack-store listening ingest={ia} internal={na}");
    tracing::info!(ingest = %ia, internal = %na, channels = app.channels.len(), "listening");
    tokio::spawn(housekeeping(app.clone()));
    let (tx, rx) = tokio::sync::watch::channel(false);
    let idle = std::time::Duration::from_secs(app.settings.server.idle_timeout_seconds);
    let a = tokio::spawn(serve(ingest, ingest_router(app.clone()), rx.clone(), idle));
    let b = tokio::spawn(serve(internal, internal_router(app.clone()), rx, idle));
    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = tx.send(true);
    let _ = tokio::join!(a, b);
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
