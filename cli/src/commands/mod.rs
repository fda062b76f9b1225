//! One module per verb family; `run` dispatches.

mod archive;
mod build;
mod containers;
mod images;
mod maint;
mod parse;
pub mod registry;
pub mod util;

use crate::cli::{Cli, Command};
use std::process::ExitCode;
use util::open_store;

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
    let ropts = registry::client_options(&cli.insecure_registry, cli.pull_timeout, cli.pull_min_rate);
    match cli.command {
        Command::Build(a) => build::run(&open_store(&cli.root)?, &ropts, a),
        Command::Pull(a) => registry::pull(&open_store(&cli.root)?, &ropts, a),
        Command::Push(a) => registry::push(&open_store(&cli.root)?, &ropts, a),
        Command::Login(a) => registry::login(&ropts, a),
        Command::Logout { registry: r } => registry::logout(&ropts, &r),
        Command::Parse(a) => parse::run(a),
        Command::Images(a) => images::images(&open_store(&cli.root)?, a),
        Command::Tag { source, target } => images::tag(&open_store(&cli.root)?, &source, &target),
        Command::Rmi(a) => images::rmi(&open_store(&cli.root)?, a),
        Command::Inspect(a) => {
            let store = open_store(&cli.root)?;
            let mut out = Vec::new();
            for n in &a.names {
                let as_container = a.typ.as_deref() != Some("image");
                let as_image = a.typ.as_deref() != Some("container");
                match rbuild_runtime::container::find(&store, n) {
                    Ok(c) if as_container => out.push(containers::inspect_json(&c)),
                    _ if as_image => out.push(images::inspect_json(&store.image(n)?)),
                    _ => anyhow::bail!("no such container: {n}"),
                }
            }
            outln!("{}", serde_json::to_string_pretty(&out)?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::History(a) => images::history(&open_store(&cli.root)?, a),
        Command::Save(a) => archive::save(&open_store(&cli.root)?, a),
        Command::Load(a) => archive::load(&open_store(&cli.root)?, a),
        Command::Import(a) => archive::import(&open_store(&cli.root)?, a),
        Command::Prune(a) => maint::prune(&open_store(&cli.root)?, a),
        Command::Fsck(a) => maint::fsck(&open_store(&cli.root)?, a),
        Command::Run(a) => {
            let store = open_store(&cli.root)?;
            registry::ensure_image(&store, &ropts, &a.image)?;
            containers::run(&store, a)
        }
        Command::Create(a) => {
            let store = open_store(&cli.root)?;
            registry::ensure_image(&store, &ropts, &a.image)?;
            containers::create(&store, a)
        }
        Command::Start(a) => containers::start(&open_store(&cli.root)?, a),
        Command::Ps(a) => containers::ps(&open_store(&cli.root)?, a),
        Command::Logs(a) => containers::logs(&open_store(&cli.root)?, a),
        Command::Stop(a) => containers::stop(&open_store(&cli.root)?, a),
        Command::Kill(a) => containers::kill(&open_store(&cli.root)?, a),
        Command::Restart(a) => containers::restart(&open_store(&cli.root)?, a),
        Command::Rm(a) => containers::rm(&open_store(&cli.root)?, a),
        Command::Exec(a) => containers::exec_cmd(&open_store(&cli.root)?, a),
        Command::Wait { containers: c } => containers::wait(&open_store(&cli.root)?, &c),
        Command::Top { container } => containers::top(&open_store(&cli.root)?, &container),
        Command::Pause { containers: c } => containers::pause(&open_store(&cli.root)?, &c, true),
        Command::Unpause { containers: c } => containers::pause(&open_store(&cli.root)?, &c, false),
        Command::Cp { source, dest } => containers::cp(&open_store(&cli.root)?, &source, &dest),
        Command::Diff { container } => containers::diff(&open_store(&cli.root)?, &container),
        Command::Commit(a) => containers::commit(&open_store(&cli.root)?, a),
        Command::Export(a) => containers::export(&open_store(&cli.root)?, a),
        Command::Rename { container, name } => containers::rename(&open_store(&cli.root)?, &container, &name),
        Command::Port { container } => containers::port(&open_store(&cli.root)?, &container),
        Command::Shim { args } => Ok(ExitCode::from(rbuild_runtime::shim::main(&args).clamp(0, 255) as u8)),
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
