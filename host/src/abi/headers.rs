//! The header map calls, on the map the effective stream exposes in its phase window or on a
//! call's response maps, and the ABI's serialization of a map.

use wasmtime::Linker;

use super::C;
use super::memory::{give, read, read_str};
use crate::vm::{CallResult, Headers, VmState, map, status};

/// ABI 0.2.1 header map serialization: count, (key len, value len)*, then `key\0value\0`*.
pub fn serialize_map(pairs: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

/// Inverse of [`serialize_map`]; `None` when malformed.
pub fn deserialize_map(bytes: &[u8]) -> Option<Headers> {
    let u32_at = |i: usize| -> Option<usize> {
        Some(u32::from_le_bytes(bytes.get(i..i + 4)?.try_into().ok()?) as usize)
    };
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let n = u32_at(0)?;
    let mut sizes = Vec::with_capacity(n);
    for i in 0..n {
        sizes.push((u32_at(4 + i * 8)?, u32_at(8 + i * 8)?));
    }
    let mut p = 4 + n * 8;
    let mut out = Vec::with_capacity(n);
    for (kl, vl) in sizes {
        let k = String::from_utf8(bytes.get(p..p + kl)?.to_vec()).ok()?;
        p += kl + 1;
        let v = String::from_utf8(bytes.get(p..p + vl)?.to_vec()).ok()?;
        p += vl + 1;
        out.push((k, v));
    }
    Some(out)
}

/// Which header map the effective stream exposes now, or `None` outside its phase window.
fn map_of(state: &mut VmState, map_type: i32) -> Result<&mut Headers, i32> {
    if map_type == map::CALL_RESPONSE_HEADERS || map_type == map::CALL_RESPONSE_TRAILERS {
        return match &mut state.call_response {
            Some(CallResult::Response {
                headers, trailers, ..
            }) => Ok(if map_type == map::CALL_RESPONSE_HEADERS {
                headers
            } else {
                trailers
            }),
            _ => Err(status::BAD_ARGUMENT),
        };
    }
    let effective = state.effective;
    let stream = state
        .streams
        .get_mut(&effective)
        .ok_or(status::BAD_ARGUMENT)?;
    match map_type {
        map::REQUEST_HEADERS if stream.request_headers_open => Ok(&mut stream.request_headers),
        map::RESPONSE_HEADERS if stream.response_headers_open => Ok(&mut stream.response_headers),
        _ => Err(status::BAD_ARGUMENT),
    }
}

/// Adds `proxy_{get,set}_header_map_pairs` and `proxy_{get,add,replace,remove}_header_map_value`.
pub(crate) fn add(l: &mut Linker<VmState>) -> wasmtime::Result<()> {
    add_whole_maps(l)?;
    add_single_values(l)
}

/// `proxy_{get,set}_header_map_pairs`: a whole map at once, serialized.
fn add_whole_maps(l: &mut Linker<VmState>) -> wasmtime::Result<()> {
    l.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut c: C<'_>, ty: i32, ret_ptr: i32, ret_size: i32| -> wasmtime::Result<i32> {
            let bytes = match map_of(c.data_mut(), ty) {
                Ok(m) => serialize_map(m),
                Err(s) => return Ok(s),
            };
            give(&mut c, &bytes, ret_ptr, ret_size)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        |mut c: C<'_>, ty: i32, ptr: i32, len: i32| {
            let Some(pairs) = read(&mut c, ptr, len).and_then(|b| deserialize_map(&b)) else {
                return status::BAD_ARGUMENT;
            };
            match map_of(c.data_mut(), ty) {
                Ok(m) => {
                    *m = pairs;
                    status::OK
                }
                Err(s) => s,
            }
        },
    )?;
    Ok(())
}

/// `proxy_{get,add,replace,remove}_header_map_value`: one header, names matched without case.
fn add_single_values(l: &mut Linker<VmState>) -> wasmtime::Result<()> {
    l.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut c: C<'_>,
         ty: i32,
         kp: i32,
         kl: i32,
         ret_ptr: i32,
         ret_size: i32|
         -> wasmtime::Result<i32> {
            let Some(key) = read_str(&mut c, kp, kl) else {
                return Ok(status::BAD_ARGUMENT);
            };
            let value = match map_of(c.data_mut(), ty) {
                Ok(m) => m
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&key))
                    .map(|(_, v)| v.clone()),
                Err(s) => return Ok(s),
            };
            match value {
                Some(v) => give(&mut c, v.as_bytes(), ret_ptr, ret_size),
                None => Ok(status::NOT_FOUND),
            }
        },
    )?;
    for (name, op) in [
        ("proxy_add_header_map_value", 0),
        ("proxy_replace_header_map_value", 1),
    ] {
        l.func_wrap(
            "env",
            name,
            move |mut c: C<'_>, ty: i32, kp: i32, kl: i32, vp: i32, vl: i32| {
                let (Some(k), Some(v)) = (read_str(&mut c, kp, kl), read_str(&mut c, vp, vl))
                else {
                    return status::BAD_ARGUMENT;
                };
                match map_of(c.data_mut(), ty) {
                    Ok(m) => {
                        let k = k.to_ascii_lowercase();
                        if op == 1 {
                            m.retain(|(x, _)| *x != k);
                        }
                        m.push((k, v));
                        status::OK
                    }
                    Err(s) => s,
                }
            },
        )?;
    }
    l.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut c: C<'_>, ty: i32, kp: i32, kl: i32| {
            let Some(k) = read_str(&mut c, kp, kl) else {
                return status::BAD_ARGUMENT;
            };
            match map_of(c.data_mut(), ty) {
                Ok(m) => {
                    m.retain(|(x, _)| !x.eq_ignore_ascii_case(&k));
                    status::OK
                }
                Err(s) => s,
            }
        },
    )?;
    Ok(())
}
