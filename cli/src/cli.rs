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

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Parse a Dockerfile and print its syntax tree or its stage graph
    Parse(ParseArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ParseFormat {
    /// BuildKit's AST dump
    Buildkit,
    /// The typed stages, instructions with spans, edges and parallel levels
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

/// Global options that take a value, so the default-verb detection can skip them.
const GLOBAL_WITH_VALUE: &[&str] = &["--root"];

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
