//! What can go wrong building a sandbox, each variant naming the step.

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("the sandbox was not finished by its monitor")]
    NotFinished,
    #[error("an overlay needs at least one lower layer")]
    NoLowerLayer,
    #[error("the mount helper thread panicked")]
    MountThread,
    #[error(transparent)]
    Capability(#[from] super::capabilities::UnknownCap),
    #[error("the {0} cgroup controller is not available")]
    NoController(&'static str),
    #[error("the sandbox has no cgroup")]
    NoCgroup,
    #[error("the cgroup did not become {0}")]
    Freeze(&'static str),
}
