//! One module per verb family; `run` dispatches.

mod archive;
mod images;
mod maint;
mod parse;
pub mod util;

use crate::cli::{Cli, Command};
use util::open_store;
use std::process::ExitCode;

/// A failure whose message is already complete (e.g. a rendered diagnostic).
#[derive(Debug)]
pub struct Reported {
    pub message: String,
    pub code: u8,
}

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}
impl std::error::Error for Reported {}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Parse(a) => parse::run(a),
        Command::Images(a) => images::images(&open_store(&cli.root)?, a),
        Command::Tag { source, target } => images::tag(&open_store(&cli.root)?, &source, &target),
        Command::Rmi(a) => images::rmi(&open_store(&cli.root)?, a),
        Command::Inspect(a) => {
            let store = open_store(&cli.root)?;
            let mut out = Vec::new();
            for n in &a.names {
                out.push(images::inspect_json(&store.image(n)?));
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::History(a) => images::history(&open_store(&cli.root)?, a),
        Command::Save(a) => archive::save(&open_store(&cli.root)?, a),
        Command::Load(a) => archive::load(&open_store(&cli.root)?, a),
        Command::Import(a) => archive::import(&open_store(&cli.root)?, a),
        Command::Prune(a) => maint::prune(&open_store(&cli.root)?, a),
        Command::Fsck => maint::fsck(&open_store(&cli.root)?),
    }
}

/// The error chain on one line (`outer: inner: cause`); a rendered diagnostic as it is.
pub fn render_error(e: &anyhow::Error) -> String {
    if let Some(r) = e.downcast_ref::<Reported>() {
        return r.message.clone();
    }
    let mut parts: Vec<String> = Vec::new();
    for c in e.chain() {
        let s = c.to_string();
        if parts.last().is_some_and(|p| p.contains(&s)) {
            continue;
        }
        parts.push(s);
    }
    parts.join(": ")
}

pub fn exit_code(e: &anyhow::Error) -> u8 {
    e.downcast_ref::<Reported>().map_or(1, |r| r.code)
}
