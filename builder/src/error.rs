//! The builder's errors: what failed, with the error that made it fail as its source.
//!
//! Where in the Dockerfile a failure happened is not part of the error: the step that
//! failed knows its instruction, and a [`crate::Failure`] carries that position (see
//! [`crate::Failure::diagnostic`]). A message is the error and its sources joined by `: `
//! ([`message`]), as docker prints them.

use crate::ignore::PatternError;
use rbuild_parser::shell::ShellError;
use rbuild_parser::Diagnostic;
use rbuild_runtime::signal::BadSignal;
use rbuild_runtime::RuntimeError;
use rbuild_store::StoreError;
use std::path::{Path, PathBuf};

/// What an [`crate::ImageSource`] or a [`crate::CacheSource`] fails with: theirs, boxed
/// (the CLI's registry client has its own error types).
pub type SourceError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile (or an ONBUILD trigger) does not parse; located.
    #[error(transparent)]
    Parse(#[from] Diagnostic),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sandbox or the mounts of a step.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A file system operation on a path of the context, a layer or a step's root.
    #[error("{op} {}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Expanding a word with the ARGs and ENV of the moment.
    #[error(transparent)]
    Expand(#[from] ShellError),
    #[error("invalid .dockerignore")]
    DockerIgnore(#[source] PatternError),
    #[error("invalid --exclude")]
    Exclude(#[source] PatternError),
    #[error("{pattern}")]
    Glob {
        pattern: String,
        #[source]
        source: PatternError,
    },

    // --- images and stages
    #[error("base image {reference}")]
    BaseImage {
        reference: String,
        #[source]
        source: Box<BuildError>,
    },
    #[error("no such image: {0}")]
    NoSuchImage(String),
    /// The image source could not provide the image.
    #[error(transparent)]
    Pull(SourceError),
    #[error("invalid from flag value {name}")]
    FromImage {
        name: String,
        #[source]
        source: Box<BuildError>,
    },
    #[error("invalid from flag value {0}: stage not built")]
    StageNotBuilt(String),
    #[error("the target stage was not built")]
    TargetNotBuilt,
    #[error("the base stage was not built")]
    BaseNotBuilt,
    #[error("No image was generated. Is your Dockerfile empty?")]
    NoImage,
    #[error("a build thread panicked")]
    Panicked,
    #[error("build interrupted")]
    Interrupted,
    #[error(transparent)]
    Platform(#[from] rbuild_parser::frontend::UnsupportedPlatform),

    // --- RUN
    #[error("No command specified")]
    NoCommand,
    #[error("{command:?} did not complete successfully: exit code: {code}")]
    StepFailed { command: String, code: i32 },
    #[error("RUN --mount={0} is not supported by rbuild yet (types: cache, tmpfs, bind of the context)")]
    UnsupportedMount(String),
    #[error("RUN --mount=type=bind needs a build context")]
    BindWithoutContext,
    #[error("invalid mount target {0:?}")]
    MountTarget(String),
    /// An entitlement the build was not given (`--allow …`).
    #[error("{0} is not allowed")]
    NotAllowed(&'static str),
    /// A required secret was not given (`--secret id=…`).
    #[error("secret {0}: not found")]
    SecretMissing(String),
    /// A required ssh agent was not given (`--ssh …`).
    #[error("no ssh agent with id {0}: give one with --ssh {0}[=SOCKET|KEY]")]
    SshMissing(String),
    #[error("oci-layout context {}: {problem}", path.display())]
    OciLayout { path: PathBuf, problem: String },

    // --- COPY and ADD
    /// What a COPY or ADD failed on (`COPY failed: …`, as docker says).
    #[error("{kw} failed")]
    Copy {
        kw: &'static str,
        #[source]
        source: Box<BuildError>,
    },
    #[error("{0} needs a destination")]
    NoDestination(&'static str),
    #[error("invalid --chmod={0}: expected an octal mode")]
    Chmod(String),
    #[error("no source files were specified")]
    NoSources,
    #[error("no build context: {0}")]
    NoContext(String),
    #[error("When using {0} with more than one source file, the destination must be a directory and end with a /")]
    MultipleSources(&'static str),
    #[error("file not found in build context or excluded by .dockerignore: stat {0}: file does not exist")]
    SourceNotFound(String),
    #[error("forbidden path outside the build context: {0} ()")]
    OutsideContext(String),
    #[error("too many levels of symbolic links: {}", .0.display())]
    SymlinkLoop(PathBuf),
    #[error("cannot create directory {}: {} is not a directory", path.display(), parent.display())]
    NotADirectory { path: PathBuf, parent: PathBuf },
    #[error("cannot copy {} onto /", .0.display())]
    OntoRoot(PathBuf),
    #[error("unable to convert uid/gid chown string to host mapping")]
    Chown(#[source] RuntimeError),
    #[error("extracting {}", path.display())]
    Extract {
        path: PathBuf,
        #[source]
        source: StoreError,
    },
    #[error("downloading {url}")]
    Download {
        url: String,
        #[source]
        source: SourceError,
    },
    #[error("digest mismatch for {url}: expected {expected}, got {got}")]
    Checksum { url: String, expected: String, got: String },
    #[error("checksum can't be specified for non-HTTP sources")]
    ChecksumNotHttp,
    #[error("invalid checksum {0:?}: expected sha256:HEX")]
    ChecksumFormat(String),
    /// Fetching a git repository for ADD.
    #[error("fetching {url}")]
    Git {
        url: String,
        #[source]
        source: SourceError,
    },

    // --- metadata instructions
    #[error("cannot mount volume over existing file, file exists {0}")]
    VolumeOverFile(String),
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
    #[error("LABEL names can not be blank")]
    BlankLabel,
    /// docker's message for a bad EXPOSE value.
    #[error(transparent)]
    Port(#[from] crate::meta::PortError),
    #[error("cannot normalize nothing")]
    EmptyWorkdir,
    #[error(transparent)]
    Signal(#[from] BadSignal),
    #[error("{0} is not a metadata instruction")]
    NotMetadata(&'static str),
    #[error("the image config would be larger than {0} MiB: the values of ENV, LABEL and the like add up to more")]
    ConfigTooLarge(usize),
    #[error("invalid change {0:?}")]
    Change(String, #[source] Diagnostic),
    #[error("{0} is not a valid change command")]
    NotAChange(String),
}

impl BuildError {
    /// `op` on `path` failed with an I/O error (or an errno).
    pub(crate) fn io<E: Into<std::io::Error>>(op: &'static str, path: impl AsRef<Path>) -> impl FnOnce(E) -> Self {
        let path = path.as_ref().to_path_buf();
        move |e| BuildError::Io { op, path, source: e.into() }
    }

    /// A suggestion shown after the message.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            BuildError::NotAllowed("network.host") => Some("build with --allow network.host"),
            BuildError::NotAllowed(_) => Some("build with --allow security.insecure"),
            BuildError::NoSuchImage(_) => Some("rbuild pull, load or import it first"),
            BuildError::BaseImage { source, .. } | BuildError::FromImage { source, .. } => source.hint(),
            _ => None,
        }
    }
}

/// The error and its sources, joined by `: ` (a source whose text the message already
/// holds is left out).
pub fn message(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(e);
    while let Some(c) = cur {
        let s = c.to_string();
        if !parts.last().is_some_and(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = c.source();
    }
    parts.join(": ")
}

pub type Result<T, E = BuildError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_join_sources_as_docker_prints_them() {
        let e = BuildError::Copy { kw: "COPY", source: Box::new(BuildError::SourceNotFound("a.txt".into())) };
        assert_eq!(
            message(&e),
            "COPY failed: file not found in build context or excluded by .dockerignore: stat a.txt: file does not exist"
        );
        let e = BuildError::io("creating", "/x/y")(std::io::Error::from_raw_os_error(13));
        assert_eq!(message(&e), "creating /x/y: Permission denied (os error 13)");
        let e =
            BuildError::BaseImage { reference: "a:1".into(), source: Box::new(BuildError::NoSuchImage("a:1".into())) };
        assert_eq!(
            (message(&e).as_str(), e.hint()),
            ("base image a:1: no such image: a:1", Some("rbuild pull, load or import it first"))
        );
    }
}
