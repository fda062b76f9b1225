//! The build commands' arguments (build, check, parse, builder prune): clap structs only,
//! the raw flags `commands/build.rs` and `commands/build_opts.rs` turn into a `Builder`.

use clap::ValueEnum;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct BuilderPruneArgs {
    /// Remove the whole build cache (rbuild keeps no cache an image still needs either way)
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Filter (until=)
    #[arg(long = "filter")]
    pub filter: Vec<String>,
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
    /// Network of RUN steps (default: a namespace of each step's own, with outbound access)
    #[arg(long, value_enum, default_value = "default")]
    pub network: BuildNetwork,
    /// Progress output
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressMode,
    /// Security options of RUN steps: no-new-privileges[=true|false]
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opt: Vec<String>,
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
    /// Remove intermediate containers after a successful build (docker's default; rbuild
    /// keeps no step containers either way, so `--rm=false` leaves none behind)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_value_t = true,
          default_missing_value = "true",
          action = clap::ArgAction::Set)]
    pub rm: bool,
    /// Always remove intermediate containers (rbuild keeps none, also after a failure)
    #[arg(long)]
    pub force_rm: bool,
    /// Where the result goes (default: the store, under the -t names):
    /// type=local,dest=DIR (or just DIR), type=tar,dest=FILE (`-`: stdout),
    /// type=oci|docker,dest=FILE[,tar=false][,compression=gzip|zstd|uncompressed],
    /// type=image[,name=NAME][,push=true], type=registry
    #[arg(short = 'o', long = "output", value_name = "SPEC")]
    pub outputs: Vec<String>,
    /// Write the build's result (image digest, config digest, names) to this file as JSON
    #[arg(long = "metadata-file", value_name = "FILE")]
    pub metadata_file: Option<PathBuf>,
    /// Run BuildKit's build checks and print what they find instead of building
    #[arg(long)]
    pub check: bool,
    /// Add a line to every RUN step's /etc/hosts
    #[arg(long = "add-host", value_name = "NAME:IP")]
    pub add_host: Vec<String>,
    /// A secret for RUN --mount=type=secret: id=ID,src=FILE or id=ID,env=VAR
    #[arg(long = "secret", value_name = "SPEC")]
    pub secrets: Vec<String>,
    /// An ssh agent for RUN --mount=type=ssh: default or ID[=SOCKET|KEY[,KEY…]]
    #[arg(long = "ssh", value_name = "SPEC")]
    pub ssh: Vec<String>,
    /// A named build context: NAME=DIR, NAME=docker-image://REF or NAME=oci-layout://PATH
    #[arg(long = "build-context", value_name = "NAME=VALUE")]
    pub build_contexts: Vec<String>,
    /// The target platform (linux/amd64 only)
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Let RUN steps ask for more: network.host (RUN --network=host), security.insecure
    /// (RUN --security=insecure)
    #[arg(long = "allow", value_name = "ENTITLEMENT")]
    pub allow: Vec<String>,
    /// For each step that misses the cache, say which input changed since the last build
    /// of this Dockerfile, context and target (the instruction, a build arg, the
    /// environment, context files, the base)
    #[arg(long)]
    pub explain_cache: bool,
    /// The build context: a directory, or `-` for a tar (or a Dockerfile) on stdin
    pub context: String,
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// The Dockerfile (default CONTEXT/Dockerfile); `-` reads standard input
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<String>,
    /// Build-time variables (BUILDKIT_DOCKERFILE_CHECK replaces the file's check directive)
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// Check what a build of this stage runs (default: every stage)
    #[arg(long)]
    pub target: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: CheckFormat,
    /// The build context (its .dockerignore is checked against COPY and ADD)
    #[arg(default_value = ".")]
    pub context: String,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum CheckFormat {
    /// As `docker build --check` prints it
    Text,
    /// BuildKit's lint result as JSON
    Json,
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
