//! proxy-wasm test host that runs edgepack's filter the way Envoy does
