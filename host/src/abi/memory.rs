//! Guest memory as the hostcalls see it: reading the guest's arguments, writing its return
//! slots, and handing it bytes in memory it allocates (`proxy_on_memory_allocate`).

use wasmtime::Extern;

use super::C;
use crate::vm::{VmState, status};

pub(super) fn memory(caller: &mut C<'_>) -> wasmtime::Result<wasmtime::Memory> {
    if let Some(g) = &caller.data().guest {
        return Ok(g.memory);
    }
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
    let ptr = allocate(caller, data.len())?;
    if ptr != 0 {
        memory(caller)?.write(&mut *caller, ptr as usize, data)?;
    }
    returned(caller, ptr, data.len(), ret_ptr, ret_size)
}

/// [`give`] for bytes the host state holds (a body): `source` finds them again once the guest has
/// allocated, and they are copied straight from the state into guest memory — one copy, where
/// cloning them out of the state first would make two.
pub(super) fn give_from(
    caller: &mut C<'_>,
    len: usize,
    source: impl FnOnce(&VmState) -> Option<&[u8]>,
    ret_ptr: i32,
    ret_size: i32,
) -> wasmtime::Result<i32> {
    let ptr = allocate(caller, len)?;
    if ptr != 0 {
        let mem = memory(caller)?;
        let (guest, state) = mem.data_and_store_mut(&mut *caller);
        let start = ptr as usize;
        let (Some(dst), Some(src)) = (
            start
                .checked_add(len)
                .and_then(|end| guest.get_mut(start..end)),
            source(state).filter(|s| s.len() == len),
        ) else {
            return Err(wasmtime::Error::msg(
                "proxy_on_memory_allocate returned memory outside the guest's",
            ));
        };
        dst.copy_from_slice(src);
    }
    returned(caller, ptr, len, ret_ptr, ret_size)
}

/// `len` bytes of guest memory from `proxy_on_memory_allocate` (0 for none).
fn allocate(caller: &mut C<'_>, len: usize) -> wasmtime::Result<u32> {
    if len == 0 {
        return Ok(0);
    }
    if let Some(alloc) = caller
        .data()
        .guest
        .as_ref()
        .and_then(|g| g.allocate.clone())
    {
        return Ok(alloc.call(&mut *caller, len as i32)? as u32);
    }
    let alloc = match caller.get_export("proxy_on_memory_allocate") {
        Some(Extern::Func(f)) => f.typed::<i32, i32>(&caller)?,
        _ => {
            return Err(wasmtime::Error::msg(
                "guest exports no proxy_on_memory_allocate",
            ));
        }
    };
    Ok(alloc.call(&mut *caller, len as i32)? as u32)
}

/// Stores a given buffer's pointer and size in the guest's return slots.
fn returned(
    caller: &mut C<'_>,
    ptr: u32,
    len: usize,
    ret_ptr: i32,
    ret_size: i32,
) -> wasmtime::Result<i32> {
    if !write_u32(caller, ret_ptr, ptr) || !write_u32(caller, ret_size, len as u32) {
        return Ok(status::BAD_ARGUMENT);
    }
    Ok(status::OK)
}
