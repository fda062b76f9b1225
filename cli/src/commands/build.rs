//! `rbuild build`: options to a build, progress on stderr, failures as diagnostics.

use crate::cli::{BuildArgs, BuildNetwork, ProgressMode};
use crate::commands::parse::parse_build_args;
use crate::commands::registry::{parse_cache_spec, CacheSpec, RegistryImages, RemoteCache};
use crate::commands::util::clear;
use crate::commands::Reported;
use anyhow::Context;
use rbuild_builder::{Builder, Event, Progress};
use rbuild_registry::cache::CacheImport;
use rbuild_registry::client::ClientOptions;
use rbuild_runtime::Network;
use rbuild_store::{Reference, Store};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub fn run(store: &Store, ropts: &ClientOptions, a: BuildArgs) -> anyhow::Result<ExitCode> {
    // Names, outputs and cache options are checked before any work.
    let tags: Vec<Reference> = a
        .tags
        .iter()
        .map(|t| Reference::parse(t).with_context(|| format!("invalid tag {t:?}")))
        .collect::<anyhow::Result<_>>()?;
    let cache_to: Vec<CacheSpec> =
        a.cache_to.iter().map(|s| parse_cache_spec(s, true)).collect::<anyhow::Result<_>>()?;
    let cache_from: Vec<CacheSpec> =
        a.cache_from.iter().map(|s| parse_cache_spec(s, false)).collect::<anyhow::Result<_>>()?;
    let outputs = super::output::Outputs::parse(&a.outputs, &tags, a.iidfile.is_some())?;
    let input = Input::read(store, &a)?;
    let build_args = parse_build_args(&a.build_args);
    let lint_input = super::check::Input {
        dockerfile: &input.dockerfile,
        name: &input.name,
        context: input.context.as_deref(),
        build_args: &build_args,
        target: a.target.as_deref(),
    };
    if a.check {
        let report = super::check::run_checks(Some(store), &lint_input)?;
        return super::check::print(&report, &lint_input, crate::cli::CheckFormat::Text);
    }
    let lint = super::check::before_build(store, &lint_input)?;
    let (builder, agents, imports) = builder_for(store, ropts, &a, &input, build_args.clone(), &cache_from)?;
    let tty = match a.progress {
        ProgressMode::Tty => true,
        ProgressMode::Plain => false,
        ProgressMode::Auto => std::io::stderr().is_terminal(),
    };
    let started = Instant::now();
    let printer = Printer::new(a.quiet, tty);
    let result = builder.build(&printer);
    drop(agents);
    printer.finish();
    let built = match result {
        Ok(b) => b,
        Err(f) => {
            let mut msg = f.diagnostic().render(&input.name, Some(&input.dockerfile));
            if !f.tail.is_empty() {
                msg.push_str("\n    --- last lines of output ---");
                for l in &f.tail {
                    msg.push_str(&format!("\n    {l}"));
                }
            }
            return Err(Reported { message: msg, code: 1 }.into());
        }
    };
    let tags = outputs.names();
    let meta = publish(store, ropts, &a, &outputs, &tags, &built, (&cache_to, &imports))?;
    if let Some(f) = &a.metadata_file {
        super::output::write_metadata(f, &meta)?;
    }
    let image = &built.image;
    if a.quiet {
        if !outputs.to_stdout() {
            outln!("{}", image.id())?;
        }
    } else {
        errln!("Successfully built {} in {:.1}s", &image.id().hex()[..12], started.elapsed().as_secs_f64());
        for t in &tags {
            errln!("Successfully tagged {}", t.familiar());
        }
        super::check::print_summary(&lint);
    }
    Ok(ExitCode::SUCCESS)
}

/// The Dockerfile and the context a build reads.
struct Input {
    context: Option<PathBuf>,
    dockerfile: String,
    /// The Dockerfile's name in messages.
    name: String,
    /// A context unpacked from standard input, removed afterwards.
    _stdin: Option<rbuild_store::TempDir>,
}

impl Input {
    /// The context directory (or a tar, or a Dockerfile, on standard input) and the
    /// Dockerfile (`-f`, else the context's `Dockerfile` or `dockerfile`).
    fn read(store: &Store, a: &BuildArgs) -> anyhow::Result<Input> {
        let mut stdin_ctx = None;
        let (context, stdin_dockerfile): (Option<PathBuf>, Option<String>) = if a.context == "-" {
            let mut data = Vec::new();
            std::io::stdin().read_to_end(&mut data).context("reading the build context from standard input")?;
            if rbuild_store::compress::is_tar_archive(data.as_slice()) {
                let dir = store.temp_guard("context")?;
                let (_, r) = rbuild_store::compress::decompressed(data.as_slice())?;
                rbuild_store::layer::apply_layer(r, dir.path(), rbuild_store::layer::ApplyMode::Plain)
                    .context("unpacking the build context")?;
                let p = dir.path().to_path_buf();
                stdin_ctx = Some(dir);
                (Some(p), None)
            } else {
                (None, Some(String::from_utf8_lossy(&data).into_owned()))
            }
        } else {
            let p = PathBuf::from(&a.context);
            if !p.is_dir() {
                anyhow::bail!("unable to prepare context: path {:?} not found", a.context);
            }
            (Some(p), None)
        };
        let (dockerfile, name) = match (&a.file, stdin_dockerfile) {
            (Some(f), _) if f == "-" => (crate::commands::parse::read_dockerfile("-")?, "Dockerfile".to_string()),
            (Some(f), _) => {
                // Relative to the working directory, as docker reads -f.
                let data = std::fs::read(f).with_context(|| format!("cannot read Dockerfile {f}"))?;
                (String::from_utf8_lossy(&data).into_owned(), f.clone())
            }
            (None, Some(text)) => (text, "Dockerfile".to_string()),
            (None, None) => {
                let ctx = context.as_deref().unwrap_or(Path::new("."));
                let p = [ctx.join("Dockerfile"), ctx.join("dockerfile")].into_iter().find(|p| p.is_file());
                let Some(p) = p else {
                    anyhow::bail!("cannot read Dockerfile: {} does not exist", ctx.join("Dockerfile").display())
                };
                let data = std::fs::read(&p).with_context(|| format!("cannot read Dockerfile {}", p.display()))?;
                (String::from_utf8_lossy(&data).into_owned(), p.display().to_string())
            }
        };
        Ok(Input { context, dockerfile, name, _stdin: stdin_ctx })
    }
}

/// The builder the arguments describe, the ssh agents it uses (kept while it runs) and
/// the `--cache-from` caches it reads (which `--cache-to` may pass cache mounts on from).
fn builder_for<'s>(
    store: &'s Store,
    ropts: &ClientOptions,
    a: &BuildArgs,
    input: &Input,
    build_args: BTreeMap<String, String>,
    cache_from: &[CacheSpec],
) -> anyhow::Result<(Builder<'s>, super::build_opts::SshAgents, Vec<Arc<RemoteCache>>)> {
    let labels: BTreeMap<String, String> = a
        .labels
        .iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.clone(), String::new()),
        })
        .collect();
    let source_date_epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => {
            Some(v.trim().parse::<i64>().with_context(|| format!("invalid SOURCE_DATE_EPOCH {v:?}"))?)
        }
        _ => None,
    };
    let cancel = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, cancel.clone());
    }
    let mut builder = Builder::new(store, input.dockerfile.clone())
        .context(input.context.clone())
        .build_args(build_args)
        .target(a.target.clone())
        .no_cache(a.no_cache)
        .explain_cache(a.explain_cache)
        .dockerfile_name(input.name.clone())
        .network(match a.network {
            BuildNetwork::None => Network::None,
            BuildNetwork::Host => Network::Host,
            BuildNetwork::Default => Network::build_step(),
        })
        .security(super::options::security(false, &[], &[], &a.security_opt)?)
        .labels(labels)
        .extra_hosts(a.add_host.iter().map(|h| super::options::add_host(h)).collect::<anyhow::Result<_>>()?)
        .source_date_epoch(source_date_epoch)
        .cancel(cancel)
        .pull(a.pull)
        .images(Arc::new(RegistryImages(ropts.clone())))
        .platform(a.platform.clone());
    for e in &a.allow {
        builder = builder.allow(rbuild_builder::Entitlement::parse(e)?);
    }
    for spec in &a.secrets {
        let (id, value) = super::build_opts::secret(spec)?;
        builder = builder.secret(id, value);
    }
    let agents = super::build_opts::SshAgents::from_flags(&a.ssh)?;
    for (id, socket) in &agents.sockets {
        builder = builder.ssh(id.clone(), socket.clone());
    }
    for spec in &a.build_contexts {
        let (name, ctx) = super::build_opts::build_context(spec)?;
        builder = builder.build_context(name, ctx);
    }
    // An unreadable cache is a warning, as BuildKit's: the build runs without it.
    let mut imports = Vec::new();
    for spec in cache_from {
        match CacheImport::open(store, &spec.location, ropts) {
            Ok(c) => {
                let c = Arc::new(RemoteCache(c));
                builder = builder.cache_from(c.clone());
                imports.push(c);
            }
            Err(e) => errln!("[warning] importing cache {}: {e}", spec.location),
        }
    }
    Ok((builder, agents, imports))
}

/// Names the built image, sends it where `--output` says, writes `--iidfile` and exports
/// the cache (`--cache-to`, with the `--cache-from` caches it may pass cache mounts on
/// from); the build's metadata for `--metadata-file`.
fn publish(
    store: &Store,
    ropts: &ClientOptions,
    a: &BuildArgs,
    outputs: &super::output::Outputs,
    tags: &[Reference],
    built: &rbuild_builder::Built,
    (cache_to, imports): (&[CacheSpec], &[Arc<RemoteCache>]),
) -> anyhow::Result<super::output::Metadata> {
    let image = &built.image;
    // The config's time is fixed for reproducibility; `images` shows when it was made here.
    store.record_created_here(&image.config_digest, &rbuild_runtime::state::now())?;
    for t in tags {
        store.set_name(t, image.manifest_digest, image.manifest_size)?;
        crate::commands::event(store, "image", "tag", &image.config_digest.to_string(), &[("name", &t.familiar())]);
    }
    if tags.is_empty() && outputs.stores_image() {
        store.add_untagged(image.manifest_digest, image.manifest_size)?;
    }
    let meta = outputs.export(store, ropts, image, a.quiet)?;
    if let Some(f) = &a.iidfile {
        std::fs::write(f, image.id().to_string()).with_context(|| format!("writing {}", f.display()))?;
    }
    for spec in cache_to {
        let r = super::cacheexport::artifact(store, spec, built, imports, a.quiet).and_then(|art| {
            rbuild_registry::cache::export(store, &art, &spec.location, ropts, &rbuild_registry::progress::Quiet)?;
            Ok(art)
        });
        match r {
            Ok(art) if !a.quiet => {
                errln!("Exported {} cache records ({} layers) to {}", art.records, art.blobs.len(), spec.location)
            }
            Ok(_) => {}
            Err(e) if spec.ignore_error => errln!("[warning] exporting cache to {}: {e:#}", spec.location),
            Err(e) => return Err(e.context(format!("exporting cache to {}", spec.location))),
        }
    }
    Ok(meta)
}

/// Progress output: a line per step (`#N [stage i/n] INSTRUCTION`), RUN output prefixed by
/// the step number, `CACHED` or `DONE 1.2s`. On a terminal, running steps show their last
/// lines below the finished ones and collapse when they finish, as BuildKit's display does.
struct Printer {
    quiet: bool,
    tty: bool,
    state: Mutex<Screen>,
}

#[derive(Default)]
struct Screen {
    /// Running steps: id, title, start, last output lines, partial line.
    active: Vec<(usize, String, Instant, Vec<String>, String)>,
    /// Lines of the live area drawn last time.
    drawn: usize,
    last_draw: Option<Instant>,
}

const LIVE_LINES: usize = 6;

impl Printer {
    fn new(quiet: bool, tty: bool) -> Printer {
        Printer { quiet, tty, state: Mutex::new(Screen::default()) }
    }

    fn finish(&self) {
        if self.tty && !self.quiet {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let mut out = String::new();
            clear(&mut out, s.drawn);
            s.drawn = 0;
            for (id, title, t0, lines, _) in s.active.drain(..) {
                out.push_str(&format!("#{id} {title}\n"));
                for l in lines {
                    out.push_str(&format!("#{id} {l}\n"));
                }
                out.push_str(&format!("#{id} ERROR after {:.1}s\n", t0.elapsed().as_secs_f64()));
            }
            let _ = std::io::stderr().write_all(out.as_bytes());
        }
    }

    fn redraw(&self, s: &mut Screen, permanent: &str, force: bool) {
        if !force && permanent.is_empty() && s.last_draw.is_some_and(|t| t.elapsed().as_millis() < 100) {
            return;
        }
        let mut out = String::new();
        clear(&mut out, s.drawn);
        out.push_str(permanent);
        let width = rustix::termios::tcgetwinsize(std::io::stderr()).map(|w| w.ws_col as usize).unwrap_or(100).max(20);
        let mut n = 0;
        for (id, title, t0, lines, _) in &s.active {
            out.push_str(&format!(
                "\x1b[1m#{id} {}\x1b[0m {:.1}s\n",
                trunc(title, width - 12),
                t0.elapsed().as_secs_f64()
            ));
            n += 1;
            for l in lines {
                out.push_str(&format!("\x1b[2m#{id} {}\x1b[0m\n", trunc(l, width - 8)));
                n += 1;
            }
        }
        s.drawn = n;
        s.last_draw = Some(Instant::now());
        let _ = std::io::stderr().write_all(out.as_bytes());
    }
}

fn trunc(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        s.to_string()
    } else {
        s.chars().take(w.saturating_sub(1)).collect::<String>() + "…"
    }
}

impl Progress for Printer {
    fn event(&self, e: Event<'_>) {
        if self.quiet {
            if let Event::Warning { message } = e {
                errln!("[warning] {message}");
            }
            return;
        }
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !self.tty {
            let line = match e {
                Event::Step { id, stage, index, total, text } => format!("#{id} [{stage} {index}/{total}] {text}\n"),
                Event::Cached { id } => format!("#{id} CACHED\n"),
                Event::Output { id, data } => {
                    let mut out = String::new();
                    for l in String::from_utf8_lossy(data).split_inclusive('\n') {
                        out.push_str(&format!("#{id} {}", l));
                        if !l.ends_with('\n') {
                            out.push('\n');
                        }
                    }
                    out
                }
                Event::Done { id, secs } => format!("#{id} DONE {secs:.1}s\n"),
                Event::Failed { id } => format!("#{id} ERROR\n"),
                Event::CacheMiss { id, reason } => format!("#{id} CACHE MISS: {reason}\n"),
                Event::Warning { message } => format!("[warning] {message}\n"),
            };
            let _ = std::io::stderr().write_all(line.as_bytes());
            return;
        }
        match e {
            Event::Step { id, stage, index, total, text } => {
                s.active.push((id, format!("[{stage} {index}/{total}] {text}"), Instant::now(), vec![], String::new()));
                self.redraw(&mut s, "", true);
            }
            Event::Output { id, data } => {
                if let Some(a) = s.active.iter_mut().find(|a| a.0 == id) {
                    a.4.push_str(&String::from_utf8_lossy(data));
                    while let Some(i) = a.4.find('\n') {
                        let l: String = a.4.drain(..=i).collect();
                        a.3.push(l.trim_end().to_string());
                        if a.3.len() > LIVE_LINES {
                            a.3.remove(0);
                        }
                    }
                }
                self.redraw(&mut s, "", false);
            }
            Event::Cached { id } | Event::Done { id, .. } | Event::Failed { id } => {
                let Some(pos) = s.active.iter().position(|a| a.0 == id) else { return };
                let (id, title, t0, lines, _) = s.active.remove(pos);
                let mut perm = match e {
                    Event::Cached { .. } => format!("\x1b[34m#{id} {title} CACHED\x1b[0m\n"),
                    Event::Done { secs, .. } => format!("\x1b[34m#{id} {title} {secs:.1}s\x1b[0m\n"),
                    _ => format!("\x1b[31m#{id} {title} ERROR {:.1}s\x1b[0m\n", t0.elapsed().as_secs_f64()),
                };
                if matches!(e, Event::Failed { .. }) {
                    for l in lines {
                        perm.push_str(&format!("#{id} {l}\n"));
                    }
                }
                self.redraw(&mut s, &perm, true);
            }
            Event::Warning { message } => self.redraw(&mut s, &format!("[warning] {message}\n"), true),
            Event::CacheMiss { id, reason } => {
                self.redraw(&mut s, &format!("\x1b[33m#{id} CACHE MISS: {reason}\x1b[0m\n"), true)
            }
        }
    }
}
