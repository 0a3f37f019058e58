//! Imports a module may have that this host answers only with refusals: foreign functions
//! (none registered) and gRPC.

use wasmtime::Linker;

use super::C;
use crate::vm::{VmState, status};

/// Adds `proxy_call_foreign_function` and the gRPC calls.
pub(crate) fn add(l: &mut Linker<VmState>) -> wasmtime::Result<()> {
    l.func_wrap(
        "env",
        "proxy_call_foreign_function",
        |_c: C<'_>, _a: i32, _b: i32, _d: i32, _e: i32, _f: i32, _g: i32| status::NOT_FOUND,
    )?;
    // gRPC is not offered by this host (edgepack does not use it).
    l.func_wrap(
        "env",
        "proxy_grpc_call",
        |_c: C<'_>,
         _a: i32,
         _b: i32,
         _d: i32,
         _e: i32,
         _f: i32,
         _g: i32,
         _h: i32,
         _i: i32,
         _j: i32,
         _k: i32,
         _l: i32,
         _m: i32| status::UNIMPLEMENTED,
    )?;
    l.func_wrap(
        "env",
        "proxy_grpc_stream",
        |_c: C<'_>,
         _a: i32,
         _b: i32,
         _d: i32,
         _e: i32,
         _f: i32,
         _g: i32,
         _h: i32,
         _i: i32,
         _j: i32| status::UNIMPLEMENTED,
    )?;
    l.func_wrap(
        "env",
        "proxy_grpc_send",
        |_c: C<'_>, _a: i32, _b: i32, _d: i32, _e: i32| status::UNIMPLEMENTED,
    )?;
    l.func_wrap("env", "proxy_grpc_cancel", |_c: C<'_>, _a: i32| {
        status::UNIMPLEMENTED
    })?;
    l.func_wrap("env", "proxy_grpc_close", |_c: C<'_>, _a: i32| {
        status::UNIMPLEMENTED
    })?;
    Ok(())
}
