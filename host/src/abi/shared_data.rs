//! Shared data across the VMs of one `vm_id` (with CAS), and the shared queues this host
//! registers but never fills.

use wasmtime::Linker;

use super::C;
use super::memory::{give, read, read_str, return_u32, write_u32};
use crate::vm::{VmState, status};

/// Adds `proxy_{get,set}_shared_data` and the shared-queue calls.
pub(crate) fn add(l: &mut Linker<VmState>) -> wasmtime::Result<()> {
    l.func_wrap(
        "env",
        "proxy_get_shared_data",
        |mut c: C<'_>,
         kp: i32,
         kl: i32,
         ret_ptr: i32,
         ret_size: i32,
         ret_cas: i32|
         -> wasmtime::Result<i32> {
            let Some(key) = read_str(&mut c, kp, kl) else {
                return Ok(status::BAD_ARGUMENT);
            };
            // The value is shared, not copied, out of the map: the one copy is into the guest (as
            // Envoy copies from its map under the lock).
            let entry = c
                .data()
                .shared
                .lock()
                .ok()
                .and_then(|m| m.get(&key).cloned());
            match entry {
                Some((v, cas)) => {
                    let r = give(&mut c, &v, ret_ptr, ret_size)?;
                    write_u32(&mut c, ret_cas, cas);
                    Ok(r)
                }
                None => Ok(status::NOT_FOUND),
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_shared_data",
        |mut c: C<'_>, kp: i32, kl: i32, vp: i32, vl: i32, cas: i32| {
            let (Some(key), Some(v)) = (read_str(&mut c, kp, kl), read(&mut c, vp, vl)) else {
                return status::BAD_ARGUMENT;
            };
            let Ok(mut m) = c.data().shared.lock() else {
                return status::BAD_ARGUMENT;
            };
            let current = m.get(&key).map_or(0, |(_, c)| *c);
            if cas != 0 && cas as u32 != current {
                return status::CAS_MISMATCH;
            }
            m.insert(key, (std::sync::Arc::new(v), current + 1));
            status::OK
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_register_shared_queue",
        |mut c: C<'_>, _np: i32, _nl: i32, ret: i32| return_u32(&mut c, ret, 1),
    )?;
    l.func_wrap(
        "env",
        "proxy_resolve_shared_queue",
        |_c: C<'_>, _a: i32, _b: i32, _d: i32, _e: i32, _f: i32| status::NOT_FOUND,
    )?;
    l.func_wrap(
        "env",
        "proxy_enqueue_shared_queue",
        |_c: C<'_>, _a: i32, _b: i32, _d: i32| status::NOT_FOUND,
    )?;
    l.func_wrap(
        "env",
        "proxy_dequeue_shared_queue",
        |_c: C<'_>, _a: i32, _b: i32, _d: i32| status::EMPTY,
    )?;
    Ok(())
}
