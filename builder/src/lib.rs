//! rbuild's builder: a Dockerfile and a context in, an image in the store out.
//!
//! [`Builder`] is the API: it parses the Dockerfile (`rbuild_parser`), walks the stage
//! graph (stages that do not need each other at the same time), computes each step's
//! [`CacheKey`], runs RUN steps in the sandbox (`rbuild_runtime`), copies files for COPY
//! and ADD, and commits every changed filesystem as a layer in the store. Layout:
//! `build.rs` the graph walk, `stage.rs` a stage's instructions, `cache_key.rs` keys and
//! records, `steps/` one file per step family, `context.rs` and `ignore.rs` the build
//! context and `.dockerignore`, `copy.rs` copying into a root, `meta.rs` the config
//! changes of metadata instructions (also `docker commit --change`).
#![allow(clippy::result_large_err)]

mod build;
mod builder;
pub mod cache_key;
pub mod check;
pub mod context;
pub mod copy;
pub mod error;
pub mod explain;
pub mod ignore;
pub mod meta;
mod sources;
mod stage;
mod steps;
pub mod volume;

pub use builder::{
    Builder, Built, CacheSource, Entitlement, Event, Failure, ImageSource, NamedContext, NamedContextError, Progress,
    UnknownEntitlement,
};
pub use cache_key::CacheKey;
pub use error::{BuildError, Result, SourceError};
pub use meta::apply_changes;
