//! One proxy-wasm VM on wasmtime, with the ABI 0.2.1 hostcalls and the WASI calls Envoy
//! provides, answering with Envoy's status codes and phase windows (`../shared/ENVOY.md`): the
//! state the hostcalls act on, the linker that defines them (one `abi` module per area), and the
//! calls into the module.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use wasmtime::{Engine, Func, Instance, Linker, Memory, Module, Store, TypedFunc, Val};

use crate::abi;
use crate::metrics::MetricStore;

pub use crate::abi::headers::{deserialize_map, serialize_map};

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
pub type SharedData = Arc<Mutex<HashMap<String, (Arc<Vec<u8>>, u32)>>>;

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
    /// The guest's memory and allocator, found once after instantiation (hostcalls use them on
    /// every call; a lookup by name each time costs more than many hostcalls do).
    pub guest: Option<GuestExports>,
}

/// Exports every hostcall may need.
#[derive(Clone)]
pub struct GuestExports {
    pub memory: Memory,
    /// `proxy_on_memory_allocate`, if exported.
    pub allocate: Option<TypedFunc<i32, i32>>,
}

impl VmState {
    /// The stream the hostcalls act on now (`proxy_set_effective_context`).
    pub(crate) fn effective_stream(&mut self) -> Option<&mut StreamState> {
        self.streams.get_mut(&self.effective)
    }
}

/// Defines every import an Envoy-loaded module may have, one ABI area at a time.
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<VmState>> {
    let mut l: Linker<VmState> = Linker::new(engine);
    abi::context::add(&mut l)?;
    abi::buffers::add(&mut l)?;
    abi::headers::add(&mut l)?;
    abi::properties::add(&mut l)?;
    abi::stream::add(&mut l)?;
    abi::http_calls::add(&mut l)?;
    abi::metrics::add(&mut l)?;
    abi::shared_data::add(&mut l)?;
    abi::not_offered::add(&mut l)?;
    abi::wasi::add(&mut l)?;
    Ok(l)
}

/// A VM: one instance of the module with its state.
pub struct Vm {
    pub store: Store<VmState>,
    instance: Instance,
    /// Set after a trap: Envoy marks the VM failed and fails every later stream (fail closed).
    pub failed: Option<String>,
    next_context: u32,
    /// Exports called before, with their result counts: looking a function up by name and
    /// reading its type costs more than a short callback (a cached playlist answer).
    exports: HashMap<&'static str, (Func, usize)>,
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
        if let Some(memory) = instance.get_memory(&mut store, "memory") {
            let allocate = instance
                .get_typed_func::<i32, i32>(&mut store, "proxy_on_memory_allocate")
                .ok();
            store.data_mut().guest = Some(GuestExports { memory, allocate });
        }
        let mut vm = Vm {
            store,
            instance,
            failed: None,
            next_context: 1,
            exports: HashMap::new(),
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

    /// The size of the VM's linear memory (what it has grown to; wasm memory never shrinks).
    pub fn memory_bytes(&mut self) -> u64 {
        self.instance
            .get_memory(&mut self.store, "memory")
            .map_or(0, |m| m.data_size(&self.store) as u64)
    }

    /// Calls an export; a trap marks the VM failed.
    pub fn call(&mut self, name: &'static str, args: &[Val]) -> Result<Vec<Val>, String> {
        if let Some(f) = &self.failed {
            return Err(f.clone());
        }
        let (func, n) = match self.exports.get(name) {
            Some(&found) => found,
            None => {
                let Some(func) = self.instance.get_func(&mut self.store, name) else {
                    return Err(format!("module does not export {name}"));
                };
                let n = func.ty(&self.store).results().len();
                self.exports.insert(name, (func, n));
                (func, n)
            }
        };
        let mut results = vec![Val::I32(0); n];
        if let Err(e) = func.call(&mut self.store, args, &mut results) {
            let msg = format!("wasm trap in {name}: {e:?}");
            eprintln!("[{}] {msg}", self.store.data().log_prefix);
            self.failed = Some(msg.clone());
            return Err(msg);
        }
        Ok(results)
    }

    fn call_i32(&mut self, name: &'static str, args: &[Val]) -> Result<i32, String> {
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
    pub fn stream_call(
        &mut self,
        id: u32,
        name: &'static str,
        args: &[Val],
    ) -> Result<i32, String> {
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
