//! Why a node is not a valid instruction, in BuildKit's words (the `instructions` package
//! that docker's builder also uses). [`super::from_node`] turns one into a [`Diagnostic`]
//! at the node's place.
//!
//! [`Diagnostic`]: crate::Diagnostic

use super::flags::{CsvError, DurationError, FlagError};
use super::mount::MountError;

/// A node that is not a valid instruction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstructionError {
    #[error(transparent)]
    Flag(#[from] FlagError),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error(transparent)]
    Duration(#[from] DurationError),
    /// A keyword no instruction has; the closest one, if any is close.
    #[error("unknown instruction {keyword:?}")]
    Unknown { keyword: String, suggestion: Option<&'static str> },
    #[error("{0} requires exactly one argument")]
    ExactlyOne(&'static str),
    #[error("{0} requires at least one argument")]
    AtLeastOne(&'static str),
    #[error("Bad input to {0}, too many arguments")]
    TooManyArguments(&'static str),
    /// ENV, LABEL or ARG with `=value` and no name.
    #[error("{0} names can not be blank")]
    BlankName(&'static str),
    /// COPY or ADD with one argument.
    #[error("{0} requires at least two arguments, but only one was provided. Destination could not be determined")]
    NoDestination(&'static str),
    #[error("{0} cannot accept a heredoc as a destination")]
    HeredocDestination(&'static str),
    #[error("SHELL requires the arguments to be in JSON form")]
    ShellNotJson,
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
    #[error("FROM requires either one or three arguments")]
    FromArguments,
    #[error("invalid name for build stage: {0:?}, name can't start with a number or contain symbols")]
    StageName(String),
    #[error("unsupported network mode {0:?}")]
    NetworkMode(String),
    #[error("unsupported security mode {0:?}")]
    SecurityMode(String),
    #[error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    OnbuildChain,
    /// MAINTAINER or FROM as an ONBUILD trigger.
    #[error("{0} isn't allowed as an ONBUILD trigger")]
    OnbuildTrigger(String),
    #[error("HEALTHCHECK NONE takes no arguments")]
    HealthcheckNoneArguments,
    #[error("Unknown type {0:?} in HEALTHCHECK (try CMD)")]
    HealthcheckType(String),
    #[error("Missing command after HEALTHCHECK CMD")]
    HealthcheckCommand,
    /// A HEALTHCHECK timing under a millisecond (zero means "inherit").
    #[error("Interval {0:?} cannot be less than 1ms")]
    IntervalTooShort(&'static str),
    /// `--retries` that is not an integer (Go's message).
    #[error("strconv.ParseInt: parsing {value:?}: invalid syntax")]
    RetriesSyntax {
        value: String,
        #[source]
        source: std::num::ParseIntError,
    },
    /// `--retries` beyond a 32-bit integer (Go's message).
    #[error("strconv.ParseInt: parsing {0:?}: value out of range")]
    RetriesRange(String),
    #[error("--retries cannot be negative ({0})")]
    RetriesNegative(i64),
}

impl From<CsvError> for InstructionError {
    fn from(e: CsvError) -> Self {
        InstructionError::Mount(e.into())
    }
}

impl InstructionError {
    /// A "did you mean" suggestion for an unknown keyword or flag.
    pub fn hint(&self) -> Option<String> {
        match self {
            InstructionError::Unknown { suggestion: Some(s), .. }
            | InstructionError::Flag(FlagError::Unknown { suggestion: Some(s), .. }) => {
                Some(format!("did you mean {s}?"))
            }
            _ => None,
        }
    }
}
