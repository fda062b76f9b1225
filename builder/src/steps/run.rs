//! RUN: the command in the sandbox on the stage's layers, with its mounts.

use crate::build::{Ctx, FResult};
use crate::builder::{Entitlement, Event, Failure};
use crate::cache_key::{KeyBuilder, KeyKind};
use crate::error::{BuildError, Result};
use crate::meta;
use crate::stage::State;
use crate::steps::mounts::{mount_key, Opened, Planned};
use crate::steps::{stubs, workdir_removed, Tail};
use rbuild_parser::graph::PROXY_ARGS;
use rbuild_parser::instruction::{CommandLine, Instruction, NetworkMode, Run, Script, Security};
use rbuild_runtime::step::{run_step, StepDir, StepRequest};
use rbuild_runtime::{Limits, Mount as RtMount, MountKind, Network, SecurityOptions};
use rbuild_store::LayerRef;
use std::path::PathBuf;

/// A RUN step before its cache key: what it runs, in which environment, on which network
/// and with which privileges.
struct Prepared {
    cl: CommandLine,
    argv: Vec<String>,
    /// A here-document script run as a file: its name and content.
    script_file: Option<(String, String)>,
    env: Vec<String>,
    user: String,
    cwd: String,
    network: Network,
    insecure: bool,
}

/// A RUN step that ran: its exit code and output's last lines, its directory, and what
/// is undone in its upper before the commit.
struct Ran {
    code: i32,
    tail: Tail,
    dir: StepDir,
    lowers: Vec<PathBuf>,
    /// What the mounts needed made in the layer (BuildKit's mount stubs).
    stubs: Vec<Vec<String>>,
    volumes: Vec<String>,
    scratch_volumes: Vec<rbuild_store::TempDir>,
    _script: Option<rbuild_store::TempDir>,
}

impl Ctx<'_> {
    pub(crate) fn run(
        &self,
        st: &mut State,
        run: &Run,
        ins: &Instruction,
        label: &str,
        index: usize,
        total: usize,
    ) -> FResult<()> {
        let text = ins.source.trim();
        let mut p = self.prepare_run(st, run)?;
        let (plans, contents) = self.plan_mounts(st, run)?;
        st.chain(KeyKind::Run, |k| run_key(k, &p, run, &contents));
        self.add_proxy_args(st, &mut p.env);
        let (id, t0) = self.start(label, index, total, text);
        // docker records the command as written, its words joined (`echo hi` for
        // `RUN ["echo", "hi"]`, nothing for `RUN []`).
        let created_by = if p.cl.shell_form {
            format!("{} {}", meta::shell_of(&st.config.config).join(" "), p.cl.args.join(" "))
        } else {
            p.cl.args.join(" ")
        };
        if let Some(layer) = self.cached(st, id) {
            st.history(created_by, layer.is_none());
            return Ok(());
        }
        let ran = self.run_sandboxed(st, p, plans, id)?;
        if ran.code != 0 {
            self.progress.event(Event::Failed { id });
            self.check_cancel()?;
            return Err(Failure {
                error: BuildError::StepFailed { command: ins.source.trim().to_string(), code: ran.code },
                span: Some(ins.span),
                exit_code: Some(ran.code),
                tail: ran.tail.lines(),
            });
        }
        let layer = self.commit_run(st, ran)?;
        st.history(created_by, layer.is_none());
        self.progress.event(Event::Done { id, secs: t0.elapsed().as_secs_f64() });
        Ok(())
    }

    /// The command, environment, network and privileges of `run` (refused when the
    /// build lacks the entitlement they need).
    fn prepare_run(&self, st: &State, run: &Run) -> Result<Prepared> {
        let (cl, argv, script_file) = command(st, run)?;
        let mut env = st.config.config.env.clone();
        env.extend(st.run_args());
        // BuildKit's entitlements: a step's host network or privileges need --allow.
        let network = match run.network {
            Some(NetworkMode::None) => Network::None,
            Some(NetworkMode::Host) => {
                self.entitled(Entitlement::NetworkHost)?;
                Network::Host
            }
            _ => self.opts.network.clone(),
        };
        let insecure = run.security == Some(Security::Insecure);
        if insecure {
            self.entitled(Entitlement::SecurityInsecure)?;
        }
        let user = st.config.config.user.clone();
        let cwd = st.config.config.working_dir.clone();
        Ok(Prepared { cl, argv, script_file, env, user, cwd, network, insecure })
    }

    /// The predefined proxy args given with --build-arg reach every RUN, declared or not,
    /// unless the Env sets them; undeclared, they are not part of the step's key (nor of
    /// docker's history line): a new proxy does not rebuild (buildargs.go, FilterAllowed
    /// and IsReferencedOrNotBuiltin).
    fn add_proxy_args(&self, st: &State, env: &mut Vec<String>) {
        for (k, v) in &self.opts.build_args {
            if PROXY_ARGS.contains(&k.as_str()) && !st.args.contains_key(k) && !st.env.assigns(k) {
                env.push(format!("{k}={v}"));
            }
        }
    }

    /// Runs the step in the sandbox on the stage's layers, with its mounts, script and
    /// volumes.
    fn run_sandboxed(&self, st: &State, p: Prepared, plans: Vec<Planned>, id: usize) -> Result<Ran> {
        let Prepared { argv, script_file, mut env, user, cwd, network, insecure, .. } = p;
        let lowers = self.lowers(&st.layers)?;
        let opened = self.open_mounts(plans, id)?;
        // What the mounts need made in the layer, to be removed afterwards (BuildKit's
        // mount stubs).
        let stubs: Vec<Vec<String>> =
            opened.targets().iter().filter(|t| !t.is_empty()).flat_map(|t| stubs::missing(&lowers, t)).collect();
        env.extend(opened.env.iter().cloned());
        let mut extra = Vec::new();
        let script = match &script_file {
            Some((name, content)) => Some(self.script_mount(name, content, &mut extra)?),
            None => None,
        };
        let volumes: Vec<String> = st.config.config.volumes.keys().cloned().collect();
        let scratch_volumes = self.new_volumes(&lowers, &volumes, &mut extra)?;
        let req = StepRequest {
            lowers,
            args: argv,
            env,
            cwd,
            user,
            network,
            mounts: vec![],
            security: SecurityOptions {
                privileged: insecure || self.opts.security.privileged,
                ..self.opts.security.clone()
            },
            extra_hosts: self.opts.extra_hosts.clone(),
            limits: Limits::default(),
            cancel: Some(self.opts.cancel.clone()),
            run_follows: self.run_follows(st.stage, st.current.0),
        };
        let mut tail = Tail::default();
        let (code, dir) = self.run_with_mounts(req.clone(), &opened, extra, id, &mut tail)?;
        drop(opened);
        Ok(Ran { code, tail, dir, lowers: req.lowers, stubs, volumes, scratch_volumes, _script: script })
    }

    /// Commits what a successful step wrote: its mount stubs removed, what it wrote in
    /// volumes settled, whether it removed the working directory noted.
    fn commit_run(&self, st: &mut State, ran: Ran) -> FResult<Option<LayerRef>> {
        stubs::remove(&ran.dir.upper(), &ran.lowers, &ran.stubs);
        self.check_cancel()?;
        drop(ran.scratch_volumes);
        if !ran.volumes.is_empty() {
            crate::volume::settle(&ran.dir.upper(), &ran.lowers, &ran.volumes)?;
        }
        st.workdir_gone = workdir_removed(&ran.dir.upper(), &st.config.config.working_dir);
        let layer = self.commit_dir(st, &ran.dir.upper())?;
        drop(ran.dir);
        Ok(layer)
    }
}

/// The parts of a RUN step's cache key: the command, environment, user, working
/// directory, network, mounts (with what they show), script and privileges.
fn run_key(k: &mut KeyBuilder, p: &Prepared, run: &Run, contents: &[String]) {
    k.part("the command").texts(&p.argv);
    k.part("the environment and build args").texts(&p.env);
    for e in &p.env {
        let (name, value) = e.split_once('=').unwrap_or((e, ""));
        k.item(name, &crate::explain::short_digest(value.as_bytes()));
    }
    k.part("the user").text(&p.user);
    k.part("the working directory").text(&p.cwd);
    k.part("the network");
    network_key(k, &p.network);
    k.part("the mounts").num(run.mounts.len() as u64);
    for (m, content) in run.mounts.iter().zip(contents) {
        mount_key(k, m, content);
    }
    k.opt_text(p.script_file.as_ref().map(|(_, c)| c.as_str())).flag(p.insecure);
}

/// What a RUN runs: the command line (here-documents assembled by the parser; a script
/// with a `#!` line is a file the shell runs, at /dev/pipes/NAME as BuildKit puts it),
/// the argv, and that script file (name, content).
#[allow(clippy::type_complexity)]
fn command(st: &State, run: &Run) -> Result<(CommandLine, Vec<String>, Option<(String, String)>)> {
    let mut cl = run.cmd.clone();
    let mut script_file = None;
    match &run.script {
        Some(Script::Shell(s)) => cl.args = vec![s.clone()],
        Some(Script::File { name, content }) => {
            cl.args = vec![format!("/dev/pipes/{name}")];
            script_file = Some((name.clone(), content.clone()));
        }
        None => {}
    }
    let mut argv = meta::resolve_cmdline(&cl, &st.config.config);
    if argv.is_empty() {
        // `RUN []`: docker creates the step's container with an empty Cmd and the
        // image's Entrypoint kept, so the container runs the Entrypoint alone, or, with
        // none, the image's Cmd (the daemon's config merge) — users rely on it to run
        // an image's own command at build time.
        let c = &st.config.config;
        argv = match (&c.entrypoint, &c.cmd) {
            (Some(ep), _) if !ep.is_empty() => ep.clone(),
            (_, Some(cmd)) => cmd.clone(),
            _ => vec![],
        };
        if argv.is_empty() {
            return Err(BuildError::NoCommand);
        }
    }
    Ok((cl, argv, script_file))
}

/// A RUN step's network, in its cache key.
fn network_key(k: &mut KeyBuilder, n: &Network) {
    match n {
        Network::None => {
            k.text("none");
        }
        Network::Host => {
            k.text("host");
        }
        Network::Bridge(nets) => {
            k.text("bridge").num(nets.len() as u64);
            for r in nets {
                k.text(&r.network).texts(&r.aliases).flag(r.isolated).opt_text(r.ip.map(|a| a.to_string()).as_deref());
            }
        }
        Network::Container(id) => {
            k.text("container").text(id);
        }
    }
}

impl Ctx<'_> {
    /// Refuses what the build was not allowed to do.
    fn entitled(&self, e: Entitlement) -> Result<()> {
        if self.opts.allow.contains(&e) {
            return Ok(());
        }
        Err(BuildError::NotAllowed(e.name()))
    }

    /// A VOLUME that no layer has is a fresh, empty volume in docker's RUN: runc makes
    /// its mountpoint in the step's layer, and what the step writes there is gone
    /// afterwards (an empty directory is mounted there). Volumes over existing
    /// directories start with the image's content there; the step runs on that and its
    /// writes leave the upper afterwards (`volume::settle`).
    fn new_volumes(
        &self,
        lowers: &[PathBuf],
        volumes: &[String],
        mounts: &mut Vec<RtMount>,
    ) -> Result<Vec<rbuild_store::TempDir>> {
        let mut scratch = Vec::new();
        for v in volumes.iter().filter(|v| crate::volume::is_new(lowers, v)) {
            let d = self.store.temp_guard("volume")?;
            rustix::fs::chmod(d.path(), rustix::fs::Mode::from_raw_mode(0o755))
                .map_err(BuildError::io("creating a volume at", d.path()))?;
            mounts.push(RtMount {
                target: v.clone(),
                kind: MountKind::Bind { source: d.path().into(), readonly: false },
            });
            scratch.push(d);
        }
        Ok(scratch)
    }

    /// Runs the step with its mounts: the views they need mounted around it first.
    fn run_with_mounts(
        &self,
        mut req: StepRequest,
        opened: &Opened,
        extra: Vec<RtMount>,
        id: usize,
        tail: &mut Tail,
    ) -> Result<(i32, StepDir)> {
        let mut output = |b: &[u8]| {
            tail.push(b);
            self.progress.event(Event::Output { id, data: b });
        };
        if opened.views.is_empty() {
            req.mounts = opened.mounts(&[])?;
            req.mounts.extend(extra);
            return Ok(run_step(self.store, &req, &mut output)?);
        }
        rbuild_runtime::with_views(&self.store.tmp_dir(), &opened.views, |roots| -> Result<(i32, StepDir)> {
            req.mounts = opened.mounts(roots)?;
            req.mounts.extend(extra);
            Ok(run_step(self.store, &req, &mut output)?)
        })?
    }

    /// A here-document script as a file mounted at /dev/pipes/NAME (0755, root); the
    /// returned guard keeps it.
    fn script_mount(&self, name: &str, content: &str, mounts: &mut Vec<RtMount>) -> Result<rbuild_store::TempDir> {
        let d = self.store.temp_guard("script")?;
        let path: PathBuf = d.path().join("script");
        std::fs::write(&path, content).map_err(BuildError::io("writing", &path))?;
        rustix::fs::chmod(&path, rustix::fs::Mode::from_raw_mode(0o755)).map_err(BuildError::io("chmod", &path))?;
        mounts.push(RtMount {
            target: format!("/dev/pipes/{name}"),
            kind: MountKind::Bind { source: path, readonly: true },
        });
        Ok(d)
    }
}
