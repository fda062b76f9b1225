//! Layers: trees to tars (diffs) and tars to trees (apply), with OCI whiteouts.

mod apply;
mod remove;
mod write;

pub use apply::{apply_layer, components, extract_in_root, ApplyMode, ApplyStats};
pub use remove::remove_tree;
pub use write::{write_layer, writes_nothing, WriteOptions, WriteStats};

/// OCI whiteout prefix: `.wh.NAME` deletes NAME from lower layers.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Names starting with this are whiteout metadata, not whiteouts.
pub const WHITEOUT_META_PREFIX: &str = ".wh..wh.";
/// The opaque-directory marker: nothing from lower layers shows in this directory.
pub const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";
/// overlayfs' opaque-directory xattr.
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// The sha256 of an empty layer (a tar with only the end-of-archive marker).
pub const EMPTY_LAYER_DIGEST: &str = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";
