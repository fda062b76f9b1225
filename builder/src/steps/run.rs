//! RUN: the command in the sandbox on the stage's layers, with its mounts.

use crate::build::{Ctx, FResult};
use crate::builder::{Event, Failure};
use crate::cache_key::{KeyBuilder, KeyKind};
use crate::context::{items_digest, Item, Source};
use crate::error::{BuildError, Result};
use crate::meta::{self};
use crate::stage::State;
use crate::steps::{workdir_removed, Tail};
use rbuild_parser::instruction::{Instruction, Mount, MountType, NetworkMode, Run, Sharing};
use rbuild_runtime::step::{run_step, StepRequest};
use rbuild_runtime::{Limits, Mount as RtMount, MountKind, Network};
use sha2::{Digest as _, Sha256};

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
        // Here-documents come assembled by the parser.
        let mut cl = run.cmd.clone();
        if let Some(script) = &run.script {
            cl.args = vec![script.clone()];
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
                return Err(BuildError::NoCommand.into());
            }
        }
        let mut env = st.config.config.env.clone();
        env.extend(st.run_args());
        let network = match run.network {
            Some(NetworkMode::None) => Network::None,
            Some(NetworkMode::Host) => Network::Host,
            _ => self.opts.network.clone(),
        };
        let (mounts, contents) = self.run_mounts(st, run)?;
        let user = st.config.config.user.clone();
        let cwd = st.config.config.working_dir.clone();
        st.chain(KeyKind::Run, |k| {
            k.part("the command").texts(&argv);
            k.part("the environment and build args").texts(&env);
            for e in &env {
                let (name, value) = e.split_once('=').unwrap_or((e, ""));
                k.item(name, &crate::explain::short_digest(value.as_bytes()));
            }
            k.part("the user").text(&user);
            k.part("the working directory").text(&cwd);
            k.part("the network");
            network_key(k, &network);
            k.part("the mounts").num(run.mounts.len() as u64);
            for (m, content) in run.mounts.iter().zip(&contents) {
                mount_key(k, m, content);
            }
        });
        let (id, t0) = self.start(label, index, total, text);
        // docker records the command as written, its words joined (`echo hi` for
        // `RUN ["echo", "hi"]`, nothing for `RUN []`).
        let created_by = if cl.shell_form {
            format!("{} {}", meta::shell_of(&st.config.config).join(" "), cl.args.join(" "))
        } else {
            cl.args.join(" ")
        };
        if let Some(layer) = self.cached(st, id) {
            st.history(created_by, layer.is_none());
            return Ok(());
        }
        let lowers = self.lowers(&st.layers)?;
        // A VOLUME that no layer has is a fresh, empty volume in docker's RUN: runc makes
        // its mountpoint in the step's layer, and what the step writes there is gone
        // afterwards. Volumes over existing directories start with the image's content
        // there; the step runs on that and its writes leave the upper afterwards (settle).
        let volumes: Vec<String> = st.config.config.volumes.keys().cloned().collect();
        let mut mounts = mounts;
        let mut scratch_volumes = Vec::new();
        for v in volumes.iter().filter(|v| crate::volume::is_new(&lowers, v)) {
            let d = self.store.temp_guard("volume")?;
            rustix::fs::chmod(d.path(), rustix::fs::Mode::from_raw_mode(0o755))
                .map_err(BuildError::io("creating a volume at", d.path()))?;
            mounts.push(RtMount {
                target: v.clone(),
                kind: MountKind::Bind { source: d.path().into(), readonly: false },
            });
            scratch_volumes.push(d);
        }
        let req = StepRequest {
            lowers,
            args: argv,
            env,
            cwd,
            user,
            network,
            mounts,
            security: self.opts.security.clone(),
            limits: Limits::default(),
            cancel: Some(self.opts.cancel.clone()),
        };
        let mut tail = Tail::default();
        let (code, dir) = run_step(self.store, &req, &mut |b: &[u8]| {
            tail.push(b);
            self.progress.event(Event::Output { id, data: b });
        })?;
        if code != 0 {
            self.progress.event(Event::Failed { id });
            self.check_cancel()?;
            let cmd = ins.source.trim();
            return Err(Failure {
                error: BuildError::StepFailed { command: cmd.to_string(), code },
                span: Some(ins.span),
                exit_code: Some(code),
                tail: tail.lines(),
            });
        }
        self.check_cancel()?;
        drop(scratch_volumes);
        if !volumes.is_empty() {
            crate::volume::settle(&dir.upper(), &req.lowers, &volumes)?;
        }
        st.workdir_gone = workdir_removed(&dir.upper(), &st.config.config.working_dir);
        let layer = self.commit_dir(st, &dir.upper())?;
        drop(dir);
        st.history(created_by, layer.is_none());
        self.progress.event(Event::Done { id, secs: t0.elapsed().as_secs_f64() });
        Ok(())
    }

    /// RUN --mount: cache dirs kept in the store, tmpfs, and read-only binds of the
    /// context. Returns the mounts and, for each, the digest of the content it brings
    /// (empty for those whose content is not part of the cache key).
    pub(crate) fn run_mounts(&self, st: &State, run: &Run) -> Result<(Vec<RtMount>, Vec<String>)> {
        let mut out = Vec::new();
        let mut contents = Vec::new();
        for m in &run.mounts {
            contents.push(String::new());
            let target = if m.target.starts_with('/') {
                m.target.clone()
            } else {
                format!("/{}/{}", st.config.config.working_dir.trim_matches('/'), m.target)
            };
            match m.typ {
                MountType::Tmpfs => out.push(RtMount {
                    target,
                    kind: MountKind::Tmpfs { options: m.size.map(|s| format!("size={s}")).unwrap_or_default() },
                }),
                MountType::Cache => {
                    let id = m.id.clone().unwrap_or_else(|| target.clone());
                    let dir = self.store.state_dir().join("buildcache").join(cache_mount_dir(&id));
                    if !dir.exists() {
                        std::fs::create_dir_all(&dir).map_err(BuildError::io("creating the cache mount", &dir))?;
                        let _ = rustix::fs::chown(
                            &dir,
                            Some(rustix::fs::Uid::from_raw(m.uid.unwrap_or(0))),
                            Some(rustix::fs::Gid::from_raw(m.gid.unwrap_or(0))),
                        );
                        let _ = rustix::fs::chmod(&dir, rustix::fs::Mode::from_raw_mode(m.mode.unwrap_or(0o755)));
                    }
                    out.push(RtMount { target, kind: MountKind::Bind { source: dir, readonly: m.read_only } });
                }
                MountType::Bind if m.from.is_none() => {
                    let ctx = self.opts.context.as_ref().ok_or(BuildError::BindWithoutContext)?;
                    let src = crate::context::resolve_in_root(
                        ctx,
                        &crate::context::relative_source(m.source.as_deref().unwrap_or("."))?,
                        true,
                    )?;
                    let mut items = vec![Item { path: ".".into(), entries: vec![] }];
                    let source = Source { root: src.clone(), ignore: None, exclude: None, parallel: true };
                    if let Ok(sel) = source.select(".") {
                        items = sel;
                    }
                    if let Some(sc) = &self.statcache {
                        sc.fill(&mut items)?;
                    }
                    if let Some(c) = contents.last_mut() {
                        *c = items_digest(&items);
                    }
                    out.push(RtMount { target, kind: MountKind::Bind { source: src, readonly: true } });
                }
                _ => return Err(BuildError::UnsupportedMount(m.spec.clone())),
            }
        }
        Ok((out, contents))
    }
}

/// The directory (under the store's `buildcache/`) of the cache mount `id`: the first
/// half of the sha256 of the id's length (u64, little endian) and bytes.
fn cache_mount_dir(id: &str) -> String {
    let mut h = Sha256::new();
    h.update((id.len() as u64).to_le_bytes());
    h.update(id.as_bytes());
    hex::encode(h.finalize())[..32].to_string()
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

/// A RUN --mount, in the step's cache key: what it is and, for a bind of the context, the
/// digest of what it brings.
fn mount_key(k: &mut KeyBuilder, m: &Mount, content: &str) {
    let typ = match m.typ {
        MountType::Bind => "bind",
        MountType::Cache => "cache",
        MountType::Tmpfs => "tmpfs",
        MountType::Secret => "secret",
        MountType::Ssh => "ssh",
    };
    let sharing = match m.sharing {
        Sharing::Shared => "shared",
        Sharing::Private => "private",
        Sharing::Locked => "locked",
    };
    k.text(typ)
        .text(&m.target)
        .opt_text(m.from.as_ref().map(|f| f.name.as_str()))
        .opt_text(m.source.as_deref())
        .flag(m.read_only)
        .opt_text(m.id.as_deref())
        .text(sharing)
        .opt_num(m.mode.map(u64::from))
        .opt_num(m.uid.map(u64::from))
        .opt_num(m.gid.map(u64::from))
        .opt_num(m.size)
        .flag(m.required)
        .text(content);
}
