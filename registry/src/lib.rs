//! rbuild's registry client: the OCI distribution API that docker-registry, Harbor, ECR,
//! GHCR and others serve, and the build cache shared through it.
//!
//! - [`client`]: one registry, its `/v2/` endpoint and authentication (anonymous, Basic,
//!   Bearer tokens), plain http for loopback and insecure registries, https otherwise;
//! - [`auth`]: credentials in docker's `config.json`, `WWW-Authenticate` challenges;
//! - [`pull`] and [`push`]: images in and out of the store, every blob verified;
//! - [`cache`]: `--cache-to` / `--cache-from` through a registry or an OCI layout.
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
pub mod client;
pub mod error;
pub mod progress;
pub mod pull;
pub mod push;
pub mod sources;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::{RegistryError, Result};
