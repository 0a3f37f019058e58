//! The hostcalls a proxy-wasm module imports, one module per ABI area; each `add` defines its
//! area's functions on the linker (`crate::vm::linker` calls them all). They answer with Envoy's
//! status codes and phase windows (`../shared/ENVOY.md`).

use std::time::{SystemTime, UNIX_EPOCH};

use wasmtime::Caller;

use crate::vm::VmState;

pub(crate) mod buffers;
pub(crate) mod context;
pub(crate) mod headers;
pub(crate) mod http_calls;
mod memory;
pub(crate) mod metrics;
pub(crate) mod not_offered;
pub(crate) mod properties;
pub(crate) mod shared_data;
pub(crate) mod stream;
pub(crate) mod wasi;

/// What every hostcall receives: the calling instance with its VM's state.
type C<'a> = Caller<'a, VmState>;

/// The wall clock in nanoseconds since the epoch, for `proxy_get_current_time_nanoseconds` and
/// WASI's `clock_time_get`.
fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
