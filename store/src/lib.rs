//! rbuild's image store: a real OCI image layout (that skopeo and umoci read as it is)
//! with rbuild's own state beside it.
//!
//! - [`Store`]: the root, atomic blob writes, locks, temp dirs ([`TempDir`]);
//! - [`atomic`]: publishing a file by rename, for every crate ([`write_atomic`]);
//! - [`area`]: the named, versioned areas of `ROOT/rbuild/` that other crates write through;
//! - [`image`]: manifests, configs and names (index.json);
//! - [`layer`] and [`tar`]: layer diffs and their safe application;
//! - [`compress`]: compressed streams in, and out on every core; [`compressed`]: the
//!   compressed forms of layers that pushes and pulls met;
//! - [`archive`]: docker-archive and OCI archives in and out, `import`;
//! - [`layout`]: OCI layout directories written for `type=local` cache exports;
//! - [`export`]: a built image as `build --output` writes it (a tree, a tar, a layout);
//! - [`gc`]: prune and fsck;
//! - [`records`]: local facts about images (built here at, registry digests);
//! - [`events`]: the event journal behind `rbuild events`.
//!
//! # Layout
//!
//! Everything under the root belongs to the store; other crates reach their part through
//! [`Store::area`] (declared in [`area::AREAS`], with the crate that owns it).
//!
//! ```text
//! ROOT/oci-layout                  {"imageLayoutVersion": "1.0.0"}
//! ROOT/index.json                  the images: manifests and their names
//! ROOT/blobs/sha256/<hex>          layers (uncompressed tars), configs, manifests
//! ROOT/rbuild/VERSION              rbuild's layout version
//! ROOT/rbuild/lock                 flock: shared to read index.json, exclusive to change it
//! ROOT/rbuild/gc.lock              flock: shared while a process writes blobs not yet
//!                                  referenced (load, build, pull), exclusive for prune
//! store:
//! ROOT/rbuild/tmp/                 temp files and dirs on the blobs' filesystem, named
//!                                  `<prefix>-<pid>-…` after the process that uses them
//! ROOT/rbuild/procs/<pid>          flock: held shared by each process using the store;
//!                                  lists what it holds (see `lease`), so prune leaves it
//! ROOT/rbuild/pins/<name>          what running containers and builds hold
//! ROOT/rbuild/snapshots/<hex>      unpacked layers (by diff_id) for overlay mounts
//! ROOT/rbuild/unsynced/<boot>/<hex>  snapshots published without a sync in that boot
//! ROOT/rbuild/cache/<key>.json     the build cache index
//! ROOT/rbuild/images/<hex>.json    local image records: made here at, registry digests
//! ROOT/rbuild/events/journal       the event journal
//! ROOT/rbuild/compressed/<hex>.json  compressed forms of a layer (pushed or pulled)
//! ROOT/rbuild/cachemounts/<name>.json  the layer a cache mount was last packed as
//! builder:
//! ROOT/rbuild/statcache/<hash>     stat caches of build contexts
//! ROOT/rbuild/buildcache/<id>/     RUN --mount=type=cache directories
//! ROOT/rbuild/explain/<hash>.json  each build's steps and key parts (--explain-cache)
//! registry:
//! ROOT/rbuild/registry/sources.json  which repositories of which registries hold a blob
//! runtime:
//! ROOT/rbuild/init-layer/          the layer under every sandbox's image
//! ROOT/rbuild/containers/<id>/     containers: config, state, upper dir
//! ROOT/rbuild/volumes/<name>/      volumes
//! ROOT/rbuild/networks/<name>.json network definitions
//! ```
//!
//! The root is private to its owner (0700). Blobs are published by rename after fsync,
//! so a blob file is complete or absent; small files through [`Store::write_atomic`] or
//! an area's [`Area::write_atomic`]. A crash leaves at most temp files, which `prune`
//! removes once their process is gone. Snapshots are published by rename without a sync
//! (they can be made again from their blobs): those of an earlier boot are dropped when
//! the store is next opened, in case that boot ended in a crash. An area's version is in
//! its directory's name (`NAME` for version 1, `NAME-vN` after), and prune removes the
//! directories of versions no longer used.

pub mod archive;
pub mod area;
pub mod atomic;
pub mod cache;
pub mod cachemount;
pub mod compress;
pub mod compressed;
pub mod config;
pub mod digest;
pub mod error;
pub mod events;
pub mod export;
pub mod filter;
pub mod gc;
pub mod image;
pub mod layer;
pub mod layout;
pub mod lease;
pub mod reaper;
pub mod records;
pub mod reference;
pub mod snapshot;
pub mod store;
mod stream;
#[allow(unsafe_code)]
mod sys;
pub mod tar;
pub mod verify;

pub use area::{Area, AreaSpec, AREAS};
pub use atomic::{write_atomic, AtomicWriter, Durability};
pub use cache::{CacheArtifact, CacheConfig, CacheRecord, CacheValue, MEDIA_TYPE_CACHE_CONFIG};
pub use cachemount::CacheMountEntry;
pub use compressed::CompressedForm;
pub use config::ImageConfig;
pub use digest::Digest;
pub use error::{Result, StoreError};
pub use events::Event;
pub use image::{Image, IndexEntry, LayerRef, Removal};
pub use records::ImageRecord;
pub use reference::Reference;
pub use store::{default_root, temp_name, Store, TempDir};
