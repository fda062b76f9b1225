//! One module per verb family; `run` dispatches. Management groups (`container ls`,
//! `image rm`, …) are the same code as the top-level verbs.

mod archive;
mod build;
mod build_opts;
mod cacheexport;
mod check;
mod containers;
mod ctrinspect;
mod events;
mod filters;
mod format;
mod images;
mod lifecycle;
mod maint;
mod mountopts;
pub mod networks;
mod options;
mod output;
mod parse;
mod prune;
pub mod registry;
mod runopts;
mod stats;
mod system;
mod timeopts;
pub mod util;
mod volumes;

use crate::cli::{BuilderCmd, Cli, Command, ContainerCmd, ImageCmd, SystemCmd, VolumeCmd};
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

/// Appends an event to the store's journal; a journal that cannot be written does not
/// fail the command that did the work.
pub fn event(store: &rbuild_store::Store, typ: &str, action: &str, id: &str, attrs: &[(&str, &str)]) {
    let _ = store.append_event(&rbuild_store::Event::now(typ, action, id, attrs));
}

/// The top-level verb a management-group command stands for, or the group command when
/// only the group has it.
fn flatten(c: Command) -> Command {
    match c {
        Command::Container(c) => match c {
            ContainerCmd::Ls(a) => Command::Ps(a),
            ContainerCmd::Run(a) => Command::Run(a),
            ContainerCmd::Create(a) => Command::Create(a),
            ContainerCmd::Start(a) => Command::Start(a),
            ContainerCmd::Stop(a) => Command::Stop(a),
            ContainerCmd::Restart(a) => Command::Restart(a),
            ContainerCmd::Kill(a) => Command::Kill(a),
            ContainerCmd::Rm(a) => Command::Rm(a),
            ContainerCmd::Inspect(a) => Command::Inspect(a.typed("container")),
            ContainerCmd::Logs(a) => Command::Logs(a),
            ContainerCmd::Exec(a) => Command::Exec(a),
            ContainerCmd::Cp { source, dest } => Command::Cp { source, dest },
            ContainerCmd::Commit(a) => Command::Commit(a),
            ContainerCmd::Diff { container } => Command::Diff { container },
            ContainerCmd::Export(a) => Command::Export(a),
            ContainerCmd::Wait(a) => Command::Wait(a),
            ContainerCmd::Top(a) => Command::Top(a),
            ContainerCmd::Pause(a) => Command::Pause(a),
            ContainerCmd::Unpause(a) => Command::Unpause(a),
            ContainerCmd::Rename { container, name } => Command::Rename { container, name },
            ContainerCmd::Port(a) => Command::Port(a),
            ContainerCmd::Attach(a) => Command::Attach(a),
            ContainerCmd::Stats(a) => Command::Stats(a),
            ContainerCmd::Update(a) => Command::Update(a),
            c @ ContainerCmd::Prune(_) => Command::Container(c),
        },
        Command::Image(c) => match c {
            ImageCmd::Ls(a) => Command::Images(a),
            ImageCmd::Build(a) => Command::Build(a),
            ImageCmd::Rm(a) => Command::Rmi(a),
            ImageCmd::Inspect(a) => Command::Inspect(a.typed("image")),
            ImageCmd::History(a) => Command::History(a),
            ImageCmd::Tag { source, target } => Command::Tag { source, target },
            ImageCmd::Save(a) => Command::Save(a),
            ImageCmd::Load(a) => Command::Load(a),
            ImageCmd::Import(a) => Command::Import(a),
            ImageCmd::Pull(a) => Command::Pull(a),
            ImageCmd::Push(a) => Command::Push(a),
            c @ ImageCmd::Prune(_) => Command::Image(c),
        },
        Command::Volume(VolumeCmd::Inspect(a)) => Command::Inspect(a.typed("volume")),
        Command::Builder(BuilderCmd::Build(a)) => Command::Build(a),
        Command::System(SystemCmd::Events(a)) => Command::Events(a),
        Command::System(SystemCmd::Info(a)) => Command::Info(a),
        other => other,
    }
}

/// Errors of these verbs exit 125 as docker's do (an error of rbuild, not of the
/// container); the container's own exit codes (126, 127, its status) pass through.
fn with_code(code: u8, r: anyhow::Result<ExitCode>) -> anyhow::Result<ExitCode> {
    r.map_err(|e| match e.downcast::<Reported>() {
        Ok(r) => r.into(),
        Err(e)
            if e.downcast_ref::<rbuild_runtime::RuntimeError>()
                .is_some_and(|r| matches!(r, rbuild_runtime::RuntimeError::ExecFailed { .. })) =>
        {
            e
        }
        Err(e) => Reported { message: render_error(&e), code }.into(),
    })
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let ropts = registry::client_options(&cli.insecure_registry, cli.pull_timeout, cli.pull_min_rate);
    let root = &cli.root;
    match flatten(cli.command) {
        Command::Build(a) => build::run(&open_store(root)?, &ropts, a),
        Command::Pull(a) => registry::pull(&open_store(root)?, &ropts, a),
        Command::Push(a) => registry::push(&open_store(root)?, &ropts, a),
        Command::Search(a) => registry::search(&ropts, a),
        Command::Login(a) => registry::login(&ropts, a),
        Command::Logout { registry: r } => registry::logout(&ropts, r.as_deref().unwrap_or("docker.io")),
        Command::Parse(a) => parse::run(a),
        Command::Check(a) => check::run(open_store(root).ok().as_ref(), a),
        Command::Images(a) => images::images(&open_store(root)?, a),
        Command::Tag { source, target } => images::tag(&open_store(root)?, &source, &target),
        Command::Rmi(a) => images::rmi(&open_store(root)?, a),
        Command::Inspect(a) => format::inspect(&open_store(root)?, a),
        Command::History(a) => images::history(&open_store(root)?, a),
        Command::Save(a) => archive::save(&open_store(root)?, a),
        Command::Load(a) => archive::load(&open_store(root)?, a),
        Command::Import(a) => archive::import(&open_store(root)?, a),
        Command::Prune(a) => maint::prune(&open_store(root)?, a),
        Command::Fsck(a) => maint::fsck(&open_store(root)?, a),
        Command::Run(a) => with_code(
            125,
            (|| {
                let store = open_store(root)?;
                registry::ensure_image(&store, &ropts, &a.image)?;
                lifecycle::run(&store, a)
            })(),
        ),
        Command::Create(a) => with_code(
            125,
            (|| {
                let store = open_store(root)?;
                registry::ensure_image(&store, &ropts, &a.image)?;
                lifecycle::create(&store, a)
            })(),
        ),
        Command::Start(a) => lifecycle::start(&open_store(root)?, a),
        Command::Ps(a) => containers::ps(&open_store(root)?, a),
        Command::Logs(a) => containers::logs(&open_store(root)?, a),
        Command::Stop(a) => lifecycle::stop(&open_store(root)?, a),
        Command::Kill(a) => lifecycle::kill(&open_store(root)?, a),
        Command::Restart(a) => lifecycle::restart(&open_store(root)?, a),
        Command::Rm(a) => lifecycle::rm(&open_store(root)?, a),
        Command::Exec(a) => containers::exec_cmd(&open_store(root)?, a),
        Command::Wait(a) => containers::wait(&open_store(root)?, &a.containers),
        Command::Top(a) => containers::top(&open_store(root)?, a),
        Command::Pause(a) => containers::pause(&open_store(root)?, &a.containers, true),
        Command::Unpause(a) => containers::pause(&open_store(root)?, &a.containers, false),
        Command::Cp { source, dest } => containers::cp(&open_store(root)?, &source, &dest),
        Command::Diff { container } => containers::diff(&open_store(root)?, &container),
        Command::Commit(a) => containers::commit(&open_store(root)?, a),
        Command::Export(a) => containers::export(&open_store(root)?, a),
        Command::Rename { container, name } => containers::rename(&open_store(root)?, &container, &name),
        Command::Port(a) => containers::port(&open_store(root)?, a),
        Command::Attach(a) => lifecycle::attach(&open_store(root)?, a),
        Command::Stats(a) => stats::stats(&open_store(root)?, a),
        Command::Update(a) => lifecycle::update(&open_store(root)?, a),
        Command::Version(a) => system::version(root, a),
        Command::Info(a) => system::info(&open_store(root)?, a),
        Command::Events(a) => events::events(&open_store(root)?, a),
        Command::Container(ContainerCmd::Prune(a)) => prune::container_prune(&open_store(root)?, a),
        Command::Image(ImageCmd::Prune(a)) => prune::image_prune(&open_store(root)?, a),
        Command::Volume(c) => volumes::run(&open_store(root)?, c),
        Command::Network(c) => networks::run(&open_store(root)?, c),
        Command::Builder(BuilderCmd::Prune(a)) => prune::builder_prune(&open_store(root)?, a),
        Command::System(SystemCmd::Df(a)) => system::df(&open_store(root)?, a),
        Command::System(SystemCmd::Prune(a)) => prune::system_prune(&open_store(root)?, a),
        Command::System(SystemCmd::Boot) => lifecycle::boot(&open_store(root)?),
        Command::Container(_) | Command::Image(_) | Command::Builder(_) | Command::System(_) => {
            unreachable!("flatten maps every other group command to its verb")
        }
        Command::NetnsTeardown => {
            rbuild_runtime::network::namespace::Host::for_store(&open_store(root)?.state_dir()).teardown()?;
            Ok(ExitCode::SUCCESS)
        }
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
    if let Some(rbuild_runtime::RuntimeError::ExecFailed { code, .. }) = e.downcast_ref() {
        return (*code).clamp(0, 255) as u8;
    }
    e.downcast_ref::<Reported>().map_or(1, |r| r.code)
}
