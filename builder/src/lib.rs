//! rbuild's builder.
pub mod error;
pub mod meta;

pub use error::{BuildError, Result};
