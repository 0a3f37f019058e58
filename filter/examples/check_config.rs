//! Validates edgepack plugin configurations (JSON files) with the filter's own validator — the
//! same code `on_configure` runs in Envoy. `make lint-envoy` runs it on every configuration
//! embedded in `envoy/*.yaml`.
//!
//! usage: cargo run -p edgepack-filter --example check_config -- FILE.json [FILE.json ...]

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut failed = false;
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: check_config FILE.json [FILE.json ...]");
        return ExitCode::from(2);
    }
    for f in files {
        match std::fs::read(&f)
            .map_err(|e| e.to_string())
            .and_then(|b| edgepack_filter::Settings::from_json(&b).map_err(|e| e.to_string()))
        {
            Ok(s) => println!(
                "{f}: valid edgepack configuration ({} channel(s))",
                s.channels.len()
            ),
            Err(e) => {
                println!("{f}: {e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
