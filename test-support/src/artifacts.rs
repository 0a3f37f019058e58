//! The artifacts the end-to-end tests load: the release `.wasm`, built on demand with the same
//! command as `make wasm`, the `edgepack-host` binary, and optimized store tools for tests that
//! need days of history.

use std::path::PathBuf;
use std::process::Command;

/// Cargo's target directory: `CARGO_TARGET_DIR` (relative to the workspace) or `target/`.
pub fn target_dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// Builds (if needed) and returns `target/wasm32-wasip1/release/edgepack_filter.wasm`.
pub fn filter_wasm() -> Result<PathBuf, String> {
    cargo_build(
        &[
            "--release",
            "--target",
            "wasm32-wasip1",
            "-p",
            "edgepack-filter",
        ],
        "the filter for wasm32-wasip1",
    )?;
    Ok(target_dir().join("wasm32-wasip1/release/edgepack_filter.wasm"))
}

/// The `edgepack-host` binary: cargo's own for the host's tests (cargo sets
/// `CARGO_BIN_EXE_edgepack-host` when it runs them), else built on demand next to
/// `edgepack-store` (`target/debug/`), as the end-to-end tests in `tests/` need it.
pub fn host_binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("CARGO_BIN_EXE_edgepack-host") {
        return Ok(PathBuf::from(p));
    }
    cargo_build(
        &["-p", "edgepack-host", "--bin", "edgepack-host"],
        "edgepack-host",
    )?;
    Ok(target_dir().join("debug/edgepack-host"))
}

/// Optimized builds of the `edgepack-store` binary and its `fabricate_history` example
/// (`--profile bench`: optimized, without the release profile's fat LTO), built on demand: a
/// 14-day history is over a million index entries, which unoptimized code writes and reads back
/// ten times slower. Returns (sidecar, fabricator).
pub fn optimized_store_tools() -> Result<(PathBuf, PathBuf), String> {
    cargo_build(
        &[
            "--profile",
            "bench",
            "-p",
            "edgepack-store",
            "--bin",
            "edgepack-store",
            "--example",
            "fabricate_history",
        ],
        "the optimized store tools",
    )?;
    // The bench profile's output directory is `release/`.
    let dir = target_dir().join("release");
    Ok((
        dir.join("edgepack-store"),
        dir.join("examples/fabricate_history"),
    ))
}

/// An optimized build of the `edgepack-host` binary (`--profile bench`, as
/// [`optimized_store_tools`]), for load tests.
pub fn optimized_host() -> Result<PathBuf, String> {
    cargo_build(
        &[
            "--profile",
            "bench",
            "-p",
            "edgepack-host",
            "--bin",
            "edgepack-host",
        ],
        "the optimized test host",
    )?;
    Ok(target_dir().join("release/edgepack-host"))
}

/// `cargo build ARGS` in the workspace (the cargo running the tests, when there is one).
fn cargo_build(args: &[&str], what: &str) -> Result<(), String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&root)
        .arg("build")
        .args(args)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("building {what} failed"))
    }
}
