//! proxy-wasm test host that runs edgepack's filter the way Envoy does.
//!
//! The host runs the real `edgepack_filter.wasm` on wasmtime the way Envoy runs a Proxy-Wasm
//! HTTP filter (`../shared/ENVOY.md`): ABI 0.2.1 hostcalls with Envoy's statuses and phase
//! windows, one VM per worker plus a validation VM, deferred local replies that run through the
//! filter's own response callbacks, `dispatch_http_call` with Envoy's failure answers, and
//! metrics at `/stats/prometheus`. It is a test host, not Envoy.

mod abi;
pub mod access_log;
pub mod bootstrap;
mod cluster;
pub mod host;
pub mod metrics;
pub mod vm;

pub use host::{DirectResponse, HostOptions, RunningHost, start};
