//! rbuild's builder.
pub mod error;
pub mod ignore;
pub mod meta;

pub use error::{BuildError, Result};
pub mod build;
pub mod check;
pub mod context;
pub mod copy;
pub mod volume;
