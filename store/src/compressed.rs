//! What each layer is on the wire: the compressed blobs (digest, size, compression) that
//! a push made or a pull fetched for a diff_id. A second push of the layer asks the
//! registry for one of these (HEAD) before compressing anything again, and a pulled image
//! pushed back refers to the registry's own blobs, as docker's distribution metadata does.
//!
//! ```text
//! ROOT/rbuild/compressed/<diff_id hex>.json   [{"compression":"gzip","digest":…,"size":…}, …]
//! ```
//! Newest first, at most [`MAX_FORMS`] a layer. Losing the area costs a recompression.

use crate::compress::Compression;
use crate::digest::Digest;
use crate::error::Result;
use crate::store::Store;
use serde::{Deserialize, Serialize};

/// Forms kept per layer.
pub const MAX_FORMS: usize = 8;

/// A layer as a compressed blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompressedForm {
    /// `gzip` or `zstd`.
    pub compression: String,
    pub digest: Digest,
    pub size: u64,
}

impl CompressedForm {
    pub fn new(compression: Compression, digest: Digest, size: u64) -> Self {
        CompressedForm { compression: compression.name().to_string(), digest, size }
    }

    pub fn is(&self, c: Compression) -> bool {
        self.compression == c.name()
    }
}

fn file_name(diff_id: &Digest) -> String {
    format!("{}.json", diff_id.hex())
}

impl Store {
    /// The known compressed forms of layer `diff_id`, newest first (none when unknown or
    /// unreadable).
    pub fn compressed_forms(&self, diff_id: &Digest) -> Vec<CompressedForm> {
        let Ok(area) = self.area("compressed") else { return vec![] };
        area.read(file_name(diff_id)).ok().flatten().and_then(|d| serde_json::from_slice(&d).ok()).unwrap_or_default()
    }

    /// Notes that `form` is layer `diff_id` compressed (it goes first). Not synced:
    /// losing it costs only time.
    pub fn record_compressed_form(&self, diff_id: &Digest, form: CompressedForm) -> Result<()> {
        if form.digest == *diff_id {
            return Ok(());
        }
        let area = self.area("compressed")?;
        let _l = self.lock_write()?;
        let mut all = self.compressed_forms(diff_id);
        all.retain(|f| f.digest != form.digest);
        all.insert(0, form);
        all.truncate(MAX_FORMS);
        let data = serde_json::to_vec(&all).map_err(|e| crate::error::StoreError::BadImage(e.to_string()))?;
        area.write_replacing(file_name(diff_id), &data, false)
    }

    /// Forgets the forms of a layer (prune, when its blob goes).
    pub(crate) fn forget_compressed_forms(&self, diff_id: &Digest) -> Result<()> {
        self.area("compressed")?.remove(file_name(diff_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_kept_newest_first_without_duplicates() {
        let t = tempfile::tempdir().unwrap();
        let store = Store::open(t.path().join("s")).unwrap();
        let layer = Digest::of(b"layer");
        assert!(store.compressed_forms(&layer).is_empty());
        let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
        store.record_compressed_form(&layer, CompressedForm::new(Compression::Gzip, a, 10)).unwrap();
        store.record_compressed_form(&layer, CompressedForm::new(Compression::Zstd, b, 9)).unwrap();
        store.record_compressed_form(&layer, CompressedForm::new(Compression::Gzip, a, 10)).unwrap();
        let f = store.compressed_forms(&layer);
        assert_eq!(f.iter().map(|f| f.digest).collect::<Vec<_>>(), vec![a, b]);
        assert!(f[0].is(Compression::Gzip) && f[1].is(Compression::Zstd));
        // An uncompressed layer is its own form: nothing to note.
        store.record_compressed_form(&b, CompressedForm::new(Compression::Gzip, b, 1)).unwrap();
        assert!(store.compressed_forms(&b).is_empty());
        store.forget_compressed_forms(&layer).unwrap();
        assert!(store.compressed_forms(&layer).is_empty());
    }
}
