//! the store contract: edgepack's one media playlist model and the store's internal API (paths, queries, headers), no I/O
