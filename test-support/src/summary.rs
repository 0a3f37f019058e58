//! One row of `make bench`'s summary table: every benchmark binary appends its headline figures to `$EDGEPACK_BENCH_SUMMARY` (tab-separated:
//! name, figure, baseline, ratio); the Makefile prints the table at the end. Without the variable
//! (a plain `cargo bench`), rows are only printed.

/// Appends one row; `baseline` and `ratio` are `None` where nothing comparable was measured.
pub fn row(name: &str, figure: &str, baseline: Option<&str>, ratio: Option<f64>) {
    let line = format!(
        "{name}\t{figure}\t{}\t{}\n",
        baseline.unwrap_or("-"),
        ratio.map_or("-".to_owned(), |r| format!("{r:.2}"))
    );
    print!("summary: {}", line.replace('\t', " | "));
    if let Some(path) = std::env::var_os("EDGEPACK_BENCH_SUMMARY") {
        use std::io::Write as _;
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            eprintln!("cannot append to {}: {e}", path.to_string_lossy());
        }
    }
}
