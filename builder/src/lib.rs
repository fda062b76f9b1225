#![allow(clippy::result_large_err)]
//! rbuild's builder.
pub mod error;
pub mod ignore;
pub mod meta;

pub use error::{BuildError, Result};
pub mod build;
pub mod cache_key;
pub mod context;
pub mod copy;
mod stage;
mod steps;
pub mod volume;
