//! The WASI preview 1 calls Envoy provides: stdout and stderr go to the log, no files,
//! arguments or environment, the clock and randomness.

use wasmtime::Linker;

use super::memory::{memory, read, write_u32, write_u64};
use super::{C, now_nanos};
use crate::vm::VmState;

/// The WASI module name of the calls.
const W: &str = "wasi_snapshot_preview1";

/// Adds the WASI calls Envoy provides.
pub(crate) fn add(l: &mut Linker<VmState>) -> wasmtime::Result<()> {
    add_files(l)?;
    add_process(l)
}

/// The file descriptor calls: only stdout and stderr can be written (to the log); nothing can
/// be read, sought, closed or inspected (EBADF).
fn add_files(l: &mut Linker<VmState>) -> wasmtime::Result<()> {
    l.func_wrap(
        W,
        "fd_write",
        |mut c: C<'_>, fd: i32, iovs: i32, n: i32, written: i32| {
            let mut total = 0u32;
            let mut text = Vec::new();
            for i in 0..n {
                let Some(iov) = read(&mut c, iovs + i * 8, 8) else {
                    return 21; // EFAULT
                };
                let p = u32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]) as i32;
                let l = u32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]) as i32;
                let Some(b) = read(&mut c, p, l) else {
                    return 21;
                };
                total += l as u32;
                text.extend_from_slice(&b);
            }
            if fd == 1 || fd == 2 {
                eprint!(
                    "[{}] {}",
                    c.data().log_prefix,
                    String::from_utf8_lossy(&text)
                );
            } else {
                return 8; // EBADF
            }
            write_u32(&mut c, written, total);
            0
        },
    )?;
    l.func_wrap(
        W,
        "fd_read",
        |_c: C<'_>, _a: i32, _b: i32, _d: i32, _e: i32| 8,
    )?;
    l.func_wrap(
        W,
        "fd_seek",
        |_c: C<'_>, _a: i32, _b: i64, _d: i32, _e: i32| 8,
    )?;
    l.func_wrap(W, "fd_close", |_c: C<'_>, _a: i32| 8)?;
    l.func_wrap(W, "fd_fdstat_get", |_c: C<'_>, _a: i32, _b: i32| 8)?;
    Ok(())
}

/// The process calls: no arguments or environment, the wall clock, randomness, and `proc_exit`
/// as a trap.
fn add_process(l: &mut Linker<VmState>) -> wasmtime::Result<()> {
    for name in ["environ_sizes_get", "args_sizes_get"] {
        l.func_wrap(W, name, |mut c: C<'_>, count: i32, size: i32| {
            write_u32(&mut c, count, 0);
            write_u32(&mut c, size, 0);
            0
        })?;
    }
    for name in ["environ_get", "args_get"] {
        l.func_wrap(W, name, |_c: C<'_>, _a: i32, _b: i32| 0)?;
    }
    l.func_wrap(
        W,
        "clock_time_get",
        |mut c: C<'_>, _id: i32, _precision: i64, ret: i32| {
            write_u64(&mut c, ret, now_nanos());
            0
        },
    )?;
    l.func_wrap(W, "random_get", |mut c: C<'_>, ptr: i32, len: i32| {
        let mut buf = vec![0u8; len as u32 as usize];
        if getrandom::fill(&mut buf).is_err() {
            return 29; // EIO
        }
        match memory(&mut c) {
            Ok(m) if m.write(&mut c, ptr as u32 as usize, &buf).is_ok() => 0,
            _ => 21,
        }
    })?;
    l.func_wrap(
        W,
        "proc_exit",
        |_c: C<'_>, code: i32| -> wasmtime::Result<()> {
            Err(wasmtime::Error::msg(format!("proc_exit({code})")))
        },
    )?;
    Ok(())
}
