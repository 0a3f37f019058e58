//! User story: an operator loads `edgepack_filter.wasm` into Envoy (V8, ABI 0.2.1) and it links:
//! the module imports only `env.proxy_*` hostcalls and the WASI functions Envoy provides, and
//! exports what the host calls.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: fail loudly

/// WASI preview 1 functions Envoy implements (proxy-wasm-cpp-host `src/exports.cc`).
const ENVOY_WASI: &[&str] = &[
    "fd_write",
    "fd_read",
    "fd_seek",
    "fd_close",
    "fd_fdstat_get",
    "environ_get",
    "environ_sizes_get",
    "args_get",
    "args_sizes_get",
    "proc_exit",
    "clock_time_get",
    "random_get",
];

#[test]
fn imports_are_proxy_abi_and_envoy_wasi_only() {
    let bytes = std::fs::read(edgepack_test_support::artifacts::filter_wasm().unwrap()).unwrap();
    let mut imports = Vec::new();
    let mut exports = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
        match payload.unwrap() {
            wasmparser::Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.unwrap();
                    imports.push((import.module.to_owned(), import.name.to_owned()));
                }
            }
            wasmparser::Payload::ExportSection(reader) => {
                for export in reader {
                    exports.push(export.unwrap().name.to_owned());
                }
            }
            _ => {}
        }
    }
    assert!(!imports.is_empty());
    for (module, name) in &imports {
        let ok = (module == "env" && name.starts_with("proxy_"))
            || (module == "wasi_snapshot_preview1" && ENVOY_WASI.contains(&name.as_str()));
        assert!(ok, "import {module}.{name} is not provided by Envoy");
    }
    assert!(
        imports.iter().any(|(_, n)| n == "proxy_http_call"),
        "{imports:?}"
    );
    for needed in [
        "_initialize",
        "proxy_abi_version_0_2_1",
        "proxy_on_memory_allocate",
        "proxy_on_vm_start",
        "proxy_on_configure",
        "proxy_on_context_create",
        "proxy_on_request_headers",
        "proxy_on_http_call_response",
    ] {
        assert!(
            exports.iter().any(|e| e == needed),
            "missing export {needed}: {exports:?}"
        );
    }
    println!(
        "edgepack_filter.wasm: {} bytes, {} imports",
        bytes.len(),
        imports.len()
    );
}

/// The filter is built with SIMD128 (its AES runs on it) and with nothing newer: the module
/// validates under the features Envoy's V8 runs by default (the WebAssembly 2.0 set: SIMD128,
/// bulk memory, multi-value, reference types, sign extension, saturating float-to-int), and it
/// does not validate without SIMD128 — a build that lost `+simd128` would fall back to the slow
/// software AES unnoticed.
#[test]
fn uses_simd128_and_only_features_envoys_v8_runs() {
    use wasmparser::{Validator, WasmFeatures};
    let bytes = std::fs::read(edgepack_test_support::artifacts::filter_wasm().unwrap()).unwrap();
    let wasm2 = WasmFeatures::WASM2;
    Validator::new_with_features(wasm2)
        .validate_all(&bytes)
        .expect("valid under WebAssembly 2.0 (SIMD128 and no newer proposal)");
    let without_simd = wasm2.difference(WasmFeatures::SIMD);
    assert!(
        Validator::new_with_features(without_simd)
            .validate_all(&bytes)
            .is_err(),
        "the filter uses SIMD128"
    );
}
