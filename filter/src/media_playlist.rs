//! The store's media playlist, read through the store contract (`edgepack-store-api`): one model
//! shared with the sidecar that writes it, every tag it does not interpret kept verbatim. An
//! unusable playlist is the store's fault: 502.

pub use edgepack_store_api::{MediaPlaylist, Segment};

use crate::error::FilterError;

/// Parses the store's media playlist; the model borrows from `bytes`.
pub fn parse(bytes: &[u8]) -> Result<MediaPlaylist<'_>, FilterError> {
    edgepack_store_api::parse(bytes).map_err(|e| {
        FilterError::BadGateway(format!("the store sent an unusable media playlist: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(not(target_arch = "wasm32"), test)]
    #[cfg_attr(target_arch = "wasm32", wasm_bindgen_test::wasm_bindgen_test)]
    fn garbage_is_a_bad_gateway() {
        assert_eq!(parse(b"<html>").unwrap_err().status(), 502);
        assert_eq!(parse(&[0xff]).unwrap_err().status(), 502);
    }
}
