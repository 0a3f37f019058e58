//! Which segments of the store's history a media playlist shows: the live window, a time delay,
//! or a time-shifted `[start, end]` range. The rule is the store contract's
//! ([`edgepack_store_api::window`]): the store cuts its answer with it, the filter shows the same.

pub use edgepack_store_api::window::{WindowKind as PlaylistType, WindowSpec, select};
