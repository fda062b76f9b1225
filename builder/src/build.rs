//! The build: walks the stage graph (independent stages at the same time), computes each
//! step's cache key, runs RUN steps in the sandbox, copies files for COPY and ADD, and
//! commits every changed filesystem as a layer in the store.
//!
//! A failure carries the step's last output lines with the error; it happens once per
//! build, so its size on the error path does not matter.

use crate::builder::{BuildOptions, Built, Event, Failure, Progress};
use crate::cache_key::CacheKey;
use crate::context::StatCache;
use crate::error::{BuildError, Result};
use crate::ignore::{read_dockerignore, Matcher};
use rbuild_parser::graph::{Base, Graph, PROXY_ARGS};
use rbuild_parser::Dockerfile;
use rbuild_store::config::{rfc3339, ImageConfig};
use rbuild_store::{Image, LayerRef, Store};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

pub(crate) type FResult<T> = std::result::Result<T, Failure>;

/// A finished stage.
#[derive(Debug, Clone)]
pub(crate) struct StageOut {
    pub(crate) config: ImageConfig,
    pub(crate) layers: Vec<LayerRef>,
    pub(crate) key: CacheKey,
    /// What the stage is when no instruction changed its base: the base image itself
    /// (docker's result is then the base's image id, its config untouched), or nothing
    /// at all for `FROM scratch`.
    pub(crate) unchanged: Option<Unchanged>,
}

#[derive(Debug, Clone)]
pub(crate) enum Unchanged {
    Image(Box<Image>),
    Scratch,
}

pub(crate) struct Ctx<'a> {
    pub(crate) store: &'a Store,
    pub(crate) opts: &'a BuildOptions,
    pub(crate) df: &'a Dockerfile,
    pub(crate) graph: &'a Graph,
    pub(crate) progress: &'a dyn Progress,
    pub(crate) ignore: Matcher,
    pub(crate) statcache: Option<StatCache>,
    pub(crate) next_id: AtomicUsize,
    pub(crate) used_args: Mutex<BTreeSet<String>>,
    pub(crate) outs: Mutex<Vec<Option<StageOut>>>,
    /// (stage, key) of every step with a cache record, as the build met them.
    pub(crate) used_keys: Mutex<Vec<(usize, CacheKey)>>,
    /// Images pulled by this build (`--pull` refreshes each once).
    pub(crate) pulled: Mutex<BTreeMap<String, Image>>,
    /// The steps of this build and of the last build of the same Dockerfile, context and
    /// target, with the parts of their keys (`--explain-cache`).
    pub(crate) steps: Mutex<Vec<crate::explain::StepRecord>>,
    /// The last build's journal as stored: parsed only to explain a miss (see
    /// [`Ctx::previous`]), compared as bytes to decide whether to write this build's.
    pub(crate) previous_raw: Option<Vec<u8>>,
    pub(crate) previous: std::sync::OnceLock<crate::explain::Journal>,
    /// The cache mounts the build's RUN steps use: the store's name → directory.
    pub(crate) cache_mounts: Mutex<BTreeMap<String, std::path::PathBuf>>,
}

pub(crate) fn epoch_string(secs: i64) -> String {
    rfc3339(secs, 0)
}

/// Builds the Dockerfile; returns the (unnamed) image of the target stage.
pub(crate) fn build(store: &Store, opts: &BuildOptions, progress: &dyn Progress) -> FResult<Built> {
    let df = Dockerfile::parse(&opts.dockerfile)?;
    rbuild_parser::frontend::check_syntax(df.directives.syntax.as_deref(), &opts.dockerfile)?;
    if let Some(p) = &opts.platform {
        rbuild_parser::frontend::check_platform(p).map_err(BuildError::Platform)?;
    }
    let contexts = opts.contexts.keys().cloned().collect();
    let graph = Graph::build_with(&df, &opts.build_args, opts.target.as_deref(), &contexts)?;
    if opts.no_cache {
        // Every RUN step runs: the first ones' sandboxes start now (one a stage of the
        // first level that has one, as many as there are cores here), while the context
        // and the base images are looked at.
        let runs = |s: &&usize| crate::stage::stage_runs(&df, &graph, **s);
        let first = graph.levels.first().map_or(0, |l| l.iter().filter(runs).count());
        let any = graph.levels.iter().flatten().any(|s| runs(&s));
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        rbuild_runtime::step::start_ahead(if first > 0 { first.min(cores) } else { usize::from(any) });
    }
    let ignore = context_ignore(opts)?;
    let statcache = open_statcache(store, opts)?;
    let journal = crate::explain::journal_path(
        store.area("explain").map_err(BuildError::from)?.path(),
        opts.context.as_deref(),
        &opts.dockerfile_name,
        opts.target.as_deref(),
    );
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
        steps: Mutex::new(Vec::new()),
        cache_mounts: Mutex::new(BTreeMap::new()),
        previous_raw: std::fs::read(&journal).ok(),
        previous: std::sync::OnceLock::new(),
    };
    cx.run_levels()?;
    if let Some(sc) = &cx.statcache {
        sc.save();
    }
    let steps = std::mem::take(&mut *cx.steps.lock().unwrap_or_else(|e| e.into_inner()));
    let journal_now = crate::explain::Journal { steps };
    // A rebuild whose steps and keys are those of the last one leaves its journal as it is
    // (compared as stored: parsing the last one cost more than writing this one out).
    journal_now.save_if_changed(&journal, cx.previous_raw.as_deref());
    cx.warn_unused_args();
    cx.finish(journal_now)
}

/// The context's .dockerignore (none without a context).
fn context_ignore(opts: &BuildOptions) -> Result<Matcher> {
    match &opts.context {
        Some(c) => {
            let data = std::fs::read(c.join(".dockerignore")).unwrap_or_default();
            Matcher::new(&read_dockerignore(&data)).map_err(BuildError::DockerIgnore)
        }
        None => Ok(Matcher::default()),
    }
}

/// The stat cache of the context (in the store's "statcache" area, like all the builder's
/// files: they are declared in rbuild_store::area).
fn open_statcache(store: &Store, opts: &BuildOptions) -> Result<Option<StatCache>> {
    match &opts.context {
        Some(c) => {
            let canon = std::fs::canonicalize(c).unwrap_or_else(|_| c.clone());
            Ok(Some(StatCache::open(store.area("statcache").map_err(BuildError::from)?.path(), &canon)))
        }
        None => Ok(None),
    }
}

impl Ctx<'_> {
    /// Builds the graph's stages level by level, the stages of a level at the same time.
    fn run_levels(&self) -> FResult<()> {
        for level in &self.graph.levels {
            // A level of one stage (every level of a one-stage build) runs here: a thread
            // of its own was a clone, a stack and a join for nothing.
            if let [i] = level[..] {
                let run = std::panic::AssertUnwindSafe(|| self.run_stage(i));
                std::panic::catch_unwind(run).unwrap_or_else(|_| Err(BuildError::Panicked.into()))?;
                continue;
            }
            let results: Vec<FResult<()>> = std::thread::scope(|s| {
                let handles: Vec<_> = level.iter().map(|&i| s.spawn(move || self.run_stage(i))).collect();
                handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(BuildError::Panicked.into()))).collect()
            });
            for r in results {
                r?;
            }
        }
        Ok(())
    }

    /// The last build's journal, to explain a miss with: the store's, else the first
    /// `--cache-from` cache's.
    pub(crate) fn previous(&self) -> &crate::explain::Journal {
        self.previous.get_or_init(|| {
            self.previous_raw
                .as_deref()
                .and_then(crate::explain::Journal::from_json)
                .or_else(|| self.opts.cache_from.iter().find_map(|c| c.journal()))
                .unwrap_or_default()
        })
    }

    /// Warns of build args given but never declared (proxy args are always fine).
    fn warn_unused_args(&self) {
        let used = self.used_args.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let unused: Vec<&String> = self
            .opts
            .build_args
            .keys()
            .filter(|k| {
                !used.contains(*k) && !PROXY_ARGS.contains(&k.as_str()) && !self.graph.meta_args.contains_key(*k)
            })
            .collect();
        if !unused.is_empty() {
            let names: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
            self.progress.event(Event::Warning {
                message: format!("one or more build-args [{}] were not consumed", names.join(" ")),
            });
        }
    }

    /// The target stage as the build's image (written to the store unless it is the base
    /// image unchanged), with the keys and cache mounts the build used.
    fn finish(self, journal: crate::explain::Journal) -> FResult<Built> {
        let graph = self.graph;
        let out = self.outs.lock().unwrap_or_else(|e| e.into_inner())[graph.target]
            .clone()
            .ok_or(BuildError::TargetNotBuilt)?;
        // The chain of stages the target is FROM made the image's layers.
        let mut chain = BTreeSet::from([graph.target]);
        let mut at = graph.target;
        while let Base::Stage(j) = graph.stages[at].base {
            chain.insert(j);
            at = j;
        }
        let used = self.used_keys.into_inner().unwrap_or_else(|e| e.into_inner());
        let image_keys = used.iter().filter(|(st, _)| chain.contains(st)).map(|(_, k)| *k).collect();
        let all_keys = used.into_iter().map(|(_, k)| k).collect();
        let cache_mounts = self.cache_mounts.into_inner().unwrap_or_else(|e| e.into_inner()).into_iter().collect();
        let built = |image| Built { image, image_keys, all_keys, journal, cache_mounts };
        match out.unchanged {
            // docker's result is the base image (its id): nothing was committed.
            Some(Unchanged::Image(img)) => return Ok(built(*img)),
            Some(Unchanged::Scratch) => return Err(BuildError::NoImage.into()),
            None => {}
        }
        let mut config = out.config;
        config.rootfs.diff_ids = out.layers.iter().map(|l| l.diff_id).collect();
        Ok(built(self.store.write_image(&config, &out.layers)?))
    }
}

impl Ctx<'_> {
    pub(crate) fn stage_label(&self, i: usize) -> String {
        match self.df.stages[i].name() {
            Some(n) => n.to_string(),
            None => format!("stage-{i}"),
        }
    }

    pub(crate) fn start(&self, stage: &str, index: usize, total: usize, text: &str) -> (usize, Instant) {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        self.progress.event(Event::Step { id, stage, index, total, text });
        (id, Instant::now())
    }

    /// Adds a finished stage's steps to the build's journal.
    pub(crate) fn journal(&self, trail: Vec<crate::explain::StepRecord>) {
        self.steps.lock().unwrap_or_else(|e| e.into_inner()).extend(trail);
    }

    pub(crate) fn check_cancel(&self) -> Result<()> {
        if self.opts.cancel.load(Ordering::SeqCst) {
            return Err(BuildError::Interrupted);
        }
        Ok(())
    }

    /// An image by name: from the store, else (or, for a base image with `--pull`,
    /// first) from the image source.
    pub(crate) fn image(&self, r: &str, base: bool) -> Result<Image> {
        let source = self.opts.images.as_ref();
        let refresh = base && self.opts.pull && source.is_some();
        if !refresh {
            match self.store.image(r) {
                Ok(img) => return Ok(img),
                Err(rbuild_store::StoreError::ImageNotFound(_)) if source.is_some() => {}
                Err(rbuild_store::StoreError::ImageNotFound(_)) => return Err(BuildError::NoSuchImage(r.to_string())),
                Err(e) => return Err(e.into()),
            }
        }
        let Some(source) = source else { return Err(BuildError::NoSuchImage(r.to_string())) };
        // One pull per image and build, also when stages ask at the same time.
        let mut pulled = self.pulled.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(img) = pulled.get(r) {
            return Ok(img.clone());
        }
        let img = source.pull(self.store, r).map_err(BuildError::Pull)?;
        pulled.insert(r.to_string(), img.clone());
        Ok(img)
    }
}
