//! The build: walks the stage graph (independent stages at the same time), computes each
//! step's cache key, runs RUN steps in the sandbox, copies files for COPY and ADD, and
//! commits every changed filesystem as a layer in the store.
//!
//! A failure carries the step's last output lines with the error; it happens once per
//! build, so its size on the error path does not matter.
#![allow(clippy::result_large_err)]

use crate::context::{items_digest, Item, Source, StatCache};
use crate::copy::{self, CopyOpts};
use crate::error::{BuildError, Result};
use crate::ignore::{read_dockerignore, Matcher};
use crate::meta::{self, Words, DEFAULT_PATH};
use rbuild_parser::graph::{Base, Graph, PROXY_ARGS};
use rbuild_parser::instruction::{Copy, Instruction, Kind, MountType, NetworkMode, Run};
use rbuild_parser::shell::Lexer;
use rbuild_parser::{Dockerfile, Span};
use rbuild_runtime::step::{run_step, StepRequest};
use rbuild_runtime::{Limits, Mount as RtMount, MountKind, Network, SecurityOptions};
use rbuild_store::config::{rfc3339, History, ImageConfig};
use rbuild_store::layer::WriteOptions;
use rbuild_store::{CacheRecord, Image, LayerRef, Store, TempDir};
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Bump when the meaning of a cache key or record changes: old entries then simply miss.
/// 3: a step whose diff is empty records no layer.
const CACHE_VERSION: &str = "rbuild-cache-3";

/// What to build and how.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The Dockerfile text and the name to show in messages.
    pub dockerfile: String,
    pub dockerfile_name: String,
    /// The context directory; None builds without a context (`rbuild build - < Dockerfile`).
    pub context: Option<PathBuf>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    /// The network of RUN steps that do not ask for one (`--network`).
    pub network: Network,
    /// RUN steps' capabilities and no_new_privs (`--security-opt`); docker's by default.
    pub security: SecurityOptions,
    pub labels: BTreeMap<String, String>,
    /// Times in the image; None means fixed (the base image's creation time).
    pub source_date_epoch: Option<i64>,
    /// Set from a signal handler: the build stops at the next step boundary.
    pub cancel: Arc<AtomicBool>,
    /// Refresh base images from `images` before using them (`--pull`).
    pub pull: bool,
    /// Where images the store lacks come from (a registry); None: the store only.
    pub images: Option<Arc<dyn ImageSource>>,
    /// Caches consulted when the store has no record for a step (`--cache-from`).
    pub cache_from: Vec<Arc<dyn CacheSource>>,
}

/// Where FROM and `COPY --from` find images the store lacks (and, with `pull`, fresher
/// ones). Implemented by the CLI over the registry client.
pub trait ImageSource: Sync + Send + std::fmt::Debug {
    /// Fetches `reference` into the store and names it; the message of an error is shown
    /// at the instruction that needed the image.
    fn pull(&self, store: &Store, reference: &str) -> std::result::Result<Image, String>;
}

/// A build cache from elsewhere (`--cache-from`), asked when the store has no record for
/// a step's key.
pub trait CacheSource: Sync + Send + std::fmt::Debug {
    /// The record for `key`, stored (with the blobs it needs) in `store`; None when this
    /// cache lacks the key. An error is shown as a warning and counts as a miss.
    fn fetch(&self, store: &Store, key: &str) -> std::result::Result<Option<CacheRecord>, String>;
}

/// A finished build.
#[derive(Debug, Clone)]
pub struct Built {
    /// The target stage's image (not named yet).
    pub image: Image,
    /// The cache keys of the steps that made the image's layers: the target stage and
    /// the stages it is built FROM, in build order (`--cache-to …,mode=min`).
    pub image_keys: Vec<String>,
    /// Every cache key the build used, of every stage (`mode=max`).
    pub all_keys: Vec<String>,
}

/// What the build reports as it goes.
#[derive(Debug)]
pub enum Event<'a> {
    /// A step starts. `id` is unique in the build.
    Step {
        id: usize,
        stage: &'a str,
        index: usize,
        total: usize,
        text: &'a str,
    },
    Cached {
        id: usize,
    },
    Output {
        id: usize,
        data: &'a [u8],
    },
    Done {
        id: usize,
        secs: f64,
    },
    Failed {
        id: usize,
    },
    Warning {
        message: String,
    },
}

pub trait Progress: Sync {
    fn event(&self, e: Event<'_>);
}

/// A build failure: the error, where in the Dockerfile, and (for RUN) the last output.
#[derive(Debug)]
pub struct Failure {
    pub error: BuildError,
    pub exit_code: Option<i32>,
    pub tail: Vec<String>,
}

impl From<BuildError> for Failure {
    fn from(error: BuildError) -> Self {
        Failure { error, exit_code: None, tail: vec![] }
    }
}

impl From<rbuild_store::StoreError> for Failure {
    fn from(e: rbuild_store::StoreError) -> Self {
        Failure::from(BuildError::Store(e))
    }
}

type FResult<T> = std::result::Result<T, Failure>;

/// A finished stage.
#[derive(Debug, Clone)]
struct StageOut {
    config: ImageConfig,
    layers: Vec<LayerRef>,
    key: String,
    /// What the stage is when no instruction changed its base: the base image itself
    /// (docker's result is then the base's image id, its config untouched), or nothing
    /// at all for `FROM scratch`.
    unchanged: Option<Unchanged>,
}

#[derive(Debug, Clone)]
enum Unchanged {
    Image(Box<Image>),
    Scratch,
}

struct Ctx<'a> {
    store: &'a Store,
    opts: &'a BuildOptions,
    df: &'a Dockerfile,
    graph: &'a Graph,
    progress: &'a dyn Progress,
    ignore: Matcher,
    statcache: Option<StatCache>,
    next_id: AtomicUsize,
    used_args: Mutex<BTreeSet<String>>,
    outs: Mutex<Vec<Option<StageOut>>>,
    /// (stage, key) of every step with a cache record, as the build met them.
    used_keys: Mutex<Vec<(usize, String)>>,
    /// Images pulled by this build (`--pull` refreshes each once).
    pulled: Mutex<BTreeMap<String, Image>>,
}

fn hash_parts(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

fn epoch_string(secs: i64) -> String {
    rfc3339(secs, 0)
}

/// Builds the Dockerfile; returns the (unnamed) image of the target stage.
pub fn build(store: &Store, opts: &BuildOptions, progress: &dyn Progress) -> FResult<Built> {
    let df = Dockerfile::parse(&opts.dockerfile).map_err(BuildError::Parse)?;
    let graph = Graph::build(&df, &opts.build_args, opts.target.as_deref()).map_err(BuildError::Parse)?;
    let ignore = match &opts.context {
        Some(c) => {
            let data = std::fs::read(c.join(".dockerignore")).unwrap_or_default();
            Matcher::new(&read_dockerignore(&data))
                .map_err(|e| BuildError::msg(format!("invalid .dockerignore: {e}")))?
        }
        None => Matcher::default(),
    };
    let statcache = opts.context.as_ref().map(|c| {
        let canon = std::fs::canonicalize(c).unwrap_or_else(|_| c.clone());
        StatCache::open(&store.state_dir().join("statcache"), &canon)
    });
    let cx = Ctx {
        store,
        opts,
        df: &df,
        graph: &graph,
        progress,
        ignore,
        statcache,
        next_id: AtomicUsize::new(1),
        used_args: Mutex::new(BTreeSet::new()),
        outs: Mutex::new(vec![None; df.stages.len()]),
        used_keys: Mutex::new(Vec::new()),
        pulled: Mutex::new(BTreeMap::new()),
    };
    for level in &graph.levels {
        let results: Vec<FResult<()>> = std::thread::scope(|s| {
            let handles: Vec<_> = level
                .iter()
                .map(|&i| {
                    s.spawn({
                        let cx = &cx;
                        move || cx.run_stage(i)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(BuildError::msg("a build thread panicked").into())))
                .collect()
        });
        for r in results {
            r?;
        }
    }
    if let Some(sc) = &cx.statcache {
        sc.save();
    }
    // Build args given but never declared (proxy args are always fine).
    let used = cx.used_args.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let unused: Vec<&String> = opts
        .build_args
        .keys()
        .filter(|k| !used.contains(*k) && !PROXY_ARGS.contains(&k.as_str()) && !graph.meta_args.contains_key(*k))
        .collect();
    if !unused.is_empty() {
        let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
        progress.event(Event::Warning {
            message: format!("one or more build-args [{}] were not consumed", names.join(" ")),
        });
    }
    let out = cx.outs.lock().unwrap_or_else(|e| e.into_inner())[graph.target]
        .clone()
        .ok_or_else(|| BuildError::msg("the target stage was not built"))?;
    // The chain of stages the target is FROM made the image's layers.
    let mut chain = BTreeSet::from([graph.target]);
    let mut at = graph.target;
    while let Base::Stage(j) = graph.stages[at].base {
        chain.insert(j);
        at = j;
    }
    let used = cx.used_keys.into_inner().unwrap_or_else(|e| e.into_inner());
    let image_keys = used.iter().filter(|(st, _)| chain.contains(st)).map(|(_, k)| k.clone()).collect();
    let all_keys = used.into_iter().map(|(_, k)| k).collect();
    match out.unchanged {
        // docker's result is the base image (its id): nothing was committed.
        Some(Unchanged::Image(img)) => return Ok(Built { image: *img, image_keys, all_keys }),
        Some(Unchanged::Scratch) => {
            return Err(BuildError::msg("No image was generated. Is your Dockerfile empty?").into())
        }
        None => {}
    }
    let mut config = out.config;
    for (k, v) in &opts.labels {
        config.config.labels.insert(k.clone(), v.clone());
    }
    config.rootfs.diff_ids = out.layers.iter().map(|l| l.diff_id).collect();
    let image = store.write_image(&config, &out.layers)?;
    Ok(Built { image, image_keys, all_keys })
}

/// The per-stage state while its instructions run.
struct State {
    /// The stage being built.
    stage: usize,
    config: ImageConfig,
    layers: Vec<LayerRef>,
    key: String,
    /// ARGs declared in this stage and their values (None: declared, no value).
    args: BTreeMap<String, Option<String>>,
    cmd_set: bool,
    /// The last step with a layer may have removed the working directory; docker makes it
    /// again when it creates the next step's container, so the next metadata step commits
    /// it (also recorded in the cache, as a cached step has no upper to look at).
    workdir_gone: bool,
    created: String,
    clamp: i64,
    escape: char,
    /// The Env indexed for expansion (see `meta::StageEnv`).
    env: meta::StageEnv,
}

impl State {
    /// Build args visible to RUN (sorted), as docker passes them.
    fn run_args(&self) -> Vec<String> {
        self.args
            .iter()
            .filter_map(|(k, val)| val.as_ref().map(|x| (k, x)))
            .filter(|(k, _)| !self.env.assigns(k))
            .map(|(k, x)| format!("{k}={x}"))
            .collect()
    }

    fn chain(&mut self, parts: &[&[u8]]) {
        let mut all: Vec<&[u8]> = vec![CACHE_VERSION.as_bytes(), self.key.as_bytes()];
        all.extend_from_slice(parts);
        self.key = hash_parts(&all);
    }

    fn history(&mut self, created_by: String, empty: bool) {
        self.config.history.push(History {
            created: Some(self.created.clone()),
            created_by: Some(created_by),
            author: None,
            comment: None,
            empty_layer: empty,
        });
    }
}

impl Ctx<'_> {
    fn stage_label(&self, i: usize) -> String {
        match self.df.stages[i].name() {
            Some(n) => n.to_string(),
            None => format!("stage-{i}"),
        }
    }

    fn start(&self, stage: &str, index: usize, total: usize, text: &str) -> (usize, Instant) {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        self.progress.event(Event::Step { id, stage, index, total, text });
        (id, Instant::now())
    }

    fn check_cancel(&self) -> Result<()> {
        if self.opts.cancel.load(Ordering::SeqCst) {
            return Err(BuildError::msg("build interrupted"));
        }
        Ok(())
    }

    fn run_stage(&self, i: usize) -> FResult<()> {
        let stage = &self.df.stages[i];
        let label = self.stage_label(i);
        let total = stage.instructions.len() + 1;
        let span = stage.from.span;
        let from_text = match (&self.graph.stages[i].base, stage.name()) {
            (Base::Image(r), n) => format!("FROM {r}{}", n.map(|n| format!(" AS {n}")).unwrap_or_default()),
            (_, _) => stage.from.source.trim().to_string(),
        };
        let (id, t0) = self.start(&label, 1, total, &from_text);
        let unchanged;
        let mut st = match &self.graph.stages[i].base {
            Base::Scratch => {
                unchanged = Some(Unchanged::Scratch);
                State {
                    stage: i,
                    config: ImageConfig::default(),
                    layers: vec![],
                    key: hash_parts(&[CACHE_VERSION.as_bytes(), b"scratch"]),
                    args: BTreeMap::new(),
                    cmd_set: false,
                    workdir_gone: false,
                    created: String::new(),
                    clamp: 0,
                    escape: self.df.directives.escape,
                    env: Default::default(),
                }
            }
            Base::Stage(j) => {
                let o = self.outs.lock().unwrap_or_else(|e| e.into_inner())[*j]
                    .clone()
                    .ok_or_else(|| BuildError::at("the base stage was not built", span))?;
                unchanged = o.unchanged.clone();
                let clamp = o.config.created.as_deref().map(rbuild_store::config::parse_rfc3339).unwrap_or(0);
                State {
                    stage: i,
                    config: o.config,
                    layers: o.layers,
                    key: o.key,
                    args: BTreeMap::new(),
                    cmd_set: false,
                    workdir_gone: false,
                    created: String::new(),
                    clamp,
                    escape: self.df.directives.escape,
                    env: Default::default(),
                }
            }
            Base::Image(r) => {
                let img = self.image(r, true).map_err(|e| BuildError::at(format!("base image {r}: {e}"), span))?;
                unchanged = Some(Unchanged::Image(Box::new(img.clone())));
                let clamp = img.config.created.as_deref().map(rbuild_store::config::parse_rfc3339).unwrap_or(0);
                State {
                    stage: i,
                    config: img.config.clone(),
                    layers: img.layers.clone(),
                    key: hash_parts(&[CACHE_VERSION.as_bytes(), b"image", img.id().to_string().as_bytes()]),
                    args: BTreeMap::new(),
                    cmd_set: false,
                    workdir_gone: false,
                    created: String::new(),
                    clamp,
                    escape: self.df.directives.escape,
                    env: Default::default(),
                }
            }
        };
        if let Some(e) = self.opts.source_date_epoch {
            st.clamp = e;
        }
        // A stage without instructions (nor ONBUILD triggers, nor --label on the target) is
        // its base as it is: docker commits nothing for it, so not even the default PATH
        // is added (it is added to the runConfig each instruction commits).
        let labelled = i == self.graph.target && !self.opts.labels.is_empty();
        if stage.instructions.is_empty() && st.config.config.on_build.is_empty() && !labelled {
            self.progress.event(Event::Done { id, secs: t0.elapsed().as_secs_f64() });
            self.outs.lock().unwrap_or_else(|e| e.into_inner())[i] =
                Some(StageOut { config: st.config, layers: st.layers, key: st.key, unchanged });
            return Ok(());
        }
        st.created = epoch_string(st.clamp);
        st.config.created = Some(st.created.clone());
        if st.config.config.env_get("PATH").is_none() {
            st.config.config.env.push(format!("PATH={DEFAULT_PATH}"));
        }
        // A new image: its own history continues the base's; ONBUILD triggers fire now.
        let triggers = std::mem::take(&mut st.config.config.on_build);
        self.progress.event(Event::Done { id, secs: t0.elapsed().as_secs_f64() });
        for t in &triggers {
            let ast = rbuild_parser::ast::parse(t)
                .map_err(|e| BuildError::at(format!("invalid ONBUILD trigger {t:?}: {e}"), span))?;
            for node in &ast.nodes {
                let mut ins = rbuild_parser::instruction::from_node(node)
                    .map_err(|e| BuildError::at(format!("invalid ONBUILD trigger {t:?}: {e}"), span))?;
                ins.span = span;
                self.step(&mut st, &ins, &label, 1, total)?;
            }
        }
        for (n, ins) in stage.instructions.iter().enumerate() {
            self.check_cancel()?;
            self.step(&mut st, ins, &label, n + 2, total)?;
        }
        self.outs.lock().unwrap_or_else(|e| e.into_inner())[i] =
            Some(StageOut { config: st.config, layers: st.layers, key: st.key, unchanged: None });
        Ok(())
    }

    fn step(&self, st: &mut State, ins: &Instruction, label: &str, index: usize, total: usize) -> FResult<()> {
        let span = ins.span;
        st.env.sync(&st.config.config.env);
        let env = meta::StepEnv { env: &st.env, args: &st.args };
        let words = Words { lex: Lexer::new(st.escape), env: &env, span };
        let text = ins.source.trim();
        match &ins.kind {
            Kind::Arg { args } => {
                let mut declared = Vec::new();
                for a in args {
                    let name = a.name.clone();
                    let default = match &a.default {
                        Some(d) => Some(words.word(d)?),
                        None => None,
                    };
                    let value = self
                        .opts
                        .build_args
                        .get(&name)
                        .cloned()
                        .or(default)
                        .or_else(|| self.graph.meta_args.get(&name).cloned());
                    self.used_args.lock().unwrap_or_else(|e| e.into_inner()).insert(name.clone());
                    declared.push((name, value));
                }
                // All expanded with the environment from before the instruction.
                for (name, value) in declared {
                    st.chain(&[b"ARG", name.as_bytes(), value.as_deref().unwrap_or("\0unset").as_bytes()]);
                    st.args.insert(name, value);
                }
                self.commit_meta(st, format!("/bin/sh -c #(nop)  {text}"), label, index, total, text)
            }
            Kind::Run(run) => self.run(st, run, ins, label, index, total),
            Kind::Copy(c) => self.copy(st, c, false, ins, label, index, total),
            Kind::Add(c) => self.copy(st, c, true, ins, label, index, total),
            Kind::Workdir { .. } => {
                let applied = meta::apply(&mut st.config, &ins.kind, &words, &mut st.cmd_set)?;
                let wd = st.config.config.working_dir.clone();
                st.chain(&[b"WORKDIR", wd.as_bytes()]);
                self.commit_workdir(st, applied.created_by, label, index, total, text)
            }
            Kind::Env { pairs } => {
                // As meta::apply does, through the index.
                let (set, msg) = meta::expand_env(pairs, &words)?;
                for (k, v) in &set {
                    st.env.set(&mut st.config.config.env, k, v);
                }
                let created_by = format!("/bin/sh -c #(nop)  {msg}");
                st.env.grow(2 * created_by.len(), span)?;
                st.chain(&[b"META", created_by.as_bytes()]);
                self.commit_meta(st, created_by, label, index, total, text)
            }
            _ => {
                let applied = meta::apply(&mut st.config, &ins.kind, &words, &mut st.cmd_set)?;
                st.env.grow(2 * applied.created_by.len(), span)?;
                if matches!(ins.kind, Kind::Volume { .. }) {
                    self.check_volumes(st, span)?;
                }
                st.chain(&[b"META", applied.created_by.as_bytes()]);
                self.commit_meta(st, applied.created_by, label, index, total, text)
            }
        }
    }

    /// A metadata instruction's commit: no layer, unless the step before removed the
    /// working directory, which docker's container for this commit makes again.
    fn commit_meta(
        &self,
        st: &mut State,
        created_by: String,
        label: &str,
        index: usize,
        total: usize,
        text: &str,
    ) -> FResult<()> {
        if st.workdir_gone && !st.config.config.working_dir.is_empty() {
            return self.commit_workdir(st, created_by, label, index, total, text);
        }
        st.history(created_by, true);
        Ok(())
    }

    /// Commits the working directory, made (0755, root) where it is missing: docker makes
    /// it for every step's container (`SetupWorkingDirectory`), so WORKDIR commits a layer
    /// only when its directory is new.
    fn commit_workdir(
        &self,
        st: &mut State,
        created_by: String,
        label: &str,
        index: usize,
        total: usize,
        text: &str,
    ) -> FResult<()> {
        let wd = st.config.config.working_dir.clone();
        let (id, t0) = self.start(label, index, total, text);
        if let Some(r) = self.cached(st, id) {
            st.history(created_by, r.is_none());
            return Ok(());
        }
        let (dir, ()) = self.in_rootfs(st, &[], |root, _| ensure_workdir(root.path, &wd))?;
        st.workdir_gone = false;
        let layer = self.commit_dir(st, &dir.path().join("upper"))?;
        st.history(created_by, layer.is_none());
        self.progress.event(Event::Done { id, secs: t0.elapsed().as_secs_f64() });
        Ok(())
    }

    /// docker creates a container for the VOLUME instruction's commit, and creating a
    /// container refuses a volume where the image has something that is not a directory
    /// (`stat`, following symlinks inside the root): "cannot mount volume over existing
    /// file". Checked through a read-only mount of the stage's layers.
    fn check_volumes(&self, st: &State, span: Span) -> Result<()> {
        if st.layers.is_empty() {
            return Ok(());
        }
        let volumes: Vec<String> = st.config.config.volumes.keys().cloned().collect();
        let view = rbuild_runtime::View { lowers: self.lowers(&st.layers)?, upper: None, volatile_upper: false };
        let found = rbuild_runtime::with_views(&self.store.tmp_dir(), &[view], |roots| -> Result<Option<String>> {
            for v in &volumes {
                let host = crate::context::resolve_in_root(&roots[0], v, true)?;
                if std::fs::metadata(&host).is_ok_and(|m| !m.is_dir()) {
                    return Ok(Some(v.clone()));
                }
            }
            Ok(None)
        })
        .map_err(|e| BuildError::msg(e.to_string()))??;
        match found {
            Some(v) => Err(BuildError::at(format!("cannot mount volume over existing file, file exists {v}"), span)),
            None => Ok(()),
        }
    }

    /// An image by name: from the store, else (or, for a base image with `--pull`,
    /// first) from the image source.
    fn image(&self, r: &str, base: bool) -> std::result::Result<Image, String> {
        let source = self.opts.images.as_ref();
        let refresh = base && self.opts.pull && source.is_some();
        if !refresh {
            match self.store.image(r) {
                Ok(img) => return Ok(img),
                Err(rbuild_store::StoreError::ImageNotFound(_)) if source.is_some() => {}
                Err(rbuild_store::StoreError::ImageNotFound(_)) => {
                    return Err(format!("no such image: {r} (rbuild pull, load or import it first)"))
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        let Some(source) = source else { return Err(format!("no such image: {r}")) };
        // One pull per image and build, also when stages ask at the same time.
        let mut pulled = self.pulled.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(img) = pulled.get(r) {
            return Ok(img.clone());
        }
        let img = source.pull(self.store, r)?;
        pulled.insert(r.to_string(), img.clone());
        Ok(img)
    }

    /// The record for `key`: the store's, else the first `--cache-from` cache's.
    fn record(&self, key: &str) -> Option<CacheRecord> {
        if let Some(r) = self.store.cache_get(key) {
            return Some(r);
        }
        for c in &self.opts.cache_from {
            match c.fetch(self.store, key) {
                Ok(Some(r)) => return Some(r),
                Ok(None) => {}
                Err(e) => self.progress.event(Event::Warning { message: format!("cache import: {e}") }),
            }
        }
        None
    }

    /// A cache hit for the current key: the layer (if the step made one) is appended.
    /// Returns Some(layer-or-none) on a hit.
    fn cached(&self, st: &mut State, id: usize) -> Option<Option<LayerRef>> {
        if self.opts.no_cache {
            return None;
        }
        let rec = self.record(&st.key)?;
        let layer = match rec.value.get("layer") {
            Some(serde_json::Value::Object(o)) => {
                let diff_id = o.get("diff_id")?.as_str()?.parse().ok()?;
                let size = o.get("size")?.as_u64()?;
                Some(LayerRef { diff_id, size })
            }
            _ => None,
        };
        if let Some(l) = &layer {
            st.config.rootfs.diff_ids.push(l.diff_id);
            st.layers.push(l.clone());
        }
        st.workdir_gone = rec.value.get("workdir_gone").and_then(|v| v.as_bool()).unwrap_or(false);
        self.used_keys.lock().unwrap_or_else(|e| e.into_inner()).push((st.stage, st.key.clone()));
        self.progress.event(Event::Cached { id });
        Some(layer)
    }

    /// Records the result of a step under the current key.
    fn remember(&self, st: &State, layer: Option<&LayerRef>) -> Result<()> {
        let mut value = match layer {
            Some(l) => serde_json::json!({"layer": {"diff_id": l.diff_id.to_string(), "size": l.size}}),
            None => serde_json::json!({"layer": null}),
        };
        if st.workdir_gone {
            value["workdir_gone"] = serde_json::Value::Bool(true);
        }
        let rec = CacheRecord {
            key: st.key.clone(),
            value,
            refs: layer.map(|l| vec![l.diff_id]).unwrap_or_default(),
            created: now_secs(),
        };
        self.store.cache_put(&rec)?;
        self.used_keys.lock().unwrap_or_else(|e| e.into_inner()).push((st.stage, st.key.clone()));
        Ok(())
    }

    /// Snapshots of the state's layers, top first.
    fn lowers(&self, layers: &[LayerRef]) -> Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> =
            layers.iter().map(|l| self.store.ensure_snapshot(&l.diff_id)).collect::<rbuild_store::Result<_>>()?;
        v.reverse();
        Ok(v)
    }

    /// Mounts the state's rootfs with a fresh upper (and read-only `others`), runs `f`
    /// on it, and hands back the upper dir's parent (upper is `dir/upper`).
    fn in_rootfs<T: Send>(
        &self,
        st: &State,
        others: &[Vec<LayerRef>],
        f: impl FnOnce(copy::Root<'_>, &[PathBuf]) -> Result<T> + Send,
    ) -> Result<(TempDir, T)> {
        let dir = self.store.temp_guard("copy")?;
        let (upper, work) = (dir.path().join("upper"), dir.path().join("work"));
        for d in [&upper, &work] {
            std::fs::create_dir(d).map_err(|e| BuildError::msg(format!("creating a layer dir: {e}")))?;
        }
        // The upper is committed (or dropped) once unmounted: volatile.
        let mut views = vec![rbuild_runtime::View {
            lowers: self.lowers(&st.layers)?,
            upper: Some((upper.clone(), work)),
            volatile_upper: true,
        }];
        for o in others {
            views.push(rbuild_runtime::View { lowers: self.lowers(o)?, upper: None, volatile_upper: false });
        }
        let r = rbuild_runtime::with_views(&self.store.tmp_dir(), &views, |roots| {
            f(copy::Root { path: &roots[0], upper: Some(&upper) }, &roots[1..])
        })
        .map_err(|e| BuildError::msg(e.to_string()))??;
        Ok((dir, r))
    }

    /// Commits `upper` as the step's layer and records it in the cache and the state.
    ///
    /// A step whose diff would have no entries makes no layer, whatever the instruction:
    /// docker commits every step and appends the diff only when it is not the empty tar
    /// (`image.NewChildImage`, `layer.IsEmpty`), marking the history entry `empty_layer`.
    /// With overlay2's native diff that diff is the upper dir, so a RUN that only reads,
    /// or a COPY that lands nothing below `/`, adds no layer. The cache records the same
    /// (`"layer": null`), so a cached rebuild makes the same image.
    fn commit_dir(&self, st: &mut State, upper: &Path) -> Result<Option<LayerRef>> {
        if rbuild_store::layer::writes_nothing(upper)? {
            self.remember(st, None)?;
            return Ok(None);
        }
        let opts = WriteOptions { overlay: true, mtime_clamp: Some(st.clamp), fix_source: true };
        let layer = self.store.commit_dir(upper, &opts, true)?;
        self.remember(st, Some(&layer))?;
        st.config.rootfs.diff_ids.push(layer.diff_id);
        st.layers.push(layer.clone());
        Ok(Some(layer))
    }

    fn run(
        &self,
        st: &mut State,
        run: &Run,
        ins: &Instruction,
        label: &str,
        index: usize,
        total: usize,
    ) -> FResult<()> {
        let span = ins.span;
        let text = ins.source.trim();
        let mut cl = run.cmd.clone();
        // Here-documents: a lone `<<EOF` runs its body; otherwise bodies follow the line.
        if cl.shell_form && !cl.heredocs.is_empty() {
            let body = |h: &rbuild_parser::ast::Heredoc| -> String {
                if h.chomp {
                    h.content.lines().map(|l| l.trim_start_matches('\t')).collect::<Vec<_>>().join("\n") + "\n"
                } else {
                    h.content.clone()
                }
            };
            let line = cl.args.join(" ");
            let lone = cl.heredocs.len() == 1
                && line.trim().trim_start_matches("<<").trim_start_matches('-').trim_matches(|c| c == '"' || c == '\'')
                    == cl.heredocs[0].name;
            if lone {
                cl.args = vec![body(&cl.heredocs[0])];
            } else {
                let mut s = line;
                for h in &cl.heredocs {
                    s.push('\n');
                    s.push_str(&body(h));
                    s.push_str(&h.name);
                }
                cl.args = vec![s];
            }
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
                return Err(BuildError::at("No command specified", span).into());
            }
        }
        let mut env = st.config.config.env.clone();
        env.extend(st.run_args());
        let network = match run.network {
            Some(NetworkMode::None) => Network::None,
            Some(NetworkMode::Host) => Network::Host,
            _ => self.opts.network.clone(),
        };
        let (mounts, mount_key) = self.run_mounts(st, run, span)?;
        let user = st.config.config.user.clone();
        let cwd = st.config.config.working_dir.clone();
        let net_s = format!("{network:?}");
        st.chain(&[
            b"RUN",
            argv.join("\0").as_bytes(),
            env.join("\0").as_bytes(),
            user.as_bytes(),
            cwd.as_bytes(),
            net_s.as_bytes(),
            mount_key.as_bytes(),
        ]);
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
                .map_err(|e| BuildError::at(format!("creating a volume for {v}: {e}"), span))?;
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
        })
        .map_err(|e| BuildError::at(e.to_string(), span))?;
        if code != 0 {
            self.progress.event(Event::Failed { id });
            self.check_cancel()?;
            let cmd = ins.source.trim();
            return Err(Failure {
                error: BuildError::at(format!("{cmd:?} did not complete successfully: exit code: {code}"), span),
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
    /// context. Returns the mounts and their part of the cache key.
    fn run_mounts(&self, st: &State, run: &Run, span: Span) -> Result<(Vec<RtMount>, String)> {
        let mut out = Vec::new();
        let mut key = String::new();
        for m in &run.mounts {
            key.push_str(&m.spec);
            key.push('\0');
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
                    let dir = self.store.state_dir().join("buildcache").join(&hash_parts(&[id.as_bytes()])[..32]);
                    if !dir.exists() {
                        std::fs::create_dir_all(&dir)
                            .map_err(|e| BuildError::at(format!("creating cache mount: {e}"), span))?;
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
                    let ctx = self
                        .opts
                        .context
                        .as_ref()
                        .ok_or_else(|| BuildError::at("RUN --mount=type=bind needs a build context", span))?;
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
                    key.push_str(&items_digest(&items));
                    out.push(RtMount { target, kind: MountKind::Bind { source: src, readonly: true } });
                }
                _ => {
                    return Err(BuildError::at(
                        format!(
                            "RUN --mount={} is not supported by rbuild yet (types: cache, tmpfs, bind of the context)",
                            m.spec
                        ),
                        span,
                    ))
                }
            }
        }
        Ok((out, key))
    }

    #[allow(clippy::too_many_arguments)]
    fn copy(
        &self,
        st: &mut State,
        c: &Copy,
        add: bool,
        ins: &Instruction,
        label: &str,
        index: usize,
        total: usize,
    ) -> FResult<()> {
        let span = ins.span;
        let text = ins.source.trim();
        let kw = if add { "ADD" } else { "COPY" };
        let env = meta::StepEnv { env: &st.env, args: &st.args };
        let words = Words { lex: Lexer::new(st.escape), env: &env, span };
        let at = |e: BuildError| match e {
            BuildError::Instruction { message, span: None } => BuildError::at(format!("{kw} failed: {message}"), span),
            other => other,
        };
        let mut sources = Vec::new();
        for s in &c.sources {
            sources.push(words.word(s)?);
        }
        let mut dest = words.word(&c.dest)?;
        if dest.is_empty() {
            return Err(BuildError::at(format!("{kw} needs a destination"), span).into());
        }
        {
            // Relative to WORKDIR, cleaned lexically (`/link/..` is `/`, whatever `link`
            // points to), a trailing slash kept: it means "a directory".
            let slash = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
            let joined =
                if dest.starts_with('/') { dest.clone() } else { format!("{}/{}", st.config.config.working_dir, dest) };
            dest = format!("/{}", meta::clean_path(&joined).trim_start_matches('/'));
            if slash && !dest.ends_with('/') {
                dest.push('/');
            }
        }
        let chmod = match &c.chmod {
            Some(m) => Some(
                u32::from_str_radix(&words.word(m)?, 8)
                    .map_err(|_| BuildError::at(format!("invalid --chmod={m}: expected an octal mode"), span))?,
            ),
            None => None,
        };
        let chown = match &c.chown {
            Some(o) => Some(words.word(o)?),
            None => None,
        };
        let exclude = if c.exclude.is_empty() {
            None
        } else {
            Some(Matcher::new(&c.exclude).map_err(|e| BuildError::at(format!("invalid --exclude: {e}"), span))?)
        };

        // Where the sources come from.
        enum From {
            Context,
            Layers(Vec<LayerRef>, String),
        }
        let from = match &c.from {
            None => From::Context,
            Some(f) => {
                let f = words.word(f)?;
                let stage = match self.df.stages.iter().position(|s| s.name() == Some(f.to_lowercase().as_str())) {
                    Some(j) => Some(j),
                    // A number is a stage, never an image to look up.
                    None => rbuild_parser::graph::stage_index(&f, self.df.stages.len())
                        .transpose()
                        .map_err(|e| BuildError::at(e, span))?,
                };
                match stage {
                    Some(j) => {
                        let o =
                            self.outs.lock().unwrap_or_else(|e| e.into_inner()).get(j).cloned().flatten().ok_or_else(
                                || BuildError::at(format!("invalid from flag value {f}: stage not built"), span),
                            )?;
                        From::Layers(o.layers, o.key)
                    }
                    None => {
                        let img = self
                            .image(&f, false)
                            .map_err(|e| BuildError::at(format!("invalid from flag value {f}: {e}"), span))?;
                        From::Layers(img.layers.clone(), img.id().to_string())
                    }
                }
            }
        };
        let (id, t0) = self.start(label, index, total, text);
        // Context sources are selected and hashed now; stage sources inside the mount.
        let mut ctx_items: Vec<Item> = Vec::new();
        let mut downloads: Vec<(String, PathBuf, String, i64)> = Vec::new(); // (name, file, digest, mtime)
        let mut dl_dir: Option<TempDir> = None;
        let src_key = match &from {
            From::Context => {
                let ctx = self.opts.context.clone();
                let mut parts = Vec::new();
                for s in &sources {
                    if add && (s.starts_with("http://") || s.starts_with("https://")) {
                        let dl = match &dl_dir {
                            Some(d) => d,
                            None => dl_dir.insert(self.store.temp_guard("add")?),
                        };
                        // One file per URL: an ADD may name several.
                        let file = dl.path().join(format!("download-{}", downloads.len()));
                        let (digest, mtime) = download(s, &file, c.checksum.as_deref())
                            .map_err(|e| BuildError::at(format!("ADD failed: {e}"), span))?;
                        let name = s
                            .split(['?', '#'])
                            .next()
                            .unwrap_or(s)
                            .trim_end_matches('/')
                            .rsplit('/')
                            .next()
                            .unwrap_or("")
                            .to_string();
                        parts.push(format!("url\0{s}\0{digest}"));
                        downloads.push((if name.is_empty() { "download".into() } else { name }, file, digest, mtime));
                        continue;
                    }
                    let Some(ctx) = &ctx else {
                        return Err(BuildError::at(format!("{kw} failed: no build context: {s}"), span).into());
                    };
                    let src = Source {
                        root: ctx.clone(),
                        ignore: Some(&self.ignore),
                        exclude: exclude.clone(),
                        parallel: true,
                    };
                    let mut items = src.select(s).map_err(at)?;
                    if let Some(sc) = &self.statcache {
                        sc.fill(&mut items)?;
                    }
                    parts.push(items_digest(&items));
                    ctx_items.extend(items);
                }
                if ctx_items.is_empty() && downloads.is_empty() && c.inline.is_empty() {
                    return Err(BuildError::at(format!("{kw} failed: no source files were specified"), span).into());
                }
                parts.join("\0")
            }
            From::Layers(_, key) => key.clone(),
        };
        let n_sources = ctx_items.len() + downloads.len() + c.inline.len();
        if n_sources > 1 && !dest.ends_with('/') && matches!(from, From::Context) {
            return Err(BuildError::at(format!("When using {kw} with more than one source file, the destination must be a directory and end with a /"), span).into());
        }
        let inline: Vec<(String, String)> = c.inline.iter().map(|h| (h.name.clone(), h.content.clone())).collect();
        st.chain(&[
            kw.as_bytes(),
            sources.join("\0").as_bytes(),
            dest.as_bytes(),
            chown.as_deref().unwrap_or("").as_bytes(),
            format!("{chmod:?}").as_bytes(),
            c.exclude.join("\0").as_bytes(),
            src_key.as_bytes(),
            format!("{inline:?}").as_bytes(),
        ]);
        let created_by = format!("/bin/sh -c #(nop) {kw} {} in {dest} ", sources.join(" "));
        if let Some(layer) = self.cached(st, id) {
            st.history(created_by, layer.is_none());
            return Ok(());
        }
        let lowers_top = self.lowers(&st.layers)?;
        let identity = match &chown {
            Some(o) => rbuild_runtime::user::Accounts::from_layers(&lowers_top).resolve_chown(o).map_err(|e| {
                BuildError::at(
                    format!("{kw} failed: unable to convert uid/gid chown string to host mapping: {e}"),
                    span,
                )
            })?,
            None => (0, 0),
        };
        let others: Vec<Vec<LayerRef>> = match &from {
            From::Layers(l, _) => vec![l.clone()],
            From::Context => vec![],
        };
        let from_layers = matches!(from, From::Layers(..));
        let clamp = st.clamp;
        let wd = st.config.config.working_dir.clone();
        let r = self.in_rootfs(st, &others, |root, others| -> Result<()> {
            // docker made the working directory when it created the step's container.
            ensure_workdir(root.path, &wd)?;
            let o = CopyOpts { owner: if from_layers && chown.is_none() { None } else { Some(identity) }, chmod };
            if from_layers {
                let src = Source { root: others[0].clone(), ignore: None, exclude: exclude.clone(), parallel: false };
                let mut items = Vec::new();
                for s in &sources {
                    items.extend(src.select(s).map_err(at)?);
                }
                if items.len() > 1 && !dest.ends_with('/') {
                    return Err(BuildError::at(format!("When using {kw} with more than one source file, the destination must be a directory and end with a /"), span));
                }
                return copy::copy_items(root, &items, &dest, identity, &o).map_err(at);
            }
            for it in &ctx_items {
                if add && !it.is_dir() && copy::is_archive(&it.entries[0].host) {
                    copy::extract_archive(root.path, &it.entries[0].host, &dest).map_err(at)?;
                } else {
                    copy::copy_items(root, std::slice::from_ref(it), &dest, identity, &o).map_err(at)?;
                }
            }
            for (name, file, _, mtime) in &downloads {
                let data = std::fs::read(file).map_err(|e| BuildError::msg(format!("reading download: {e}")))?;
                copy::write_file(root.path, &dest, name, &data, chmod.unwrap_or(0o600), identity, identity, *mtime).map_err(at)?;
            }
            for (name, content) in &inline {
                copy::write_file(root.path, &dest, name, content.as_bytes(), chmod.unwrap_or(0o644), identity, identity, clamp).map_err(at)?;
            }
            Ok(())
        });
        let (dir, ()) = r?;
        st.workdir_gone = false;
        let layer = self.commit_dir(st, &dir.path().join("upper"))?;
        st.history(created_by, layer.is_none());
        self.progress.event(Event::Done { id, secs: t0.elapsed().as_secs_f64() });
        Ok(())
    }
}

/// The last lines of a step's output, for the failure message.
#[derive(Default)]
struct Tail {
    buf: Vec<u8>,
}

impl Tail {
    const KEEP: usize = 16 * 1024;
    fn push(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
        if self.buf.len() > 2 * Self::KEEP {
            self.buf.drain(..self.buf.len() - Self::KEEP);
        }
    }
    fn lines(&self) -> Vec<String> {
        let s = String::from_utf8_lossy(&self.buf);
        let v: Vec<String> = s.lines().map(String::from).collect();
        v[v.len().saturating_sub(10)..].to_vec()
    }
}

/// Makes the working directory `wd` (0755, root, with its parents) where the root lacks it.
fn ensure_workdir(root: &Path, wd: &str) -> Result<()> {
    if !wd.is_empty() && !crate::context::resolve_in_root(root, wd, true)?.is_dir() {
        copy::mkdir_all(root, wd, (0, 0))?;
    }
    Ok(())
}

/// Did a step whose writable layer is `upper` remove the working directory `wd` (or a
/// directory above it)? A whiteout, a non-directory, or an opaque directory without the
/// next name on the way says it may have; an untouched path says it did not.
fn workdir_removed(upper: &Path, wd: &str) -> bool {
    let parts: Vec<&str> = wd.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    let mut p = upper.to_path_buf();
    for (i, c) in parts.iter().enumerate() {
        p.push(c);
        let Ok(m) = std::fs::symlink_metadata(&p) else { return false };
        if !m.is_dir() {
            return true; // a whiteout (a 0/0 device), a file or a symlink now
        }
        let mut v = [0u8; 4];
        let opaque =
            rustix::fs::lgetxattr(&p, rbuild_store::layer::OPAQUE_XATTR, &mut v[..]).is_ok_and(|n| &v[..n] == b"y");
        if opaque && parts.get(i + 1).is_some_and(|next| std::fs::symlink_metadata(p.join(next)).is_err()) {
            return true;
        }
    }
    false
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Downloads `url` to the file `path`; returns its sha256 (checked against `checksum`)
/// and its Last-Modified time (0 when absent).
fn download(url: &str, path: &Path, checksum: Option<&str>) -> std::result::Result<(String, i64), String> {
    let resp = ureq::get(url).call().map_err(|e| format!("downloading {url}: {e}"))?;
    let mtime = resp
        .headers()
        .get("last-modified")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| chrono::DateTime::parse_from_rfc2822(s).ok())
        .map(|d| d.timestamp())
        .unwrap_or(0);
    let mut f = std::fs::File::create(path).map_err(|e| e.to_string())?;
    let mut body = resp.into_body();
    let mut r = body.as_reader();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = std::io::Read::read(&mut r, &mut buf).map_err(|e| format!("downloading {url}: {e}"))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        std::io::Write::write_all(&mut f, &buf[..n]).map_err(|e| e.to_string())?;
    }
    let digest = format!("sha256:{}", hex::encode(h.finalize()));
    if let Some(want) = checksum {
        if want != digest {
            return Err(format!("digest mismatch for {url}: expected {want}, got {digest}"));
        }
    }
    Ok((digest, mtime))
}
