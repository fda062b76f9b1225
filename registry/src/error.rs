//! The registry client's errors. Each names the registry, repository or blob involved.

use rbuild_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry answered with an unexpected status.
    #[error("{what}: {status} {detail}")]
    Http { what: String, status: u16, detail: String },
    /// 401 after trying the credentials we have (or without any).
    #[error("{registry}: authentication required{detail} (rbuild login {registry})")]
    Unauthorized { registry: String, detail: String },
    /// The credentials were refused by the registry (or its token server).
    #[error("{registry}: login failed: {detail}")]
    LoginFailed { registry: String, detail: String },
    /// The connection failed or broke off.
    #[error("{what}: {detail}")]
    Transport { what: String, detail: String },
    /// `what` names it: `manifest for REF`, `blob DIGEST in REPO`.
    #[error("{what} not found in the registry{detail}")]
    NotFound { what: String, detail: String },
    #[error("{what}: {detail}")]
    BadResponse { what: String, detail: String },
    #[error("{0}")]
    Unsupported(String),
    #[error("credential helper {helper}: {detail}")]
    CredentialHelper { helper: String, detail: String },
    #[error("docker config {path}: {detail}")]
    Config { path: String, detail: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

impl RegistryError {
    pub(crate) fn transport(what: impl Into<String>, e: impl std::fmt::Display) -> Self {
        RegistryError::Transport { what: what.into(), detail: e.to_string() }
    }
    pub(crate) fn bad(what: impl Into<String>, detail: impl Into<String>) -> Self {
        RegistryError::BadResponse { what: what.into(), detail: detail.into() }
    }
}
