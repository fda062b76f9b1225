//! OCI image layout directories outside the store (`type=local,dest=DIR` cache exports):
//! blobs copied in (each checked against its digest as it is read, published by rename),
//! `oci-layout`, and an `index.json` naming one manifest.

use crate::atomic::{write_atomic, AtomicWriter, Durability};
use crate::digest::Digest;
use crate::error::{IoContext, Result, StoreError};
use crate::store::Store;
use std::path::Path;

/// Writes the blobs `blobs` and the manifest `manifest` (all in the store) into the OCI
/// layout at `dir`, and names the manifest `ref_name` in its `index.json` (replacing what
/// the index named before). Blobs already there are not written again.
pub fn export_layout(
    store: &Store,
    blobs: &[Digest],
    manifest: (Digest, u64),
    manifest_media_type: &str,
    ref_name: &str,
    dir: &Path,
) -> Result<()> {
    let bd = dir.join("blobs/sha256");
    std::fs::create_dir_all(&bd).at("creating", &bd)?;
    for d in blobs.iter().chain([&manifest.0]) {
        let dest = bd.join(d.hex());
        if dest.exists() {
            continue;
        }
        let mut w = AtomicWriter::create(&dest).at("creating a temp file for", &dest)?;
        // Checked against its digest as it is copied: a damaged blob is not exported.
        let mut src = store.open_verified(d)?;
        std::io::copy(&mut src, &mut w).map_err(|e| match crate::verify::CorruptBlob::in_io(&e) {
            Some(c) => StoreError::Corrupt(c.clone()),
            None => StoreError::io(format!("writing {}", dest.display()), e),
        })?;
        w.commit(Durability::Atomic).at("publishing", &dest)?;
    }
    let layout = dir.join("oci-layout");
    write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#, Durability::Atomic).at("writing", &layout)?;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": crate::config::MEDIA_TYPE_INDEX,
        "manifests": [{
            "mediaType": manifest_media_type,
            "digest": manifest.0.to_string(),
            "size": manifest.1,
            "annotations": { crate::image::ANNOTATION_REF_NAME: ref_name }
        }]
    });
    let path = dir.join("index.json");
    write_atomic(&path, index.to_string().as_bytes(), Durability::Atomic).at("writing", &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layout_holds_the_blobs_and_names_the_manifest() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path().join("s")).unwrap();
        let blob = store.put_blob(b"a layer").unwrap();
        let manifest = store.put_blob(b"{}").unwrap();
        let dir = t.path().join("out");
        let media = crate::config::MEDIA_TYPE_MANIFEST;
        export_layout(&store, &[blob], (manifest, 2), media, "cache", &dir).unwrap();
        // Again into the same directory: the blobs are there, the index is replaced.
        export_layout(&store, &[blob], (manifest, 2), media, "cache2", &dir).unwrap();
        assert_eq!(std::fs::read(dir.join("blobs/sha256").join(blob.hex())).unwrap(), b"a layer");
        let index: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        assert_eq!(index["manifests"][0]["digest"], manifest.to_string());
        assert_eq!(index["manifests"][0]["annotations"][crate::image::ANNOTATION_REF_NAME], "cache2");
        let mut names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, ["blobs", "index.json", "oci-layout"], "a temp file was left");
        assert_eq!(std::fs::read_dir(dir.join("blobs/sha256")).unwrap().count(), 2);
    }
}
