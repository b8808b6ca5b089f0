//! Network building blocks shared by models: parameter initialisation and squeeze-and-excitation.

pub mod init;
/// Squeeze-and-excitation: a per-channel gate from globally pooled features.
pub mod se;
