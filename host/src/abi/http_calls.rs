//! `dispatch_http_call`: a call is recorded as pending with its token and sent by the host when
//! the callback returns; its answer arrives in `proxy_on_http_call_response`.

use wasmtime::Linker;

use super::C;
use super::headers::deserialize_map;
use super::memory::{read, read_str, return_u32};
use crate::vm::{PendingCall, VmState, status};

/// Adds `proxy_http_call` and `proxy_get_status`.
pub(crate) fn add(l: &mut Linker<VmState>) -> wasmtime::Result<()> {
    l.func_wrap(
        "env",
        "proxy_http_call",
        |mut c: C<'_>,
         up: i32,
         ul: i32,
         hp: i32,
         hl: i32,
         bp: i32,
         bl: i32,
         _tp: i32,
         _tl: i32,
         timeout: i32,
         ret: i32| {
            let (Some(cluster), Some(headers), Some(body)) = (
                read_str(&mut c, up, ul),
                read(&mut c, hp, hl).and_then(|b| deserialize_map(&b)),
                read(&mut c, bp, bl),
            ) else {
                return status::BAD_ARGUMENT;
            };
            let has = |k: &str| headers.iter().any(|(x, v)| x == k && !v.is_empty());
            let Some(addr) = c.data().clusters.get(&cluster).copied() else {
                return status::BAD_ARGUMENT;
            };
            if !(has(":method") && has(":path") && has(":authority")) {
                return status::BAD_ARGUMENT;
            }
            let s = c.data_mut();
            s.next_token += 1;
            let token = s.next_token;
            let stream = s.effective;
            s.pending.push(PendingCall {
                token,
                stream,
                addr,
                headers,
                body,
                timeout_ms: timeout as u32,
            });
            return_u32(&mut c, ret, token)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_status",
        |_c: C<'_>, _a: i32, _b: i32, _d: i32| status::NOT_FOUND,
    )?;
    Ok(())
}
