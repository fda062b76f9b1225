//! Command-line arguments.

use clap::{Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "rbuild", version, about = "Daemonless Dockerfile builder and container runtime")]
pub struct Cli {
    /// Store root (default: /var/lib/rbuild as root, $XDG_DATA_HOME/rbuild otherwise)
    #[arg(long, global = true, env = "RBUILD_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// A registry (HOST[:PORT]) to reach over plain http (loopback ones always are);
    /// also RBUILD_INSECURE_REGISTRIES, comma-separated
    #[arg(long = "insecure-registry", global = true, value_name = "HOST")]
    pub insecure_registry: Vec<String>,

    /// How long a pull may take in all (manifests, config, layers), e.g. 90s, 30m, 2h;
    /// 0: no limit
    #[arg(long, global = true, env = "RBUILD_PULL_TIMEOUT", value_name = "DURATION", default_value = "1h",
          value_parser = parse_duration)]
    pub pull_timeout: std::time::Duration,

    /// The slowest a pull may download, in bytes per second averaged over 30 s (k and m
    /// suffixes: KiB, MiB); 0: any speed
    #[arg(long, global = true, env = "RBUILD_PULL_MIN_RATE", value_name = "BYTES", default_value = "1k",
          value_parser = parse_rate)]
    pub pull_min_rate: u64,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build an image from a Dockerfile (the default verb: `rbuild -t app .`)
    Build(BuildArgs),
    /// Parse a Dockerfile and print its syntax tree or its stage graph
    Parse(ParseArgs),
    /// List images
    Images(ImagesArgs),
    /// Give an image another name
    Tag { source: String, target: String },
    /// Remove images (names; the image goes with its last name)
    Rmi(RmiArgs),
    /// Show an image (or container) as JSON
    Inspect(InspectArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Write images to an archive (stdout when no -o)
    Save(SaveArgs),
    /// Load images from a docker-archive or OCI archive (stdin when no -i)
    Load(LoadArgs),
    /// Make a one-layer image from a rootfs tarball
    Import(ImportArgs),
    /// Remove unused blobs, snapshots, cache entries and temp files
    Prune(PruneArgs),
    /// Verify every blob and image in the store
    Fsck(FsckArgs),
    /// Fetch an image from a registry
    Pull(PullArgs),
    /// Send an image to its registry
    Push(PushArgs),
    /// Store credentials for a registry (in docker's config.json)
    Login(LoginArgs),
    /// Forget the credentials for a registry
    Logout { registry: String },
    /// Run a command in a new container
    Run(RunArgs),
    /// Create a container without starting it
    Create(RunArgs),
    /// Start stopped containers
    Start(StartArgs),
    /// List containers
    Ps(PsArgs),
    /// Show a container's output
    Logs(LogsArgs),
    /// Stop containers (the stop signal, then SIGKILL after the timeout)
    Stop(StopArgs),
    /// Send a signal to containers
    Kill(KillArgs),
    /// Stop and start containers again
    Restart(StopArgs),
    /// Remove containers
    Rm(RmArgs),
    /// Run a command in a running container
    Exec(ExecArgs),
    /// Wait for containers to stop and print their exit codes
    Wait {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Show a container's processes
    Top { container: String },
    /// Freeze a container's processes
    Pause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Thaw a container's processes
    Unpause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Copy files between a container and the host (CONTAINER:PATH on one side)
    Cp { source: String, dest: String },
    /// Show what changed in a container's filesystem
    Diff { container: String },
    /// Make an image from a container's changes
    Commit(CommitArgs),
    /// Write a container's filesystem as a tar
    Export(ExportArgs),
    /// Rename a container
    Rename { container: String, name: String },
    /// Show a container's published ports
    Port { container: String },
    #[command(name = "__shim", hide = true)]
    Shim { args: Vec<String> },
}

#[derive(clap::Args, Debug, Clone)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Run in the background and print the container ID
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables (KEY=VALUE, or KEY to take the host's value)
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    #[arg(long = "env-file")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// USER[:GROUP] or UID[:GID]
    #[arg(short, long)]
    pub user: Option<String>,
    /// Bind a host path or a named volume: /host:/ctr[:ro], name:/ctr, /ctr
    #[arg(short, long = "volume")]
    pub volume: Vec<String>,
    #[arg(long = "volumes-from")]
    pub volumes_from: Vec<String>,
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// none (default: only lo) or host
    #[arg(long, default_value = "none", value_parser = ["none", "host"])]
    pub network: String,
    /// Publish a port: [IP:]HOST_PORT:CONTAINER_PORT
    #[arg(short, long = "publish")]
    pub publish: Vec<String>,
    /// Keep standard input open
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Run an init as PID 1 that reaps zombies and forwards signals
    #[arg(long)]
    pub init: bool,
    /// Memory limit (e.g. 64m)
    #[arg(short, long)]
    pub memory: Option<String>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    /// CPU quota in CPUs (e.g. 0.5)
    #[arg(long)]
    pub cpus: Option<f64>,
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Mount the root filesystem read-only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Mount a tmpfs: /path[:options]
    #[arg(long)]
    pub tmpfs: Vec<String>,
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    pub image: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct StartArgs {
    /// Attach to the container's output and wait for it
    #[arg(short, long)]
    pub attach: bool,
    #[arg(short, long)]
    pub interactive: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct PsArgs {
    #[arg(short, long)]
    pub all: bool,
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long)]
    pub no_trunc: bool,
}

#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    #[arg(short, long)]
    pub follow: bool,
    #[arg(short, long)]
    pub timestamps: bool,
    /// Only the last N lines (or "all")
    #[arg(long, default_value = "all")]
    pub tail: String,
    pub container: String,
}

#[derive(clap::Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait before killing
    #[arg(short, long, default_value_t = 10)]
    pub time: u64,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct KillArgs {
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// Kill running containers first
    #[arg(short, long)]
    pub force: bool,
    /// Also remove the container's anonymous volumes
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    #[arg(short, long)]
    pub interactive: bool,
    #[arg(short, long)]
    pub tty: bool,
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    #[arg(short, long)]
    pub workdir: Option<String>,
    #[arg(short, long)]
    pub user: Option<String>,
    pub container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct CommitArgs {
    #[arg(short, long)]
    pub message: Option<String>,
    #[arg(short, long)]
    pub author: Option<String>,
    /// Dockerfile instructions to apply
    #[arg(short, long = "change")]
    pub changes: Vec<String>,
    pub container: String,
    pub image: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    pub container: String,
}

#[derive(clap::Args, Debug)]
pub struct ImagesArgs {
    /// Only image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Show manifest digests
    #[arg(long)]
    pub digests: bool,
    /// Full IDs
    #[arg(long)]
    pub no_trunc: bool,
    /// Only images whose repository matches
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
    /// Only images
    #[arg(long = "type", value_parser = ["image", "container"])]
    pub typ: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    #[arg(long)]
    pub no_trunc: bool,
    #[arg(short, long)]
    pub quiet: bool,
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

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ParseFormat {
    /// BuildKit's AST dump
    Buildkit,
    /// The typed stages, instructions with spans, edges and parallel levels
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    Auto,
    Plain,
    Tty,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BuildNetwork {
    Host,
    None,
    Default,
}

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    /// Name (and tag) for the image; may be given several times
    #[arg(short = 't', long = "tag", value_name = "NAME")]
    pub tags: Vec<String>,
    /// The Dockerfile (default CONTEXT/Dockerfile); `-` reads standard input
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<String>,
    /// Build-time variables
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// Build this stage (and what it needs) only
    #[arg(long)]
    pub target: Option<String>,
    /// Run every step, ignoring the build cache
    #[arg(long)]
    pub no_cache: bool,
    /// Refresh base images from their registry
    #[arg(long)]
    pub pull: bool,
    /// Print only the image ID
    #[arg(short, long)]
    pub quiet: bool,
    /// Network of RUN steps (default: host)
    #[arg(long, value_enum, default_value = "default")]
    pub network: BuildNetwork,
    /// Progress output
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressMode,
    /// Metadata for the image
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Write the image ID to this file
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// Export the build cache: type=registry,ref=NAME[,mode=min|max] or
    /// type=local,dest=DIR[,mode=min|max]
    #[arg(long = "cache-to", value_name = "SPEC")]
    pub cache_to: Vec<String>,
    /// Import a build cache: type=registry,ref=NAME or type=local,src=DIR (or just NAME)
    #[arg(long = "cache-from", value_name = "SPEC")]
    pub cache_from: Vec<String>,
    /// The build context: a directory, or `-` for a tar (or a Dockerfile) on stdin
    pub context: String,
}

#[derive(clap::Args, Debug)]
pub struct ParseArgs {
    #[arg(long, value_enum, default_value = "buildkit")]
    pub format: ParseFormat,
    /// Build-time variables, for resolving FROM lines (json format)
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// Prune the graph to this stage (json format)
    #[arg(long)]
    pub target: Option<String>,
    /// The Dockerfile; `-` reads standard input
    #[arg(default_value = "Dockerfile")]
    pub file: String,
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
    /// Layer compression on the wire (the store keeps layers uncompressed)
    #[arg(long, value_enum, default_value = "none")]
    pub compression: CompressionArg,
    /// Upload blobs larger than this many bytes in chunks of this size
    #[arg(long, default_value_t = 32 << 20, hide = true)]
    pub chunk_size: u64,
    #[arg(short, long)]
    pub quiet: bool,
    /// The image (its name says the registry and repository)
    pub name: String,
}

#[derive(clap::Args, Debug)]
pub struct LoginArgs {
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

/// Global options that take a value, so the default-verb detection can skip them.
const GLOBAL_WITH_VALUE: &[&str] = &["--root", "--insecure-registry", "--pull-timeout", "--pull-min-rate"];

/// `rbuild -t app .` means `rbuild build -t app .`: when the first word after the global
/// options is not a subcommand (or help/version), `build` is inserted there.
pub fn with_default_verb(mut args: Vec<OsString>) -> Vec<OsString> {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let names: Vec<String> = cmd
        .get_subcommands()
        .flat_map(|s| std::iter::once(s.get_name().to_string()).chain(s.get_all_aliases().map(String::from)))
        .chain(["help".to_string()])
        .collect();
    let mut i = 1;
    while i < args.len() {
        let a = args[i].to_string_lossy().to_string();
        if GLOBAL_WITH_VALUE.contains(&a.as_str()) {
            i += 2;
            continue;
        }
        if GLOBAL_WITH_VALUE.iter().any(|g| a.starts_with(&format!("{g}="))) {
            i += 1;
            continue;
        }
        if matches!(a.as_str(), "-h" | "--help" | "-V" | "--version") || names.contains(&a) {
            return args;
        }
        break;
    }
    if i < args.len() && names.iter().any(|n| n == "build") {
        args.insert(i, OsString::from("build"));
    }
    args
}

/// `250ms`, `90s`, `30m`, `2h`, or seconds.
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit() && c != '.').map_or((s, ""), |i| s.split_at(i));
    let v: f64 = num.parse().map_err(|_| format!("invalid duration {s:?} (e.g. 90s, 30m, 2h)"))?;
    let secs = match unit {
        "" | "s" => v,
        "ms" => v / 1000.0,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => return Err(format!("invalid duration {s:?} (e.g. 90s, 30m, 2h)")),
    };
    std::time::Duration::try_from_secs_f64(secs).map_err(|_| format!("invalid duration {s:?}"))
}

/// Bytes, with an optional `k` (KiB) or `m` (MiB).
fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let (num, mult) = match t.strip_suffix('k') {
        Some(n) => (n, 1024),
        None => match t.strip_suffix('m') {
            Some(n) => (n, 1 << 20),
            None => (t.as_str(), 1),
        },
    };
    num.trim().parse::<u64>().map(|n| n.saturating_mul(mult)).map_err(|_| format!("invalid rate {s:?} (e.g. 1k, 512)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_rates() {
        assert_eq!(parse_duration("90s"), Ok(std::time::Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(std::time::Duration::from_secs(7200)));
        assert_eq!(parse_duration("1.5"), Ok(std::time::Duration::from_millis(1500)));
        assert_eq!(parse_duration("250ms"), Ok(std::time::Duration::from_millis(250)));
        assert!(parse_duration("soon").is_err() && parse_duration("5d").is_err());
        assert_eq!(parse_rate("1k"), Ok(1024));
        assert_eq!(parse_rate("2M"), Ok(2 << 20));
        assert_eq!(parse_rate("0"), Ok(0));
        assert!(parse_rate("fast").is_err());
    }
}
