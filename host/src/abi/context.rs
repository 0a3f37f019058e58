//! The calls about the VM and its contexts rather than a stream's data: logging, the log level,
//! the clock, the tick period, the effective context and `proxy_done`.

use wasmtime::Linker;

use super::memory::{read_str, return_u32, return_u64};
use super::{C, now_nanos};
use crate::vm::{VmState, status};

/// Adds `proxy_log`, `proxy_get_log_level`, `proxy_get_current_time_nanoseconds`,
/// `proxy_set_tick_period_milliseconds`, `proxy_set_effective_context` and `proxy_done`.
pub(crate) fn add(l: &mut Linker<VmState>) -> wasmtime::Result<()> {
    l.func_wrap(
        "env",
        "proxy_log",
        |mut c: C<'_>, level: i32, ptr: i32, len: i32| {
            let msg = read_str(&mut c, ptr, len).unwrap_or_default();
            let lvl = ["trace", "debug", "info", "warn", "error", "critical"]
                .get(level as usize)
                .copied()
                .unwrap_or("?");
            if level >= 2 {
                eprintln!("[{}] wasm {lvl}: {msg}", c.data().log_prefix);
            }
            status::OK
        },
    )?;
    l.func_wrap("env", "proxy_get_log_level", |mut c: C<'_>, ret: i32| {
        return_u32(&mut c, ret, 2)
    })?;
    l.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut c: C<'_>, ret: i32| return_u64(&mut c, ret, now_nanos()),
    )?;
    l.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        |mut c: C<'_>, ms: i32| {
            c.data_mut().tick_period_ms = ms as u32;
            status::OK
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_effective_context",
        |mut c: C<'_>, id: i32| {
            let id = id as u32;
            let s = c.data_mut();
            if id == s.root_id || s.streams.contains_key(&id) {
                s.effective = id;
                status::OK
            } else {
                status::BAD_ARGUMENT
            }
        },
    )?;
    l.func_wrap("env", "proxy_done", |_c: C<'_>| status::OK)?;
    Ok(())
}
