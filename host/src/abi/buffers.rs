//! `proxy_get_buffer_bytes` / `proxy_set_buffer_bytes`: the plugin configuration (during
//! `proxy_on_configure` only), the request and response bodies (in their phase windows) and a
//! call's response body (during `proxy_on_http_call_response`).

use wasmtime::Linker;

use super::C;
use super::memory::{give_from, read};
use crate::vm::{CallResult, VmState, buffer, status};

/// Adds the buffer calls.
pub(crate) fn add(l: &mut Linker<VmState>) -> wasmtime::Result<()> {
    l.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut c: C<'_>,
         ty: i32,
         start: i32,
         max: i32,
         ret_ptr: i32,
         ret_size: i32|
         -> wasmtime::Result<i32> {
            let Some(len) = buffer_of(c.data(), ty).map(<[u8]>::len) else {
                return Ok(status::NOT_FOUND);
            };
            let start = (start as u32 as usize).min(len);
            let end = start.saturating_add(max as u32 as usize).min(len);
            give_from(
                &mut c,
                end - start,
                |s| buffer_of(s, ty).and_then(|b| b.get(start..end)),
                ret_ptr,
                ret_size,
            )
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_buffer_bytes",
        |mut c: C<'_>, ty: i32, start: i32, size: i32, ptr: i32, len: i32| {
            let Some(data) = read(&mut c, ptr, len) else {
                return status::BAD_ARGUMENT;
            };
            let Some(st) = c.data_mut().effective_stream() else {
                return status::NOT_FOUND;
            };
            let buf = match ty {
                buffer::REQUEST_BODY if st.request_body_open => &mut st.request_body,
                buffer::RESPONSE_BODY if st.response_body_open => &mut st.response_body,
                _ => return status::NOT_FOUND,
            };
            let (start, size) = (start as u32 as usize, size as u32 as usize);
            if start == 0 && (size == buf.len() || size >= buf.len()) {
                *buf = data;
            } else if start >= buf.len() {
                buf.extend_from_slice(&data);
            } else {
                return status::BAD_ARGUMENT;
            }
            status::OK
        },
    )?;
    Ok(())
}

/// The buffer `ty` names, when it is readable now.
fn buffer_of(s: &VmState, ty: i32) -> Option<&[u8]> {
    match ty {
        buffer::PLUGIN_CONFIGURATION if s.plugin_config_open => Some(&s.plugin_config),
        buffer::VM_CONFIGURATION => Some(&[]),
        buffer::CALL_RESPONSE_BODY => match &s.call_response {
            Some(CallResult::Response { body, .. }) => Some(body),
            _ => None,
        },
        buffer::REQUEST_BODY => s
            .streams
            .get(&s.effective)
            .filter(|st| st.request_body_open)
            .map(|st| st.request_body.as_slice()),
        buffer::RESPONSE_BODY => s
            .streams
            .get(&s.effective)
            .filter(|st| st.response_body_open)
            .map(|st| st.response_body.as_slice()),
        _ => None,
    }
}
