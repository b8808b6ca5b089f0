//! Op families. Each folder keeps one family's GPU launchers, its backward rules
//! (tape ops) and, in `cpu.rs`, its plain-Rust reference with f64 accumulation.
//! The WGSL source of family `x` is `shaders/x.wgsl`.

pub mod eltwise;
pub mod testing;
