//! `proxy_get_property` / `proxy_set_property`: the attributes Envoy offers a filter (source
//! address, request path, method, host and headers, plugin name), and what the filter stored.

use wasmtime::Linker;

use super::C;
use super::memory::{give, read};
use crate::vm::{VmState, status};

/// Adds the property calls.
pub(crate) fn add(l: &mut Linker<VmState>) -> wasmtime::Result<()> {
    l.func_wrap(
        "env",
        "proxy_get_property",
        |mut c: C<'_>, pp: i32, pl: i32, ret_ptr: i32, ret_size: i32| -> wasmtime::Result<i32> {
            let Some(path) = read(&mut c, pp, pl) else {
                return Ok(status::BAD_ARGUMENT);
            };
            let parts: Vec<String> = path
                .split(|b| *b == 0)
                .filter(|p| !p.is_empty())
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            let s = c.data();
            let stream = s.streams.get(&s.effective);
            let header = |name: &str| {
                stream.filter(|st| st.request_headers_open).and_then(|st| {
                    st.request_headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v.clone().into_bytes())
                })
            };
            let value: Option<Vec<u8>> = match parts
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .as_slice()
            {
                ["source", "address"] => stream.map(|st| st.source_address.clone().into_bytes()),
                ["request", "path"] => header(":path"),
                ["request", "method"] => header(":method"),
                ["request", "host"] => header(":authority"),
                ["request", "headers", name] => header(name),
                ["plugin_name"] => Some(b"edgepack".to_vec()),
                ["plugin_root_id"] => Some(Vec::new()),
                other => stream.and_then(|st| st.properties.get(&other.join(".")).cloned()),
            };
            match value {
                Some(v) => give(&mut c, &v, ret_ptr, ret_size),
                None => Ok(status::NOT_FOUND),
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_property",
        |mut c: C<'_>, pp: i32, pl: i32, vp: i32, vl: i32| {
            let (Some(path), Some(v)) = (read(&mut c, pp, pl), read(&mut c, vp, vl)) else {
                return status::BAD_ARGUMENT;
            };
            let key = path
                .split(|b| *b == 0)
                .filter(|p| !p.is_empty())
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect::<Vec<_>>()
                .join(".");
            if let Some(st) = c.data_mut().effective_stream() {
                st.properties.insert(key, v);
            }
            status::OK
        },
    )?;
    Ok(())
}
