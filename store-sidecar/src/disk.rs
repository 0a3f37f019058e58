//! Atomic file operations on local disk: temp file + fsync + rename + fsync of the directory, so
//! a reader (or a restart after `kill -9`) sees a whole file or none.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Status the HTTP layer should answer for an I/O error (507 when the disk is full).
pub fn is_storage_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) || e.raw_os_error() == Some(28)
}

/// Flushes a directory entry (rename, create, unlink) to disk.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `data` to `path` atomically, creating parent directories; `tmp_dir` must be on the same
/// file system.
pub fn write_atomic(tmp_dir: &Path, path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = temp_path(tmp_dir)?;
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        rename_into(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Renames `from` to `to` (creating `to`'s parents) and syncs the target directory.
pub fn rename_into(from: &Path, to: &Path) -> io::Result<()> {
    let parent = to
        .parent()
        .ok_or_else(|| io::Error::other("target has no parent directory"))?;
    fs::create_dir_all(parent)?;
    fs::rename(from, to)?;
    sync_dir(parent)
}

/// A fresh, unique path in `tmp_dir` (created if missing).
pub fn temp_path(tmp_dir: &Path) -> io::Result<PathBuf> {
    fs::create_dir_all(tmp_dir)?;
    let mut r = [0u8; 12];
    getrandom::fill(&mut r).map_err(|e| io::Error::other(e.to_string()))?;
    Ok(tmp_dir.join(format!("{}.part", hex::encode(r))))
}

/// Appends one line to a journal and syncs it. A failed append (a full disk) is cut off again,
/// so the next line does not run into a torn one and take its record down with it.
pub fn append_line(path: &Path, line: &str) -> io::Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut f = OpenOptions::new().create(true).append(true).open(path)?;
    let before = f.metadata()?.len();
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    let result = f.write_all(&buf).and_then(|()| f.sync_data());
    if result.is_err() {
        let _ = f.set_len(before);
    }
    result
}

/// Removes a file; a missing file is not an error.
pub fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let tmp = d.path().join("tmp");
        let target = d.path().join("a/b/c.txt");
        write_atomic(&tmp, &target, b"one").unwrap();
        write_atomic(&tmp, &target, b"two").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"two");
        assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0);
    }
}
