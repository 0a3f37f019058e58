//! helpers shared by edgepack's tests and benchmarks
