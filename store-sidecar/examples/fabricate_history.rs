//! Writes a long startover history for one channel into a store directory, in the form the
//! sidecar recovers at start-up, without living through it: real segments made once by ffmpeg,
//! cycled by hard links (see `edgepack_store::channel::history`).
//!
//! ```text
//! cargo run --release -p edgepack-store --example fabricate_history -- \
//!     --store-dir DIR --channel news --renditions 2 --hours 336 --segment-seconds 2
//! ```
//!
//! `DIR` is the sidecar's `data_dir`; its channel must have a `startover_window_seconds` of at
//! least the history's span, or the sidecar prunes it at its first housekeeping. Prints one JSON
//! line: what was written and how long it took.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use edgepack_store::channel::history::{HistoryRendition, HistorySpec, write_history};
use edgepack_store::channel::now_ms;
use edgepack_store_api::format_pdt;
use edgepack_test_support::history::make_media;

#[derive(Parser)]
#[command(about = "Fabricate a long live-HLS history in an edgepack-store data directory")]
struct Cli {
    /// The sidecar's data_dir (the channel's directory in it must not exist yet).
    #[arg(long)]
    store_dir: PathBuf,
    #[arg(long, default_value = "news")]
    channel: String,
    #[arg(long, default_value_t = 2)]
    renditions: usize,
    /// Length of the history, ending now.
    #[arg(long, default_value_t = 24.0)]
    hours: f64,
    #[arg(long, default_value_t = 2)]
    segment_seconds: u32,
    /// Distinct real segments each rendition cycles through.
    #[arg(long, default_value_t = 8)]
    cycle: usize,
    /// The first segment's media sequence number.
    #[arg(long, default_value_t = 0)]
    first_msn: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("fabricate_history: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<serde_json::Value, String> {
    let started = Instant::now();
    std::fs::create_dir_all(&cli.store_dir).map_err(|e| e.to_string())?;
    let media_dir = tempfile::tempdir_in(&cli.store_dir).map_err(|e| e.to_string())?;
    let media = make_media(
        media_dir.path(),
        cli.renditions,
        cli.segment_seconds,
        cli.cycle,
    )?;
    let media_seconds = started.elapsed().as_secs_f64();
    let segments = (cli.hours * 3600.0 / f64::from(cli.segment_seconds)).round() as u64;
    let spec = HistorySpec {
        channel: cli.channel.clone(),
        renditions: media
            .renditions
            .into_iter()
            .map(|(id, files)| HistoryRendition { id, files })
            .collect(),
        segments,
        segment_seconds: f64::from(cli.segment_seconds),
        end_ms: now_ms(),
        first_msn: cli.first_msn,
        multivariant: Some(media.multivariant),
    };
    write_history(&cli.store_dir, &spec).map_err(|e| e.to_string())?;
    Ok(serde_json::json!({
        "channel": cli.channel,
        "renditions": cli.renditions,
        "segments_per_rendition": segments,
        "first_sequence": cli.first_msn,
        "first_program_date_time": format_pdt(spec.pdt_ms(0)),
        "last_program_date_time": format_pdt(spec.pdt_ms(segments.saturating_sub(1))),
        "media_seconds": media_seconds,
        "seconds": started.elapsed().as_secs_f64(),
    }))
}
