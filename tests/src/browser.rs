//! Headless Chromium as the viewer: pages and player scripts served by the test host on routes
//! where the filter is off (as `envoy/envoy.yaml` serves the demo page with `direct_response`),
//! and `tests/browser/play.mjs` (playwright-core) reporting how far playback got.

use std::path::{Path, PathBuf};
use std::process::Command;

use edgepack_host::DirectResponse;

/// `tests/browser/`: the pages, `play.mjs` and the npm packages.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// A route answering `file` (relative to `tests/browser/`) at `path`.
pub fn file_route(path: &str, file: &Path, content_type: &str) -> Result<DirectResponse, String> {
    let file = dir().join(file);
    Ok(DirectResponse {
        path: path.into(),
        status: 200,
        content_type: content_type.into(),
        body: std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?,
    })
}

/// `page` (path, file under `tests/browser/`) and the scripts it loads: hls.js at `/hls.min.js`,
/// shaka-player at `/shaka-player.compiled.js`.
pub fn page_with_players(page: (&str, &str)) -> Result<Vec<DirectResponse>, String> {
    [
        (page.0, page.1, "text/html"),
        (
            "/hls.min.js",
            "node_modules/hls.js/dist/hls.min.js",
            "application/javascript",
        ),
        (
            "/shaka-player.compiled.js",
            "node_modules/shaka-player/dist/shaka-player.compiled.js",
            "application/javascript",
        ),
    ]
    .into_iter()
    .map(|(path, file, ct)| file_route(path, Path::new(file), ct))
    .collect()
}

/// Opens `page` in Chromium for `seconds` and returns the page's `window.playerState` plus
/// `currentTime` and `advanced` (seconds played since playback started), as JSON.
pub fn play(page: &str, seconds: u32) -> Result<serde_json::Value, String> {
    let out = Command::new("timeout")
        .args(["-s", "KILL", "90", "node", "play.mjs", page])
        .arg(seconds.to_string())
        .current_dir(dir())
        .output()
        .map_err(|e| format!("cannot run node: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "play.mjs failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(out.stdout.trim_ascii()).map_err(|e| format!("play.mjs output: {e}"))
}
