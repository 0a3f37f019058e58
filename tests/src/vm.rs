//! One proxy-wasm VM on wasmtime, with the ABI 0.2.1 hostcalls and the WASI calls Envoy
//! provides, answering with Envoy's status codes and phase windows (`../shared/ENVOY.md`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use wasmtime::{Caller, Engine, Extern, Instance, Linker, Module, Store, Val};

use crate::metrics::MetricStore;

/// ABI status codes (proxy-wasm `WasmResult`).
pub mod status {
    pub const OK: i32 = 0;
    pub const NOT_FOUND: i32 = 1;
    pub const BAD_ARGUMENT: i32 = 2;
    pub const SERIALIZATION_FAILURE: i32 = 3;
    pub const EMPTY: i32 = 7;
    pub const CAS_MISMATCH: i32 = 8;
    pub const UNIMPLEMENTED: i32 = 12;
}

/// Map types of the ABI.
pub mod map {
    pub const REQUEST_HEADERS: i32 = 0;
    pub const REQUEST_TRAILERS: i32 = 1;
    pub const RESPONSE_HEADERS: i32 = 2;
    pub const RESPONSE_TRAILERS: i32 = 3;
    pub const CALL_RESPONSE_HEADERS: i32 = 6;
    pub const CALL_RESPONSE_TRAILERS: i32 = 7;
}

/// Buffer types of the ABI.
pub mod buffer {
    pub const REQUEST_BODY: i32 = 0;
    pub const RESPONSE_BODY: i32 = 1;
    pub const CALL_RESPONSE_BODY: i32 = 4;
    pub const VM_CONFIGURATION: i32 = 6;
    pub const PLUGIN_CONFIGURATION: i32 = 7;
}

/// Largest `dispatch_http_call` answer Envoy delivers; larger ones arrive as a reset.
pub const MAX_CALL_RESPONSE: usize = 32 * 1024 * 1024;

pub type Headers = Vec<(String, String)>;

/// Shared data across the VMs of one `vm_id`: key → (value, CAS).
pub type SharedData = Arc<Mutex<HashMap<String, (Vec<u8>, u32)>>>;

/// A local reply the filter asked for; sent when the current callback returns.
#[derive(Debug, Clone)]
pub struct LocalReply {
    pub status: u16,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// A `dispatch_http_call` made during a callback.
#[derive(Debug, Clone)]
pub struct PendingCall {
    pub token: u32,
    pub stream: u32,
    pub addr: SocketAddr,
    pub headers: Headers,
    pub body: Vec<u8>,
    pub timeout_ms: u32,
}

/// The answer to a call, as delivered to `proxy_on_http_call_response`.
#[derive(Debug, Clone)]
pub enum CallResult {
    Response {
        headers: Headers,
        body: Vec<u8>,
        trailers: Headers,
    },
    /// Reset, or an answer over 32 MiB: no header map at all.
    Reset,
}

/// Per-stream state the hostcalls act on.
#[derive(Debug, Default)]
pub struct StreamState {
    pub request_headers: Headers,
    pub request_headers_open: bool,
    pub request_body: Vec<u8>,
    pub request_body_open: bool,
    pub response_headers: Headers,
    pub response_headers_open: bool,
    pub response_body: Vec<u8>,
    pub response_body_open: bool,
    pub local_reply: Option<LocalReply>,
    pub local_reply_sent: bool,
    pub continue_requested: bool,
    pub close_requested: bool,
    pub source_address: String,
    pub properties: HashMap<String, Vec<u8>>,
}

/// Everything the hostcalls of one VM can see.
pub struct VmState {
    pub name: String,
    pub root_id: u32,
    pub plugin_config: Vec<u8>,
    pub plugin_config_open: bool,
    pub effective: u32,
    pub streams: HashMap<u32, StreamState>,
    pub clusters: Arc<HashMap<String, SocketAddr>>,
    pub pending: Vec<PendingCall>,
    pub next_token: u32,
    pub call_response: Option<CallResult>,
    pub metrics: Arc<MetricStore>,
    pub metric_ids: Vec<usize>,
    pub shared: SharedData,
    pub tick_period_ms: u32,
    pub log_prefix: String,
}

type C<'a> = Caller<'a, VmState>;

impl VmState {
    /// The stream the hostcalls act on now (`proxy_set_effective_context`).
    fn effective_stream(&mut self) -> Option<&mut StreamState> {
        self.streams.get_mut(&self.effective)
    }
}

fn memory(caller: &mut C<'_>) -> wasmtime::Result<wasmtime::Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m),
        _ => Err(wasmtime::Error::msg("guest exports no memory")),
    }
}

fn read(caller: &mut C<'_>, ptr: i32, len: i32) -> Option<Vec<u8>> {
    let mem = memory(caller).ok()?;
    let (ptr, len) = (ptr as u32 as usize, len as u32 as usize);
    mem.data(&caller)
        .get(ptr..ptr.checked_add(len)?)
        .map(<[u8]>::to_vec)
}

fn read_str(caller: &mut C<'_>, ptr: i32, len: i32) -> Option<String> {
    read(caller, ptr, len).and_then(|b| String::from_utf8(b).ok())
}

fn write_u32(caller: &mut C<'_>, ptr: i32, v: u32) -> bool {
    memory(caller).ok().is_some_and(|m| {
        m.write(&mut *caller, ptr as u32 as usize, &v.to_le_bytes())
            .is_ok()
    })
}

fn write_u64(caller: &mut C<'_>, ptr: i32, v: u64) -> bool {
    memory(caller).ok().is_some_and(|m| {
        m.write(&mut *caller, ptr as u32 as usize, &v.to_le_bytes())
            .is_ok()
    })
}

/// Copies `data` into guest memory allocated with `proxy_on_memory_allocate`, and stores the
/// pointer and size at `ret_ptr` / `ret_size`.
fn give(caller: &mut C<'_>, data: &[u8], ret_ptr: i32, ret_size: i32) -> wasmtime::Result<i32> {
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

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Defines every import an Envoy-loaded module may have.
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<VmState>> {
    let mut l: Linker<VmState> = Linker::new(engine);
    l.func_wrap(
        "env",
        "proxy_log",
        |mut c: C<'_>, level: i32, ptr: i32, len: i32| {
            let msg = read_str(&mut c, ptr, len).unwrap_or_default();
            let lvl = ["trace", "debug", "info", "warn", "error", "critical"]
                .get(level as usize)
                .copied()
                .unwrap_or("?");
            if level >= 2 {
                eprintln!("[{}] wasm {lvl}: {msg}", c.data().log_prefix);
            }
            status::OK
        },
    )?;
    l.func_wrap("env", "proxy_get_log_level", |mut c: C<'_>, ret: i32| {
        if write_u32(&mut c, ret, 2) {
            status::OK
        } else {
            status::BAD_ARGUMENT
        }
    })?;
    l.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut c: C<'_>, ret: i32| {
            if write_u64(&mut c, ret, now_nanos()) {
                status::OK
            } else {
                status::BAD_ARGUMENT
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        |mut c: C<'_>, ms: i32| {
            c.data_mut().tick_period_ms = ms as u32;
            status::OK
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_effective_context",
        |mut c: C<'_>, id: i32| {
            let id = id as u32;
            let s = c.data_mut();
            if id == s.root_id || s.streams.contains_key(&id) {
                s.effective = id;
                status::OK
            } else {
                status::BAD_ARGUMENT
            }
        },
    )?;
    l.func_wrap("env", "proxy_done", |_c: C<'_>| status::OK)?;
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
            let s = c.data();
            let data: Option<Vec<u8>> = match ty {
                buffer::PLUGIN_CONFIGURATION if s.plugin_config_open => {
                    Some(s.plugin_config.clone())
                }
                buffer::VM_CONFIGURATION => Some(Vec::new()),
                buffer::CALL_RESPONSE_BODY => match &s.call_response {
                    Some(CallResult::Response { body, .. }) => Some(body.clone()),
                    _ => None,
                },
                buffer::REQUEST_BODY => s
                    .streams
                    .get(&s.effective)
                    .filter(|st| st.request_body_open)
                    .map(|st| st.request_body.clone()),
                buffer::RESPONSE_BODY => s
                    .streams
                    .get(&s.effective)
                    .filter(|st| st.response_body_open)
                    .map(|st| st.response_body.clone()),
                _ => None,
            };
            let Some(data) = data else {
                return Ok(status::NOT_FOUND);
            };
            let start = start as u32 as usize;
            let end = start.saturating_add(max as u32 as usize).min(data.len());
            let slice = data.get(start..end).unwrap_or(&[]);
            give(&mut c, slice, ret_ptr, ret_size)
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
            if write_u32(&mut c, ret, token) {
                status::OK
            } else {
                status::BAD_ARGUMENT
            }
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
    l.func_wrap(
        "env",
        "proxy_get_status",
        |_c: C<'_>, _a: i32, _b: i32, _d: i32| status::NOT_FOUND,
    )?;
    l.func_wrap(
        "env",
        "proxy_define_metric",
        |mut c: C<'_>, ty: i32, np: i32, nl: i32, ret: i32| {
            let Some(name) = read_str(&mut c, np, nl) else {
                return status::BAD_ARGUMENT;
            };
            let Some(global) = c.data().metrics.define(ty, &name) else {
                return status::BAD_ARGUMENT;
            };
            let s = c.data_mut();
            s.metric_ids.push(global);
            let id = s.metric_ids.len() as u32 - 1;
            if write_u32(&mut c, ret, id) {
                status::OK
            } else {
                status::BAD_ARGUMENT
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_increment_metric",
        |c: C<'_>, id: i32, offset: i64| {
            let s = c.data();
            match s.metric_ids.get(id as u32 as usize) {
                Some(g) => s.metrics.increment(*g, offset),
                None => status::NOT_FOUND,
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_record_metric",
        |c: C<'_>, id: i32, value: i64| {
            let s = c.data();
            match s.metric_ids.get(id as u32 as usize) {
                Some(g) => s.metrics.record(*g, value as u64),
                None => status::NOT_FOUND,
            }
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_metric",
        |mut c: C<'_>, id: i32, ret: i32| {
            let v = {
                let s = c.data();
                s.metric_ids
                    .get(id as u32 as usize)
                    .map(|g| s.metrics.value(*g))
            };
            match v {
                Some(v) if write_u64(&mut c, ret, v) => status::OK,
                Some(_) => status::BAD_ARGUMENT,
                None => status::NOT_FOUND,
            }
        },
    )?;
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
            m.insert(key, (v, current + 1));
            status::OK
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_register_shared_queue",
        |mut c: C<'_>, _np: i32, _nl: i32, ret: i32| {
            if write_u32(&mut c, ret, 1) {
                status::OK
            } else {
                status::BAD_ARGUMENT
            }
        },
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

    // The WASI calls Envoy provides.
    const W: &str = "wasi_snapshot_preview1";
    l.func_wrap(
        W,
        "fd_write",
        |mut c: C<'_>, fd: i32, iovs: i32, n: i32, written: i32| {
            let mut total = 0u32;
            let mut text = Vec::new();
            for i in 0..n {
                let Some(iov) = read(&mut c, iovs + i * 8, 8) else {
                    return 21; // EFAULT
                };
                let p = u32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]) as i32;
                let l = u32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]) as i32;
                let Some(b) = read(&mut c, p, l) else {
                    return 21;
                };
                total += l as u32;
                text.extend_from_slice(&b);
            }
            if fd == 1 || fd == 2 {
                eprint!(
                    "[{}] {}",
                    c.data().log_prefix,
                    String::from_utf8_lossy(&text)
                );
            } else {
                return 8; // EBADF
            }
            write_u32(&mut c, written, total);
            0
        },
    )?;
    l.func_wrap(
        W,
        "fd_read",
        |_c: C<'_>, _a: i32, _b: i32, _d: i32, _e: i32| 8,
    )?;
    l.func_wrap(
        W,
        "fd_seek",
        |_c: C<'_>, _a: i32, _b: i64, _d: i32, _e: i32| 8,
    )?;
    l.func_wrap(W, "fd_close", |_c: C<'_>, _a: i32| 8)?;
    l.func_wrap(W, "fd_fdstat_get", |_c: C<'_>, _a: i32, _b: i32| 8)?;
    for name in ["environ_sizes_get", "args_sizes_get"] {
        l.func_wrap(W, name, |mut c: C<'_>, count: i32, size: i32| {
            write_u32(&mut c, count, 0);
            write_u32(&mut c, size, 0);
            0
        })?;
    }
    for name in ["environ_get", "args_get"] {
        l.func_wrap(W, name, |_c: C<'_>, _a: i32, _b: i32| 0)?;
    }
    l.func_wrap(
        W,
        "clock_time_get",
        |mut c: C<'_>, _id: i32, _precision: i64, ret: i32| {
            write_u64(&mut c, ret, now_nanos());
            0
        },
    )?;
    l.func_wrap(W, "random_get", |mut c: C<'_>, ptr: i32, len: i32| {
        let mut buf = vec![0u8; len as u32 as usize];
        if getrandom::fill(&mut buf).is_err() {
            return 29; // EIO
        }
        match memory(&mut c) {
            Ok(m) if m.write(&mut c, ptr as u32 as usize, &buf).is_ok() => 0,
            _ => 21,
        }
    })?;
    l.func_wrap(
        W,
        "proc_exit",
        |_c: C<'_>, code: i32| -> wasmtime::Result<()> {
            Err(wasmtime::Error::msg(format!("proc_exit({code})")))
        },
    )?;
    Ok(l)
}

/// A VM: one instance of the module with its state.
pub struct Vm {
    pub store: Store<VmState>,
    instance: Instance,
    /// Set after a trap: Envoy marks the VM failed and fails every later stream (fail closed).
    pub failed: Option<String>,
    next_context: u32,
}

impl Vm {
    /// Instantiates the module, runs `_initialize`, `proxy_on_vm_start` and `proxy_on_configure`.
    pub fn start(
        engine: &Engine,
        module: &Module,
        linker: &Linker<VmState>,
        state: VmState,
    ) -> Result<Vm, String> {
        let mut store = Store::new(engine, state);
        let instance = linker
            .instantiate(&mut store, module)
            .map_err(|e| format!("instantiation failed: {e}"))?;
        let mut vm = Vm {
            store,
            instance,
            failed: None,
            next_context: 1,
        };
        let root = vm.store.data().root_id;
        if vm.instance.get_func(&mut vm.store, "_initialize").is_some() {
            vm.call("_initialize", &[])?;
        }
        // Envoy creates the root context (parent 0) before starting the VM on it.
        vm.call(
            "proxy_on_context_create",
            &[Val::I32(root as i32), Val::I32(0)],
        )?;
        if vm.call_i32("proxy_on_vm_start", &[Val::I32(root as i32), Val::I32(0)])? == 0 {
            return Err("proxy_on_vm_start returned false".into());
        }
        let size = vm.store.data().plugin_config.len() as i32;
        vm.store.data_mut().plugin_config_open = true;
        let ok = vm.call_i32(
            "proxy_on_configure",
            &[Val::I32(root as i32), Val::I32(size)],
        )?;
        vm.store.data_mut().plugin_config_open = false;
        if ok == 0 {
            return Err("proxy_on_configure returned false: the plugin configuration was refused (see the log above)".into());
        }
        vm.next_context = root + 1;
        Ok(vm)
    }

    /// Calls an export; a trap marks the VM failed.
    pub fn call(&mut self, name: &str, args: &[Val]) -> Result<Vec<Val>, String> {
        if let Some(f) = &self.failed {
            return Err(f.clone());
        }
        let Some(func) = self.instance.get_func(&mut self.store, name) else {
            return Err(format!("module does not export {name}"));
        };
        let n = func.ty(&self.store).results().len();
        let mut results = vec![Val::I32(0); n];
        if let Err(e) = func.call(&mut self.store, args, &mut results) {
            let msg = format!("wasm trap in {name}: {e:?}");
            eprintln!("[{}] {msg}", self.store.data().log_prefix);
            self.failed = Some(msg.clone());
            return Err(msg);
        }
        Ok(results)
    }

    fn call_i32(&mut self, name: &str, args: &[Val]) -> Result<i32, String> {
        Ok(self
            .call(name, args)?
            .first()
            .and_then(Val::i32)
            .unwrap_or(0))
    }

    /// Creates an HTTP context for a new stream.
    pub fn new_stream(&mut self, source_address: String) -> Result<u32, String> {
        let id = self.next_context;
        self.next_context += 1;
        let root = self.store.data().root_id;
        self.store.data_mut().streams.insert(
            id,
            StreamState {
                source_address,
                ..Default::default()
            },
        );
        self.store.data_mut().effective = id;
        self.call(
            "proxy_on_context_create",
            &[Val::I32(id as i32), Val::I32(root as i32)],
        )?;
        Ok(id)
    }

    /// Runs a stream callback with the stream as effective context; returns its action
    /// (0 Continue, 1 Pause) or the trap.
    pub fn stream_call(&mut self, id: u32, name: &str, args: &[Val]) -> Result<i32, String> {
        self.store.data_mut().effective = id;
        self.call_i32(name, args)
    }

    /// Delivers a call's answer: `proxy_on_http_call_response` on the root context, with the
    /// response maps readable only during the callback.
    pub fn deliver(&mut self, token: u32, result: CallResult) -> Result<(), String> {
        let (nh, nb, nt) = match &result {
            CallResult::Response {
                headers,
                body,
                trailers,
            } => (headers.len(), body.len(), trailers.len()),
            CallResult::Reset => (0, 0, 0),
        };
        let root = self.store.data().root_id;
        self.store.data_mut().call_response = Some(result);
        self.store.data_mut().effective = root;
        let r = self.call(
            "proxy_on_http_call_response",
            &[
                Val::I32(root as i32),
                Val::I32(token as i32),
                Val::I32(nh as i32),
                Val::I32(nb as i32),
                Val::I32(nt as i32),
            ],
        );
        self.store.data_mut().call_response = None;
        r.map(|_| ())
    }

    /// Ends a stream: `proxy_on_log`, `proxy_on_done`, `proxy_on_delete`.
    pub fn end_stream(&mut self, id: u32) {
        if self.failed.is_none() {
            self.store.data_mut().effective = id;
            let _ = self.call("proxy_on_log", &[Val::I32(id as i32)]);
            let _ = self.call("proxy_on_done", &[Val::I32(id as i32)]);
            let _ = self.call("proxy_on_delete", &[Val::I32(id as i32)]);
        }
        self.store.data_mut().streams.remove(&id);
    }

    /// The stream's state.
    pub fn stream(&mut self, id: u32) -> Option<&mut StreamState> {
        self.store.data_mut().streams.get_mut(&id)
    }

    /// Calls the stream made during the last callback.
    pub fn take_pending(&mut self, id: u32) -> Vec<PendingCall> {
        let pending = std::mem::take(&mut self.store.data_mut().pending);
        let (mine, others): (Vec<_>, Vec<_>) = pending.into_iter().partition(|p| p.stream == id);
        self.store.data_mut().pending = others;
        mine
    }
}
