//! rbuild's registry client: the OCI distribution API that docker-registry, Harbor, ECR,
//! GHCR and others serve, and the build cache shared through it.
//!
//! - [`client`]: one registry, its `/v2/` endpoint and authentication (anonymous, Basic,
//!   Bearer tokens), plain http for loopback and insecure registries, https otherwise;
//! - [`auth`]: credentials in docker's `config.json`, `WWW-Authenticate` challenges;
//! - [`pull`] and [`push`]: images in and out of the store, every blob verified;
//! - [`cache`]: `--cache-to` / `--cache-from` through a registry or an OCI layout;
//! - [`catalog`]: the repositories a registry lists (`rbuild search`).
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use rbuild_registry::{client::{Client, ClientOptions}, pull::pull, progress::Quiet};
//! let store = rbuild_store::Store::open("/var/lib/rbuild")?;
//! let r = rbuild_store::Reference::parse("127.0.0.1:5000/app:1")?;
//! let client = Client::new(&r.domain, &ClientOptions::from_env())?;
//! let pulled = pull(&store, &client, &r, &Quiet)?;
//! println!("{}", pulled.image.id());
//! # Ok(()) }
//! ```

pub mod auth;
pub mod cache;
pub mod catalog;
pub mod client;
pub mod error;
pub mod progress;
pub mod pull;
pub mod push;
pub mod sources;
#[cfg(feature = "testing")]
pub mod testing;
mod upload;

pub use error::{RegistryError, Result};

/// What a manifest is fetched by: the digest when the name has one (it pins the
/// content), else the tag.
pub(crate) fn fetch_ref(r: &rbuild_store::Reference) -> String {
    match (&r.digest, &r.tag) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.clone(),
        (None, None) => "latest".to_string(),
    }
}

/// What a manifest is stored under: the tag, else the digest.
pub(crate) fn store_ref(r: &rbuild_store::Reference) -> String {
    match (&r.tag, &r.digest) {
        (Some(t), _) => t.clone(),
        (None, Some(d)) => d.to_string(),
        (None, None) => "latest".to_string(),
    }
}

/// Runs `f` on every item, `threads` at a time (blobs of one image go up or down
/// together); stops at the first error and returns it.
pub(crate) fn for_each_parallel<T: Sync>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> Result<()> + Sync,
) -> Result<()> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let failed: std::sync::Mutex<Option<RegistryError>> = std::sync::Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads.min(items.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= items.len() || failed.lock().map(|f| f.is_some()).unwrap_or(true) {
                    break;
                }
                if let Err(e) = f(&items[i]) {
                    failed.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                    break;
                }
            });
        }
    });
    match failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
