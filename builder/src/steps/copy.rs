//! COPY (and ADD, which is COPY with URLs and archives).

use crate::build::{Ctx, FResult};
use crate::builder::Event;
use crate::cache_key::{image_key, CacheKey, KeyKind};
use crate::context::{items_digest, Item, Source};
use crate::copy::{self, CopyOpts};
use crate::error::{BuildError, Result};
use crate::ignore::Matcher;
use crate::meta::{self, Words};
use crate::stage::State;
use crate::steps::add::download;
use crate::steps::ensure_workdir;
use rbuild_parser::instruction::{CopyArgs, FromRef, Instruction};
use rbuild_parser::shell::Lexer;
use rbuild_store::{LayerRef, TempDir};
use std::path::PathBuf;

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
        let text = ins.source.trim();
        let kw = if add { "ADD" } else { "COPY" };
        let env = meta::StepEnv { env: &st.env, args: &st.args };
        let words = Words { lex: Lexer::new(st.escape), env: &env };
        // What fails in selecting and copying files is said as docker says it.
        let at = |e: BuildError| BuildError::Copy { kw, source: Box::new(e) };
        let mut sources = Vec::new();
        for s in &c.sources {
            sources.push(words.word(s)?);
        }
        let mut dest = words.word(&c.dest)?;
        if dest.is_empty() {
            return Err(BuildError::NoDestination(kw).into());
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
            Some(m) => Some(u32::from_str_radix(&words.word(m)?, 8).map_err(|_| BuildError::Chmod(m.clone()))?),
            None => None,
        };
        let chown = match &c.chown {
            Some(o) => Some(words.word(o)?),
            None => None,
        };
        let exclude =
            if c.exclude.is_empty() { None } else { Some(Matcher::new(&c.exclude).map_err(BuildError::Exclude)?) };

        // Where the sources come from.
        enum From {
            Context,
            /// A stage's or an image's layers, and their key.
            Layers(Vec<LayerRef>, CacheKey),
        }
        let from = match &c.from {
            None => From::Context,
            Some(FromRef { stage: Some(j), name }) => {
                let o = self
                    .outs
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(*j)
                    .cloned()
                    .flatten()
                    .ok_or_else(|| BuildError::StageNotBuilt(name.clone()))?;
                From::Layers(o.layers, o.key)
            }
            Some(FromRef { stage: None, name }) => {
                let img = self
                    .image(name, false)
                    .map_err(|e| BuildError::FromImage { name: name.clone(), source: Box::new(e) })?;
                From::Layers(img.layers.clone(), image_key(&img))
            }
        };
        let (id, t0) = self.start(label, index, total, text);
        // Context sources are selected and hashed now; stage sources inside the mount.
        let mut ctx_items: Vec<Item> = Vec::new();
        let mut downloads: Vec<(String, PathBuf, String, i64)> = Vec::new(); // (name, file, digest, mtime)
        let mut dl_dir: Option<TempDir> = None;
        // What the context sources are, by content: a digest of the selected files, or an
        // URL and the digest of what it served.
        let mut parts: Vec<(&str, String)> = Vec::new();
        match &from {
            From::Context => {
                let ctx = self.opts.context.clone();
                for s in &sources {
                    if add && (s.starts_with("http://") || s.starts_with("https://")) {
                        let dl = match &dl_dir {
                            Some(d) => d,
                            None => dl_dir.insert(self.store.temp_guard("add")?),
                        };
                        // One file per URL: an ADD may name several.
                        let file = dl.path().join(format!("download-{}", downloads.len()));
                        let (digest, mtime) = download(s, &file, c.checksum.as_deref()).map_err(at)?;
                        let name = s
                            .split(['?', '#'])
                            .next()
                            .unwrap_or(s)
                            .trim_end_matches('/')
                            .rsplit('/')
                            .next()
                            .unwrap_or("")
                            .to_string();
                        parts.push((s.as_str(), digest.clone()));
                        downloads.push((if name.is_empty() { "download".into() } else { name }, file, digest, mtime));
                        continue;
                    }
                    let Some(ctx) = &ctx else {
                        return Err(at(BuildError::NoContext(s.clone())).into());
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
                    parts.push(("", items_digest(&items)));
                    ctx_items.extend(items);
                }
                if ctx_items.is_empty() && downloads.is_empty() && c.inline.is_empty() {
                    return Err(at(BuildError::NoSources).into());
                }
            }
            From::Layers(..) => {}
        }
        let n_sources = ctx_items.len() + downloads.len() + c.inline.len();
        if n_sources > 1 && !dest.ends_with('/') && matches!(from, From::Context) {
            return Err(BuildError::MultipleSources(kw).into());
        }
        let inline: Vec<(String, String)> = c.inline.iter().map(|h| (h.name.clone(), h.content.clone())).collect();
        st.chain(if add { KeyKind::Add } else { KeyKind::Copy }, |k| {
            k.part("the sources").texts(&sources);
            k.part("the destination").text(&dest);
            k.part("--chown").opt_text(chown.as_deref());
            k.part("--chmod").opt_num(chmod.map(u64::from));
            k.part("--exclude").texts(&c.exclude);
            match &from {
                From::Context => {
                    k.part("the context files").text("context").num(parts.len() as u64);
                    for (url, digest) in &parts {
                        k.text(url).text(digest);
                        if !url.is_empty() {
                            k.item(url, digest);
                        }
                    }
                    for (path, digest) in crate::explain::file_items(&ctx_items) {
                        k.item(&path, &digest);
                    }
                }
                From::Layers(_, key) => {
                    k.part("what it copies from").text("layers").key(key);
                }
            }
            k.part("the here-documents").num(inline.len() as u64);
            for (name, content) in &inline {
                k.text(name).text(content);
            }
        });
        let created_by = format!("/bin/sh -c #(nop) {kw} {} in {dest} ", sources.join(" "));
        if let Some(layer) = self.cached(st, id) {
            st.history(created_by, layer.is_none());
            return Ok(());
        }
        let lowers_top = self.lowers(&st.layers)?;
        let identity = match &chown {
            Some(o) => rbuild_runtime::user::Accounts::from_layers(&lowers_top)
                .resolve_chown(o)
                .map_err(|e| at(BuildError::Chown(e)))?,
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
                    return Err(BuildError::MultipleSources(kw));
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
                let data = std::fs::read(file).map_err(BuildError::io("reading", file))?;
                copy::write_file(root.path, &dest, name, &data, chmod.unwrap_or(0o600), identity, identity, *mtime)
                    .map_err(at)?;
            }
            for (name, content) in &inline {
                copy::write_file(
                    root.path,
                    &dest,
                    name,
                    content.as_bytes(),
                    chmod.unwrap_or(0o644),
                    identity,
                    identity,
                    clamp,
                )
                .map_err(at)?;
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
