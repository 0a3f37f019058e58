//! HTTP policy of every edgepack answer, in one place: CORS, cache lifetimes, error bodies.

use crate::error::FilterError;
use crate::response::Response;

/// Segments and initialization segments: named by content or position, they never change, so
/// Envoy's cache and the CDN may keep them for the longest startover window (14 days).
pub const IMMUTABLE: &str = "max-age=1209600, immutable";

/// Keys, licenses and errors: never cached.
pub const NO_STORE: &str = "no-store";

/// Multivariant playlists change only when renditions come or go.
pub const MULTIVARIANT: &str = "max-age=5";

/// Live manifests: half a target duration, so a player never sees one older than a segment.
pub fn live_manifest(target_duration: u64) -> String {
    format!("max-age={}", (target_duration / 2).max(1))
}

/// Every edgepack answer may be read by a player on any origin (as MediaPackage's endpoints): the
/// player page and the stream rarely share a host name. Access rules (CDN identifier, IP
/// allowlist, key tokens) are what protects an endpoint, not the browser's same-origin policy.
pub fn cors(r: Response) -> Response {
    r.header("access-control-allow-origin", "*")
}

/// The methods edgepack's paths take (`Allow` of a 405, a preflight's allowed methods).
pub const METHODS: &str = "GET, HEAD, OPTIONS";
/// The methods the ClearKey license server takes: EME posts the key ids.
pub const LICENSE_METHODS: &str = "POST, OPTIONS";

/// The answer to a CORS preflight (a player that adds its own request headers triggers one).
/// `license`: the ClearKey license server, which also takes POST.
pub fn preflight(request_headers: Option<String>, license: bool) -> Response {
    let mut r = Response {
        status: 204,
        headers: Vec::new(),
        body: Vec::new(),
    }
    .header(
        "access-control-allow-methods",
        if license { LICENSE_METHODS } else { METHODS },
    )
    .header("access-control-max-age", "86400");
    if let Some(h) = request_headers {
        r = r.header("access-control-allow-headers", h);
    }
    r
}

impl FilterError {
    /// The plain-text answer: the error's status and its message, never cached.
    pub fn to_response(&self) -> Response {
        let mut r =
            Response::text(self.status(), &self.to_string()).header("cache-control", NO_STORE);
        if let FilterError::MethodNotAllowed(_, allow) = self {
            r = r.header("allow", *allow);
        }
        r
    }
}
