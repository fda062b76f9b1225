//! The builder's errors: what failed, at which Dockerfile position.

use rbuild_parser::Span;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// An instruction that cannot be carried out as written (bad port, bad signal,
    /// expansion error, ...).
    #[error("{message}")]
    Instruction { message: String, span: Option<Span> },
    #[error(transparent)]
    Parse(#[from] rbuild_parser::ParseError),
    #[error(transparent)]
    Store(#[from] rbuild_store::StoreError),
}

impl BuildError {
    pub fn at(message: impl Into<String>, span: Span) -> Self {
        BuildError::Instruction { message: message.into(), span: Some(span) }
    }
    pub fn msg(message: impl Into<String>) -> Self {
        BuildError::Instruction { message: message.into(), span: None }
    }
    /// The Dockerfile position, when there is one.
    pub fn span(&self) -> Option<Span> {
        match self {
            BuildError::Instruction { span, .. } => *span,
            BuildError::Parse(p) => p.span,
            BuildError::Store(_) => None,
        }
    }
}

pub type Result<T, E = BuildError> = std::result::Result<T, E>;
