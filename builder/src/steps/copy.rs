//! COPY and ADD: the sources selected and hashed before anything runs (the build context,
//! a named context, a stage or an image, URLs and git repositories for ADD, here-
//! documents), then copied into the stage's root — or, with `--link`, into an empty one,
//! so that the layer does not depend on what is below it and is reused when that changes.

use crate::build::{Ctx, FResult};
use crate::builder::Event;
use crate::cache_key::{CacheKey, KeyBuilder, KeyKind};
use crate::context::{items_digest, Item, Source};
use crate::copy::{self, CopyOpts, Root};
use crate::error::{BuildError, Result};
use crate::ignore::Matcher;
use crate::meta::{self, Words};
use crate::sources::Files;
use crate::stage::State;
use crate::steps::add::{Fetched, Remote};
use crate::steps::ensure_workdir;
use rbuild_parser::instruction::{CopyArgs, Instruction};
use rbuild_parser::shell::Lexer;
use rbuild_store::LayerRef;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A COPY or ADD with its words expanded.
pub(crate) struct Spec {
    pub(crate) kw: &'static str,
    pub(crate) add: bool,
    pub(crate) sources: Vec<String>,
    /// Absolute, cleaned; a trailing `/` says "a directory".
    pub(crate) dest: String,
    pub(crate) chown: Option<String>,
    pub(crate) chmod: Option<u32>,
    exclude: Option<Matcher>,
    excludes: Vec<String>,
    link: bool,
    parents: bool,
    /// Here-documents: name and content (expanded unless the delimiter was quoted).
    inline: Vec<(String, String)>,
    pub(crate) unpack: Option<bool>,
    pub(crate) keep_git_dir: bool,
    pub(crate) checksum: Option<String>,
}

/// The sources, found and known by content before the step runs.
#[derive(Default)]
struct Gathered {
    /// Files selected from a directory (the context, a named context, a git checkout),
    /// each with the part of its path that `--parents` keeps.
    items: Vec<(Item, PathBuf)>,
    /// Downloads and git checkouts (what keeps them on disk while the step runs).
    fetched: Vec<Fetched>,
    /// `--from` a stage or an image: selected inside its mounted root.
    layers: Option<(Vec<LayerRef>, CacheKey)>,
    /// What the sources are, for the key: (what, digest).
    parts: Vec<(String, String)>,
}

impl Ctx<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn copy(
        &self,
        st: &mut State,
        c: &CopyArgs,
        add: bool,
        ins: &Instruction,
        label: &str,
        index: usize,
        total: usize,
    ) -> FResult<()> {
        let spec = copy_spec(st, c, add)?;
        let at = |e: BuildError| at_copy(e, spec.kw);
        let files = match &c.from {
            Some(r) => Some(self.files_of(r)?),
            None => None,
        };
        let (id, t0) = self.start(label, index, total, ins.source.trim());
        let g = self.gather(&spec, files).map_err(at)?;
        // Named parts (and items) say which input changed when the step misses
        // (--explain-cache); they do not change the key's bytes.
        let inputs = |k: &mut KeyBuilder| {
            k.part("the sources").texts(&spec.sources);
            k.part("the destination").text(&spec.dest);
            k.part("--chown").opt_text(spec.chown.as_deref());
            k.part("--chmod").opt_num(spec.chmod.map(u64::from));
            k.part("--exclude").texts(&spec.excludes);
            k.part("the other flags").flag(spec.parents).opt_text(spec.checksum.as_deref());
            k.opt_num(spec.unpack.map(u64::from)).flag(spec.keep_git_dir);
            match &g.layers {
                Some((_, key)) => {
                    k.part("what it copies from").text("layers").key(key);
                }
                None => {
                    k.part("the context files").text("files").num(g.parts.len() as u64);
                    for (what, digest) in &g.parts {
                        k.text(what).text(digest);
                        if !what.is_empty() {
                            k.item(what, digest);
                        }
                    }
                    for (path, digest) in crate::explain::file_items(g.items.iter().map(|(i, _)| i)) {
                        k.item(&path, &digest);
                    }
                }
            }
            k.part("the here-documents").num(spec.inline.len() as u64);
            for (name, content) in &spec.inline {
                k.text(name).text(content);
            }
        };
        let kind = if add { KeyKind::Add } else { KeyKind::Copy };
        let created_by = format!("/bin/sh -c #(nop) {} {} in {} ", spec.kw, spec.sources.join(" "), spec.dest);
        if spec.link {
            let mut k = KeyBuilder::new(KeyKind::Link);
            k.text(spec.kw);
            inputs(&mut k);
            let link_key = k.finish();
            st.chain(kind, |k| {
                k.text("link").key(&link_key);
            });
            return Ok(self.copy_linked(st, &spec, &g, link_key, (id, t0), created_by).map_err(at)?);
        }
        st.chain(kind, inputs);
        if let Some(layer) = self.cached(st, id) {
            st.history(created_by, layer.is_none());
            return Ok(());
        }
        let identity = self.identity(st, &spec).map_err(at)?;
        let others: Vec<Vec<LayerRef>> = g.layers.iter().map(|(l, _)| l.clone()).collect();
        let (clamp, wd) = (st.clamp, st.config.config.working_dir.clone());
        let (dir, ()) = self.in_rootfs(st, &others, |root, others| -> Result<()> {
            // docker made the working directory when it created the step's container.
            ensure_workdir(root.path, &wd)?;
            put_sources(root, others, &spec, &g, identity, clamp).map_err(at)
        })?;
        st.workdir_gone = false;
        let layer = self.commit_dir(st, &dir.path().join("upper"))?;
        st.history(created_by, layer.is_none());
        self.progress.event(Event::Done { id, secs: t0.elapsed().as_secs_f64() });
        Ok(())
    }

    /// `COPY --link`: the layer is made on an empty root and recorded under a key of its
    /// own, so a stage whose earlier layers changed reuses it without copying again.
    fn copy_linked(
        &self,
        st: &mut State,
        spec: &Spec,
        g: &Gathered,
        link_key: CacheKey,
        (id, t0): (usize, Instant),
        created_by: String,
    ) -> Result<()> {
        if let Some(layer) = self.cached(st, id) {
            st.history(created_by, layer.is_none());
            return Ok(());
        }
        let (layer, reused) = match self.cached_layer(&link_key) {
            Some(layer) => (layer, true),
            None => {
                let identity = self.identity(st, spec)?;
                let others: Vec<Vec<LayerRef>> = g.layers.iter().map(|(l, _)| l.clone()).collect();
                let clamp = st.clamp;
                let (dir, ()) = self
                    .in_layers_with(&[], &others, |root, others| put_sources(root, others, spec, g, identity, clamp))?;
                (self.commit_upper(&link_key, &dir.path().join("upper"), clamp)?, false)
            }
        };
        if let Some(l) = &layer {
            st.config.rootfs.diff_ids.push(l.diff_id);
            st.layers.push(l.clone());
        }
        self.remember(st, layer.as_ref())?;
        st.history(created_by, layer.is_none());
        self.progress.event(if reused {
            Event::Cached { id }
        } else {
            Event::Done { id, secs: t0.elapsed().as_secs_f64() }
        });
        Ok(())
    }

    /// The owner `--chown` names, looked up in the stage's /etc/passwd and /etc/group
    /// (root without `--chown`).
    fn identity(&self, st: &State, spec: &Spec) -> Result<(u32, u32)> {
        match &spec.chown {
            Some(o) => {
                let lowers = self.lowers(&st.layers)?;
                rbuild_runtime::user::Accounts::from_layers(&lowers).resolve_chown(o).map_err(BuildError::Chown)
            }
            None => Ok((0, 0)),
        }
    }

    /// Finds the sources: selects and hashes files of a directory, fetches URLs and git
    /// repositories; a stage's or an image's files are selected when they are mounted.
    fn gather(&self, spec: &Spec, files: Option<Files>) -> Result<Gathered> {
        let mut g = Gathered::default();
        // The build context is read with its .dockerignore, a named context with its own.
        let (root, own_ignore, is_context) = match files {
            Some(Files::Layers { layers, key }) => {
                g.layers = Some((layers, key));
                return Ok(g);
            }
            Some(Files::Dir { root, ignore }) => (Some(root), ignore, false),
            None => (self.opts.context.clone(), None, true),
        };
        let ignore = if is_context { Some(&self.ignore) } else { own_ignore.as_ref() };
        for s in &spec.sources {
            if spec.add {
                if let Some(remote) = Remote::parse(s) {
                    let fetched = self.fetch(remote, spec)?;
                    g.parts.push((s.clone(), fetched.digest.clone()));
                    if let Some(dir) = &fetched.checkout {
                        let src =
                            Source { root: dir.clone(), ignore: None, exclude: spec.exclude.clone(), parallel: true };
                        let items = src.select(".")?;
                        g.items.extend(items.into_iter().map(|i| (i, PathBuf::new())));
                    }
                    g.fetched.push(fetched);
                    continue;
                }
                if spec.checksum.is_some() {
                    return Err(BuildError::ChecksumNotHttp);
                }
            }
            let Some(root) = &root else { return Err(BuildError::NoContext(s.clone())) };
            let src = Source { root: root.clone(), ignore, exclude: spec.exclude.clone(), parallel: true };
            let mut items = src.select(s)?;
            if let Some(sc) = self.statcache.as_ref().filter(|_| is_context) {
                sc.fill(&mut items)?;
            }
            g.parts.push((String::new(), items_digest(&items)));
            let pivot = parents_pivot(s);
            g.items.extend(items.into_iter().map(|i| {
                let kept = i.path.strip_prefix(&pivot).unwrap_or(&i.path).to_path_buf();
                (i, kept)
            }));
        }
        let fetched_files = g.fetched.iter().filter(|f| f.checkout.is_none()).count();
        if g.items.is_empty() && fetched_files == 0 && spec.inline.is_empty() {
            return Err(BuildError::NoSources);
        }
        if g.items.len() + fetched_files + spec.inline.len() > 1 && !spec.dest.ends_with('/') && !spec.parents {
            return Err(BuildError::MultipleSources(spec.kw));
        }
        Ok(g)
    }
}

/// A failure of a COPY step, said as docker says it (`COPY failed: …`), unless it is
/// about the instruction itself, the store's or the sandbox's.
fn at_copy(e: BuildError, kw: &'static str) -> BuildError {
    match e {
        e @ (BuildError::Store(_)
        | BuildError::Copy { .. }
        | BuildError::Runtime(_)
        | BuildError::MultipleSources(_)
        | BuildError::ChecksumNotHttp
        | BuildError::Expand(_)) => e,
        e => BuildError::Copy { kw, source: Box::new(e) },
    }
}

/// Expands the words of a COPY or ADD with the stage's ARGs and ENV.
fn copy_spec(st: &State, c: &CopyArgs, add: bool) -> Result<Spec> {
    let kw = if add { "ADD" } else { "COPY" };
    let env = meta::StepEnv { env: &st.env, args: &st.args };
    let words = Words { lex: Lexer::new(st.escape), env: &env };
    let sources = c.sources.iter().map(|s| words.word(s)).collect::<Result<Vec<_>>>()?;
    let dest = words.word(&c.dest)?;
    if dest.is_empty() {
        return Err(BuildError::NoDestination(kw));
    }
    let chmod = match &c.chmod {
        Some(m) => Some(u32::from_str_radix(&words.word(m)?, 8).map_err(|_| BuildError::Chmod(m.clone()))?),
        None => None,
    };
    let chown = c.chown.as_ref().map(|o| words.word(o)).transpose()?;
    let excludes = c.exclude.iter().map(|e| words.word(e)).collect::<Result<Vec<_>>>()?;
    let exclude = if excludes.is_empty() { None } else { Some(Matcher::new(&excludes).map_err(BuildError::Exclude)?) };
    // Unquoted here-documents expand variables as BuildKit does: quotes are plain text.
    let raw = Lexer { skip_process_quotes: true, ..Lexer::new(st.escape) };
    let mut inline = Vec::new();
    for h in &c.inline {
        let content = if h.expand { raw.process_word(&h.content, &env)? } else { h.content.clone() };
        inline.push((h.name.clone(), content));
    }
    let checksum = c.checksum.as_ref().map(|s| words.word(s)).transpose()?;
    if let Some(sum) = &checksum {
        let hex = sum.strip_prefix("sha256:").unwrap_or_default();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(BuildError::ChecksumFormat(sum.clone()));
        }
    }
    Ok(Spec {
        kw,
        add,
        sources,
        dest: absolute_dest(&st.config.config.working_dir, &dest),
        chown,
        chmod,
        exclude,
        excludes,
        link: c.link,
        parents: c.parents,
        inline,
        unpack: c.unpack,
        keep_git_dir: c.keep_git_dir,
        checksum,
    })
}

/// The destination relative to WORKDIR, cleaned lexically (`/link/..` is `/`, whatever
/// `link` points to), a trailing slash kept: it means "a directory".
fn absolute_dest(workdir: &str, dest: &str) -> String {
    let slash = dest.ends_with('/') || dest == "." || dest.ends_with("/.");
    let joined = if dest.starts_with('/') { dest.to_string() } else { format!("{workdir}/{dest}") };
    let mut out = format!("/{}", meta::clean_path(&joined).trim_start_matches('/'));
    if slash && !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// `COPY --parents a/./b/c`: what is left of `/./` is not kept in the destination.
fn parents_pivot(source: &str) -> PathBuf {
    match source.split_once("/./") {
        Some((pivot, _)) => PathBuf::from(crate::context::relative_source(pivot).unwrap_or_default()),
        None => PathBuf::new(),
    }
}

/// Copies the gathered sources into `root` (`others[0]`: the mounted stage or image of
/// `--from`).
fn put_sources(
    root: Root<'_>,
    others: &[PathBuf],
    spec: &Spec,
    g: &Gathered,
    identity: (u32, u32),
    clamp: i64,
) -> Result<()> {
    let from_layers = g.layers.is_some();
    // Files from a stage or an image keep their owners unless --chown says.
    let o =
        CopyOpts { owner: if from_layers && spec.chown.is_none() { None } else { Some(identity) }, chmod: spec.chmod };
    // Directories a copy makes for its destination are the --chown owner's.
    let made = if spec.chown.is_some() { identity } else { (0, 0) };
    if let Some(layers_root) = others.first().filter(|_| from_layers) {
        let src = Source { root: layers_root.clone(), ignore: None, exclude: spec.exclude.clone(), parallel: false };
        let mut items = Vec::new();
        for s in &spec.sources {
            let pivot = parents_pivot(s);
            items.extend(src.select(s)?.into_iter().map(|i| {
                let kept = i.path.strip_prefix(&pivot).unwrap_or(&i.path).to_path_buf();
                (i, kept)
            }));
        }
        if items.len() > 1 && !spec.dest.ends_with('/') && !spec.parents {
            return Err(BuildError::MultipleSources(spec.kw));
        }
        return place(root, &items, spec, made, &o);
    }
    for (it, kept) in &g.items {
        let unpack = spec.add && spec.unpack != Some(false) && !it.is_dir() && copy::is_archive(&it.entries[0].host);
        if unpack {
            copy::extract_archive(root.path, &it.entries[0].host, &spec.dest)?;
        } else {
            place(root, std::slice::from_ref(&(it.clone(), kept.clone())), spec, made, &o)?;
        }
    }
    for f in g.fetched.iter().filter(|f| f.checkout.is_none()) {
        let Some((name, file, mtime)) = &f.file else { continue };
        if spec.unpack == Some(true) && copy::is_archive(file) {
            copy::extract_archive(root.path, file, &spec.dest)?;
            continue;
        }
        let data = std::fs::read(file).map_err(BuildError::io("reading", file))?;
        copy::write_file(root.path, &spec.dest, name, &data, spec.chmod.unwrap_or(0o600), identity, made, *mtime)?;
    }
    for (name, content) in &spec.inline {
        let mode = spec.chmod.unwrap_or(0o644);
        copy::write_file(root.path, &spec.dest, name, content.as_bytes(), mode, identity, made, clamp)?;
    }
    Ok(())
}

/// Copies `items` to the destination; with `--parents`, each below the part of its path
/// it keeps.
fn place(root: Root<'_>, items: &[(Item, PathBuf)], spec: &Spec, made: (u32, u32), o: &CopyOpts) -> Result<()> {
    if !spec.parents {
        let items: Vec<Item> = items.iter().map(|(i, _)| i.clone()).collect();
        return copy::copy_items(root, &items, &spec.dest, made, o);
    }
    for (it, kept) in items {
        let below = if it.is_dir() { kept.as_path() } else { kept.parent().unwrap_or(Path::new("")) };
        let mut dest = spec.dest.trim_end_matches('/').to_string();
        for c in below.components() {
            dest.push('/');
            dest.push_str(&c.as_os_str().to_string_lossy());
        }
        dest.push('/');
        copy::copy_items(root, std::slice::from_ref(it), &dest, made, o)?;
    }
    Ok(())
}
