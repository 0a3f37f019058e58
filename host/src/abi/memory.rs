//! Guest memory as the hostcalls see it: reading the guest's arguments, writing its return
//! slots, and handing it bytes in memory it allocates (`proxy_on_memory_allocate`).

use wasmtime::Extern;

use super::C;
use crate::vm::status;

pub(super) fn memory(caller: &mut C<'_>) -> wasmtime::Result<wasmtime::Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m),
        _ => Err(wasmtime::Error::msg("guest exports no memory")),
    }
}

pub(super) fn read(caller: &mut C<'_>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let mem = memory(caller).ok()?;
    let (ptr, len) = (ptr as u32 as usize, len as u32 as usize);
    mem.data(&caller)
        .get(ptr..ptr.checked_add(len)?)
        .map(<[u8]>::to_vec)
}

pub(super) fn read_str(caller: &mut C<'_>, ptr: i32, len: i32) -> Option<String> {
    read(caller, ptr, len).and_then(|b| String::from_utf8(b).ok())
}

pub(super) fn write_u32(caller: &mut C<'_>, ptr: i32, v: u32) -> bool {
    memory(caller).ok().is_some_and(|m| {
        m.write(&mut *caller, ptr as u32 as usize, &v.to_le_bytes())
            .is_ok()
    })
}

pub(super) fn write_u64(caller: &mut C<'_>, ptr: i32, v: u64) -> bool {
    memory(caller).ok().is_some_and(|m| {
        m.write(&mut *caller, ptr as u32 as usize, &v.to_le_bytes())
            .is_ok()
    })
}

/// Writes `v` to the guest's return slot at `ptr`: `Ok`, or `BadArgument` when the slot is
/// outside its memory.
pub(super) fn return_u32(caller: &mut C<'_>, ptr: i32, v: u32) -> i32 {
    if write_u32(caller, ptr, v) {
        status::OK
    } else {
        status::BAD_ARGUMENT
    }
}

/// [`return_u32`] for a 64-bit value.
pub(super) fn return_u64(caller: &mut C<'_>, ptr: i32, v: u64) -> i32 {
    if write_u64(caller, ptr, v) {
        status::OK
    } else {
        status::BAD_ARGUMENT
    }
}

/// Copies `data` into guest memory allocated with `proxy_on_memory_allocate`, and stores the
/// pointer and size at `ret_ptr` / `ret_size`.
pub(super) fn give(
    caller: &mut C<'_>,
    data: &[u8],
    ret_ptr: i32,
    ret_size: i32,
) -> wasmtime::Result<i32> {
    let ptr = if data.is_empty() {
        0
    } else {
        let alloc = match caller.get_export("proxy_on_memory_allocate") {
            Some(Extern::Func(f)) => f.typed::<i32, i32>(&caller)?,
            _ => {
                return Err(wasmtime::Error::msg(
                    "guest exports no proxy_on_memory_allocate",
                ));
            }
        };
        let p = alloc.call(&mut *caller, data.len() as i32)?;
        let mem = memory(caller)?;
        mem.write(&mut *caller, p as u32 as usize, data)?;
        p as u32
    };
    if !write_u32(caller, ret_ptr, ptr) || !write_u32(caller, ret_size, data.len() as u32) {
        return Ok(status::BAD_ARGUMENT);
    }
    Ok(status::OK)
}
