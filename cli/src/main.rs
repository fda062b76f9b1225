//! The `rbuild` command: docker-style verbs over the rbuild libraries.
//!
//! This crate is glue: argument parsing, progress output and error reporting. The work
//! happens in `rbuild-parser`, `rbuild-store`, `rbuild-runtime`, `rbuild-builder`,
//! `rbuild-registry` and `rbuild-template`.

/// Writes a line to stdout, returning the error (a closed pipe is one) for `?` to carry
/// to `main`, which takes a closed stdout for success — for every command at once.
/// `println!` panicked there instead (exit 101). (clippy.toml disallows `println!`.)
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// [`outln!`] without the newline.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// A message on stderr; when stderr is closed there is no one to tell (`eprintln!`
/// panicked).
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod cli;
mod commands;
mod help;

use std::process::ExitCode;

fn main() -> ExitCode {
    // Whatever the caller's umask, the directories rbuild makes for sandboxes (an overlay's
    // upper dir is the container's `/`) get the modes docker's daemon gives them: dockerd
    // sets 022 at start. Under 077 a container's `/` was 0700 and every non-root user in
    // it failed to exec anything.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
    // The shim is this binary too; it starts before anything else (no threads, no clap).
    if let Some(code) = rbuild_runtime::shim::dispatch_if_shim() {
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    let raw: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if help::wants_top_level(&raw) {
        let _ = out!("{}", help::top_level());
        return ExitCode::SUCCESS;
    }
    if help::wants_version(&raw) {
        let _ = outln!("rbuild version {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let args = match cli::with_default_verb(raw) {
        Ok(a) => a,
        Err(e) => {
            errln!("{e}");
            return ExitCode::from(1);
        }
    };
    let cli = match <cli::Cli as clap::Parser>::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            // A group without its subcommand (`rbuild container`) shows its help, as
            // docker's does.
            if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                let _ = out!("{}", e.render());
                return ExitCode::SUCCESS;
            }
            let _ = e.print();
            // docker: a usage error is 125 (every command's flags), help and version 0.
            return if e.use_stderr() { ExitCode::from(125) } else { ExitCode::SUCCESS };
        }
    };
    let result = commands::run(cli);
    // What this process held in the store goes now, not at the next prune.
    rbuild_store::lease::release_all();
    match result {
        Ok(code) => code,
        Err(e) => {
            // A closed stdout (`rbuild save | head`) is not an error worth a message.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            errln!("error: {}", commands::render_error(&e));
            ExitCode::from(commands::exit_code(&e))
        }
    }
}
