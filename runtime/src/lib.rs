//! rbuild's container runtime.
pub mod signal;
