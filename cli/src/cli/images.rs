//! The image commands' arguments (images, rmi, inspect, history, save, load, import,
//! prune, fsck, pull, push, login, search): clap structs only.

use clap::ValueEnum;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct SearchArgs {
    /// Show at most this many results
    #[arg(long, default_value_t = 25)]
    pub limit: usize,
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format the output with a Go template
    #[arg(long)]
    pub format: Option<String>,
    /// Filter output (kept for docker compatibility: is-official, is-automated, stars
    /// never match a private registry's repositories except stars=0)
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// HOST[:PORT]/TERM: repositories of that registry whose name contains TERM
    pub term: String,
}

#[derive(clap::Args, Debug)]
pub struct ImagePruneArgs {
    /// Remove every image without a container, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Filter (until=, label=)
    #[arg(long = "filter")]
    pub filter: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct ImagesArgs {
    /// Show all images (rbuild keeps no intermediate images: the same as without)
    #[arg(short, long)]
    pub all: bool,
    /// Only image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Filter (dangling, label, reference, before, since)
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Format the output with a Go template (or `json`, `table …`)
    #[arg(long)]
    pub format: Option<String>,
    /// Show manifest digests
    #[arg(long)]
    pub digests: bool,
    /// Full IDs
    #[arg(long)]
    pub no_trunc: bool,
    /// REPOSITORY[:TAG] (a pattern: `org/*`)
    pub repository: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct RmiArgs {
    /// Remove even when the image has several names or a container uses it
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// Only this type of object
    #[arg(long = "type", value_parser = ["image", "container", "volume"])]
    pub typ: Option<String>,
    /// Format the output with a Go template
    #[arg(short, long)]
    pub format: Option<String>,
    /// Show sizes (containers)
    #[arg(short, long)]
    pub size: bool,
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Print sizes and dates in human readable format (default true)
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set)]
    pub human: bool,
    /// Format the output with a Go template (or `json`, `table …`)
    #[arg(long)]
    pub format: Option<String>,
    pub image: String,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ArchiveFormat {
    DockerArchive,
    OciArchive,
    OciDir,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum CompressionArg {
    None,
    Gzip,
    Zstd,
}

#[derive(clap::Args, Debug)]
pub struct SaveArgs {
    /// Write to a file (or, for oci-dir, a directory)
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "docker-archive")]
    pub format: ArchiveFormat,
    /// Layer compression for OCI formats (docker archives are uncompressed, as docker's)
    #[arg(long, value_enum, default_value = "gzip")]
    pub compression: CompressionArg,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// Read from a file instead of standard input
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The tarball (plain, gzip, bzip2, xz, zstd), or - for standard input
    pub file: String,
    /// Name for the image
    pub name: Option<String>,
    /// Dockerfile instructions to apply (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR)
    #[arg(short, long = "change")]
    pub changes: Vec<String>,
    /// Commit message
    #[arg(short, long)]
    pub message: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// Do not ask (kept for docker compatibility; rbuild never asks)
    #[arg(short, long)]
    pub force: bool,
    /// Also remove untagged images and the whole build cache
    #[arg(short, long)]
    pub all: bool,
}

#[derive(clap::Args, Debug)]
pub struct FsckArgs {
    /// Remove the corrupt blobs found (pull, load or build their images again after)
    #[arg(long)]
    pub repair: bool,
}

#[derive(clap::Args, Debug)]
pub struct PullArgs {
    /// Print only the image name
    #[arg(short, long)]
    pub quiet: bool,
    pub name: String,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ManifestFormatArg {
    Oci,
    Docker,
}

#[derive(clap::Args, Debug)]
pub struct PushArgs {
    /// Manifest format
    #[arg(long, value_enum, default_value = "oci")]
    pub format: ManifestFormatArg,
    /// Layer compression on the wire, on every core (the store keeps layers
    /// uncompressed); gzip as docker's push; a layer pushed before is not compressed again
    #[arg(long, value_enum, default_value = "gzip")]
    pub compression: CompressionArg,
    /// Upload blobs larger than this many bytes in chunks of this size
    #[arg(long, default_value_t = 32 << 20, hide = true)]
    pub chunk_size: u64,
    /// Print only the manifest digest
    #[arg(short, long)]
    pub quiet: bool,
    /// The image (its name says the registry and repository)
    pub name: String,
}

#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    /// The user name (asked for when not given)
    #[arg(short, long)]
    pub username: Option<String>,
    /// The password (prefer --password-stdin)
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from standard input
    #[arg(long)]
    pub password_stdin: bool,
    /// HOST[:PORT] (default docker.io)
    pub registry: Option<String>,
}
