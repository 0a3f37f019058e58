//! What a filter asks of its stream: a local reply (sent when the callback returns), continue
//! or close.

use wasmtime::Linker;

use super::C;
use super::headers::deserialize_map;
use super::memory::read;
use crate::vm::{LocalReply, VmState, status};

/// Adds `proxy_send_local_response`, `proxy_continue_stream` and `proxy_close_stream`.
pub(crate) fn add(l: &mut Linker<VmState>) -> wasmtime::Result<()> {
    l.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut c: C<'_>,
         code: i32,
         _dp: i32,
         _dl: i32,
         bp: i32,
         bl: i32,
         hp: i32,
         hl: i32,
         _grpc: i32| {
            let (Some(body), Some(headers)) = (
                read(&mut c, bp, bl),
                read(&mut c, hp, hl).and_then(|b| deserialize_map(&b)),
            ) else {
                return status::BAD_ARGUMENT;
            };
            let Some(st) = c.data_mut().effective_stream() else {
                return status::BAD_ARGUMENT;
            };
            if st.local_reply.is_some() || st.local_reply_sent {
                return status::BAD_ARGUMENT;
            }
            st.local_reply = Some(LocalReply {
                status: code as u16,
                headers,
                body,
            });
            status::OK
        },
    )?;
    for (name, close) in [
        ("proxy_continue_stream", false),
        ("proxy_close_stream", true),
    ] {
        l.func_wrap("env", name, move |mut c: C<'_>, _ty: i32| {
            match c.data_mut().effective_stream() {
                Some(st) if close => st.close_requested = true,
                Some(st) => st.continue_requested = true,
                None => return status::NOT_FOUND,
            }
            status::OK
        })?;
    }
    Ok(())
}
