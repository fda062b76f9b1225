//! rbuild's image store.
pub mod digest;
pub mod error;
pub mod tar;

pub use digest::Digest;
pub use error::{Result, StoreError};
pub mod layer;
