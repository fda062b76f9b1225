//! The `rbuild` command: docker-style verbs over the rbuild libraries.
//!
//! This crate is glue: argument parsing, progress output and error reporting. The work
//! happens in `rbuild-parser`, `rbuild-store`, `rbuild-runtime`, `rbuild-builder` and
//! `rbuild-registry`.

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

use std::process::ExitCode;

fn main() -> ExitCode {
    // The shim is this binary too; it starts before anything else (no threads, no clap).
    if let Some(code) = rbuild_runtime::shim::dispatch_if_shim() {
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    let args = cli::with_default_verb(std::env::args_os().collect());
    let cli = match <cli::Cli as clap::Parser>::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
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
