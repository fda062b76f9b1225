//! Command-line arguments.

use clap::{Parser, Subcommand};

mod build;
mod containers;
mod images;
mod objects;
pub use build::*;
pub use containers::*;
pub use images::*;
pub use objects::*;
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

/// Every subcommand enum here is `defer`red: a verb's arguments are made only when that
/// verb is the one parsed (or its help shown), not the ~50 verbs' every start — 1.1 ms of
/// the 6 ms a cached 50-step build took. Names, about lines and aliases stay eager, so
/// the top-level help, the default verb and the suggestions see them.
#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum Command {
    /// Build an image from a Dockerfile (the default verb: `rbuild -t app .`)
    Build(BuildArgs),
    /// Parse a Dockerfile and print its syntax tree or its stage graph
    Parse(ParseArgs),
    /// Check a Dockerfile against BuildKit's build checks, without building
    Check(CheckArgs),
    /// List images
    Images(ImagesArgs),
    /// Give an image another name
    Tag { source: String, target: String },
    /// Remove images (names; the image goes with its last name)
    Rmi(RmiArgs),
    /// Show images, containers or volumes as JSON
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
    /// List a registry's repositories (registries that serve /v2/_catalog)
    Search(SearchArgs),
    /// Store credentials for a registry (in docker's config.json or its credential helper)
    Login(LoginArgs),
    /// Forget the credentials for a registry
    Logout { registry: Option<String> },
    /// Create and run a new container from an image
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
    Wait(ContainersArgs),
    /// Show a container's processes (`ps` options after the name, default -ef)
    Top(TopArgs),
    /// Freeze a container's processes
    Pause(ContainersArgs),
    /// Thaw a container's processes
    Unpause(ContainersArgs),
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
    /// Show a container's published ports (or where one private port is published)
    Port(PortArgs),
    /// Attach this terminal to a running container (detach with Ctrl-P Ctrl-Q)
    Attach(AttachArgs),
    /// Show containers' CPU, memory, PIDs, block and network I/O, live
    Stats(StatsArgs),
    /// Change containers' limits and restart policy
    Update(UpdateArgs),
    /// Show the rbuild version
    Version(FormatArgs),
    /// Show the store, containers, kernel and runtime features
    Info(FormatArgs),
    /// Show what happens to containers, images and volumes
    Events(EventsArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCmd),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCmd),
    /// Manage volumes
    #[command(subcommand)]
    Volume(VolumeCmd),
    /// Manage the build cache
    #[command(subcommand)]
    Builder(BuilderCmd),
    /// Manage rbuild (disk usage, prune, events, info)
    #[command(subcommand)]
    System(SystemCmd),
    /// Manage networks
    #[command(subcommand)]
    Network(NetworkCmd),
    /// Remove the store's network namespace (and its pasta), e.g. before removing a store
    #[command(name = "__netns-teardown", hide = true)]
    NetnsTeardown,
    #[command(name = "__shim", hide = true)]
    Shim { args: Vec<String> },
}

/// `rbuild container …`: the same code as the top-level verbs.
#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum ContainerCmd {
    /// List containers
    #[command(visible_aliases = ["ps", "list"])]
    Ls(PsArgs),
    /// Create and run a new container from an image
    Run(RunArgs),
    /// Create a container without starting it
    Create(RunArgs),
    /// Start stopped containers
    Start(StartArgs),
    /// Stop containers
    Stop(StopArgs),
    /// Stop and start containers again
    Restart(StopArgs),
    /// Send a signal to containers
    Kill(KillArgs),
    /// Remove containers
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Show containers as JSON
    Inspect(ObjectInspectArgs),
    /// Show a container's output
    Logs(LogsArgs),
    /// Run a command in a running container
    Exec(ExecArgs),
    /// Copy files between a container and the host
    Cp { source: String, dest: String },
    /// Make an image from a container's changes
    Commit(CommitArgs),
    /// Show what changed in a container's filesystem
    Diff { container: String },
    /// Write a container's filesystem as a tar
    Export(ExportArgs),
    /// Wait for containers to stop and print their exit codes
    Wait(ContainersArgs),
    /// Show a container's processes
    Top(TopArgs),
    /// Freeze a container's processes
    Pause(ContainersArgs),
    /// Thaw a container's processes
    Unpause(ContainersArgs),
    /// Rename a container
    Rename { container: String, name: String },
    /// Show a container's published ports
    Port(PortArgs),
    /// Attach this terminal to a running container
    Attach(AttachArgs),
    /// Show containers' resource usage
    Stats(StatsArgs),
    /// Change containers' limits and restart policy
    Update(UpdateArgs),
    /// Remove all stopped containers
    Prune(PruneFilterArgs),
}

/// `rbuild image …`
#[derive(Subcommand, Debug)]
#[command(defer = true)]
// Parsed once per process: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum ImageCmd {
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Build an image from a Dockerfile
    Build(BuildArgs),
    /// Remove images
    #[command(visible_alias = "remove")]
    Rm(RmiArgs),
    /// Show images as JSON
    Inspect(ObjectInspectArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Give an image another name
    Tag { source: String, target: String },
    /// Write images to an archive
    Save(SaveArgs),
    /// Load images from an archive
    Load(LoadArgs),
    /// Make a one-layer image from a rootfs tarball
    Import(ImportArgs),
    /// Remove unused images (dangling ones; all unused with -a)
    Prune(ImagePruneArgs),
    /// Fetch an image from a registry
    Pull(PullArgs),
    /// Send an image to its registry
    Push(PushArgs),
}

/// `rbuild volume …`
#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum VolumeCmd {
    /// Create a volume
    Create(VolumeCreateArgs),
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(VolumeLsArgs),
    /// Show volumes as JSON
    Inspect(ObjectInspectArgs),
    /// Remove volumes (refused while a container uses one)
    #[command(visible_alias = "remove")]
    Rm(VolumeRmArgs),
    /// Remove unused volumes (anonymous ones; all unused with -a)
    Prune(VolumePruneArgs),
}

/// `rbuild network …`
#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum NetworkCmd {
    /// Create a network
    Create(NetworkCreateArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(NetworkLsArgs),
    /// Show networks as JSON
    Inspect(ObjectInspectArgs),
    /// Connect a running container to a network
    Connect(NetworkConnectArgs),
    /// Disconnect a container from a network
    Disconnect(NetworkDisconnectArgs),
    /// Remove networks (refused while containers are attached)
    #[command(visible_alias = "remove")]
    Rm(NetworkRmArgs),
    /// Remove every user-defined network no running container uses
    Prune(NetworkPruneArgs),
}

/// `rbuild builder …`
#[derive(Subcommand, Debug)]
#[command(defer = true)]
// Parsed once per process: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum BuilderCmd {
    /// Build an image from a Dockerfile
    Build(BuildArgs),
    /// Remove the build cache
    Prune(BuilderPruneArgs),
}

/// `rbuild system …`
#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum SystemCmd {
    /// Show disk usage of images, containers, volumes and the build cache
    Df(DfArgs),
    /// Remove stopped containers, dangling images and the unused build cache
    Prune(SystemPruneArgs),
    /// Show what happens to containers, images and volumes
    Events(EventsArgs),
    /// Show the store, containers, kernel and runtime features
    Info(FormatArgs),
    /// Start the containers a reboot stopped whose restart policy asks for it (what
    /// dockerd does when it starts; run it at boot)
    Boot,
}

/// Global options that take a value, so the default-verb detection can skip them.
const GLOBAL_WITH_VALUE: &[&str] = &["--root", "--insecure-registry", "--pull-timeout", "--pull-min-rate"];

/// Docker commands rbuild does not have yet (README: the docker command map).
pub const COMING: &[&str] = &["checkpoint", "plugin"];

/// The first word after the global options was not a command and does not look like a
/// build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCommand {
    pub word: String,
    /// Commands within two edits of the word, or starting with it (as cobra suggests).
    pub suggestions: Vec<String>,
}

impl std::fmt::Display for UnknownCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if COMING.contains(&self.word.as_str()) {
            return write!(
                f,
                "rbuild: '{}' is a docker command rbuild does not have yet.\nSee 'rbuild --help'",
                self.word
            );
        }
        write!(f, "rbuild: '{}' is not a rbuild command.", self.word)?;
        if !self.suggestions.is_empty() {
            write!(f, "\n\nDid you mean this?\n")?;
            for s in &self.suggestions {
                writeln!(f, "\t{s}")?;
            }
        }
        write!(f, "\nSee 'rbuild --help'")
    }
}

/// Does `a` name a build context rather than a command: `.`, `..`, `-` (stdin), a path
/// (`./x`, `../x`, `/x`, `~/x`, anything with a `/`), a URL, or an existing directory?
fn looks_like_context(a: &str) -> bool {
    a == "."
        || a == ".."
        || a == "-"
        || a.contains('/')
        || a.contains("://")
        || a.starts_with("git@")
        || std::path::Path::new(a).is_dir()
}

/// `rbuild -t app .` means `rbuild build -t app .`: when the first word after the global
/// options is an option or a build context, `build` is inserted there. Any other word that
/// is not a command is an unknown command (with a suggestion), never a context.
pub fn with_default_verb(mut args: Vec<OsString>) -> Result<Vec<OsString>, UnknownCommand> {
    use clap::CommandFactory;
    let cmd = Cli::command();
    // Hidden commands (`__shim`, `__netns-teardown`) are commands too.
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
        if matches!(a.as_str(), "-h" | "--help" | "-V" | "--version" | "-v") || names.contains(&a) {
            return Ok(args);
        }
        break;
    }
    let Some(word) = args.get(i).map(|a| a.to_string_lossy().to_string()) else { return Ok(args) };
    if !(word.starts_with('-') || looks_like_context(&word)) {
        let mut close: Vec<(usize, String)> = names
            .iter()
            .filter(|n| !n.starts_with('_') && *n != "help")
            .map(|n| (rbuild_parser::diagnostic::edit_distance(&word, n), n.clone()))
            .filter(|(d, n)| *d <= 2 || n.starts_with(&word))
            .collect();
        close.sort();
        close.dedup();
        return Err(UnknownCommand { word, suggestions: close.into_iter().map(|(_, n)| n).collect() });
    }
    args.insert(i, OsString::from("build"));
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[test]
    fn every_command_passes_clap_checks() {
        // Deferred subcommands are only checked when built: build them all here.
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn only_contexts_and_options_mean_build() {
        assert_eq!(with_default_verb(v(&["rbuild", "-t", "x", "."])).unwrap(), v(&["rbuild", "build", "-t", "x", "."]));
        assert_eq!(with_default_verb(v(&["rbuild", "."])).unwrap(), v(&["rbuild", "build", "."]));
        assert_eq!(with_default_verb(v(&["rbuild", "./ctx"])).unwrap(), v(&["rbuild", "build", "./ctx"]));
        assert_eq!(with_default_verb(v(&["rbuild", "-"])).unwrap(), v(&["rbuild", "build", "-"]));
        assert_eq!(
            with_default_verb(v(&["rbuild", "--root", "/r", "/x"])).unwrap(),
            v(&["rbuild", "--root", "/r", "build", "/x"])
        );
        assert_eq!(with_default_verb(v(&["rbuild", "images"])).unwrap(), v(&["rbuild", "images"]));
        assert_eq!(with_default_verb(v(&["rbuild", "version"])).unwrap(), v(&["rbuild", "version"]));
        assert_eq!(with_default_verb(v(&["rbuild", "container", "ls"])).unwrap(), v(&["rbuild", "container", "ls"]));
        let e = with_default_verb(v(&["rbuild", "imagez"])).unwrap_err();
        assert_eq!(e.suggestions, ["image", "images"]);
        assert!(e.to_string().contains("'imagez' is not a rbuild command"), "{e}");
        let e = with_default_verb(v(&["rbuild", "checkpoint", "x"])).unwrap_err();
        assert!(e.to_string().contains("does not have yet"), "{e}");
        assert_eq!(with_default_verb(v(&["rbuild", "attach", "x"])).unwrap(), v(&["rbuild", "attach", "x"]));
        assert!(with_default_verb(v(&["rbuild", "frobnicate"])).unwrap_err().suggestions.is_empty());
    }
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
mod rate_tests {
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
