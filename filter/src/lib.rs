//! edgepack's Proxy-Wasm filter.
//!
//! Not implemented yet: the sans-IO core (config, route, hls, crypto) is issue #3 and the
//! proxy-wasm shell is issue #4. The crate exists now so the workspace, the wasm build and CI
//! are in place for them.
