//! rbuild's image store: a real OCI image layout (that skopeo and umoci read as it is)
//! with rbuild's own state beside it.
//!
//! - [`Store`]: the root, atomic blob writes, locks;
//! - [`image`]: manifests, configs and names (index.json);
//! - [`layer`] and [`tar`]: layer diffs and their safe application;
//! - [`archive`]: docker-archive and OCI archives in and out, `import`;
//! - [`gc`]: prune and fsck;
//! - [`records`]: local facts about images (built here at, registry digests);
//! - [`events`]: the event journal behind `rbuild events`.

pub mod archive;
pub mod cache;
pub mod compress;
pub mod config;
pub mod digest;
pub mod error;
pub mod events;
pub mod filter;
pub mod gc;
pub mod image;
pub mod layer;
pub mod lease;
pub mod records;
pub mod reference;
pub mod snapshot;
pub mod store;
mod stream;
#[allow(unsafe_code)]
mod sys;
pub mod tar;
pub mod verify;

pub use cache::{CacheArtifact, CacheConfig, CacheRecord, CacheValue, MEDIA_TYPE_CACHE_CONFIG};
pub use config::ImageConfig;
pub use digest::Digest;
pub use error::{Result, StoreError};
pub use events::Event;
pub use image::{Image, IndexEntry, LayerRef};
pub use records::ImageRecord;
pub use reference::Reference;
pub use store::{default_root, Store, TempDir};
