//! Where files come from besides the build context: stages, images and named build
//! contexts (`--build-context NAME=DIR|docker-image://REF|oci-layout://PATH`), for FROM,
//! `COPY --from` and `RUN --mount=from=`.

use crate::build::Ctx;
use crate::builder::NamedContext;
use crate::cache_key::{image_key, CacheKey, KeyBuilder, KeyKind};
use crate::context::{items_digest, Source};
use crate::error::{BuildError, Result};
use crate::ignore::{read_dockerignore, Matcher};
use rbuild_parser::instruction::FromRef;
use rbuild_store::config::ImageConfig;
use rbuild_store::{Image, LayerRef};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Files to copy or mount from.
#[derive(Debug, Clone)]
pub(crate) enum Files {
    /// A directory of the host (the build context, a named local context) and its
    /// `.dockerignore`.
    Dir { root: PathBuf, ignore: Option<Matcher> },
    /// The layers of a stage or an image, and their key.
    Layers { layers: Vec<LayerRef>, key: CacheKey },
}

/// What a stage that starts from a named context starts with.
pub(crate) struct ContextBase {
    pub(crate) config: ImageConfig,
    pub(crate) layers: Vec<LayerRef>,
    pub(crate) key: CacheKey,
    /// The image, when the context is one (the stage is it while unchanged).
    pub(crate) image: Option<Image>,
}

impl Ctx<'_> {
    /// The files `--from=NAME` names: the stage the parser resolved, else a named
    /// context, else an image.
    pub(crate) fn files_of(&self, r: &FromRef) -> Result<Files> {
        if let Some(j) = r.stage {
            let o = self
                .outs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(j)
                .cloned()
                .flatten()
                .ok_or_else(|| BuildError::StageNotBuilt(r.name.clone()))?;
            return Ok(Files::Layers { layers: o.layers, key: o.key });
        }
        let image = match self.opts.contexts.get(&r.name) {
            Some(NamedContext::Dir(root)) => return Ok(Files::Dir { root: root.clone(), ignore: dir_ignore(root)? }),
            Some(ctx) => self.context_image(ctx),
            None => self.image(&r.name, false),
        }
        .map_err(|e| BuildError::FromImage { name: r.name.clone(), source: Box::new(e) })?;
        Ok(Files::Layers { layers: image.layers.clone(), key: image_key(&image) })
    }

    /// The start of a stage FROM the named context `name` (or replaced by it): an image's
    /// config and layers, or a directory's files as one layer (cached by their content).
    pub(crate) fn context_base(&self, name: &str) -> Result<ContextBase> {
        let ctx = self.opts.contexts.get(name).ok_or_else(|| BuildError::NoSuchImage(name.to_string()))?;
        let root = match ctx {
            NamedContext::Dir(root) => root,
            other => {
                let img = self.context_image(other)?;
                let key = image_key(&img);
                return Ok(ContextBase {
                    config: img.config.clone(),
                    layers: img.layers.clone(),
                    key,
                    image: Some(img),
                });
            }
        };
        let ignore = dir_ignore(root)?;
        let source = Source { root: root.clone(), ignore: ignore.as_ref(), exclude: None, parallel: true };
        let mut items = source.select(".")?;
        let key = KeyBuilder::new(KeyKind::Base).text("context").text(&items_digest(&items)).finish();
        if let Some(layer) = self.cached_layer(&key) {
            return Ok(ContextBase {
                config: ImageConfig::default(),
                layers: layer.into_iter().collect(),
                key,
                image: None,
            });
        }
        if let Some(sc) = &self.statcache {
            sc.fill(&mut items)?;
        }
        let (dir, ()) = self.in_layers(&[], |root| {
            let o = crate::copy::CopyOpts { owner: None, chmod: None };
            crate::copy::copy_items(root, &items, "/", (0, 0), &o)
        })?;
        let layer = self.commit_upper(&key, &dir.path().join("upper"), 0)?;
        Ok(ContextBase { config: ImageConfig::default(), layers: layer.into_iter().collect(), key, image: None })
    }

    /// The image a `docker-image://` or `oci-layout://` context names.
    fn context_image(&self, ctx: &NamedContext) -> Result<Image> {
        match ctx {
            NamedContext::Image(r) => self.image(r, false),
            NamedContext::OciLayout { path, reference } => self.oci_layout_image(path, reference.as_deref()),
            NamedContext::Dir(d) => Err(BuildError::NoSuchImage(d.display().to_string())),
        }
    }

    /// Loads the image of an OCI layout directory into the store: the one its index
    /// names by `reference` (a tag, or a manifest digest), or its only one.
    fn oci_layout_image(&self, path: &Path, reference: Option<&str>) -> Result<Image> {
        let config = layout_config(path, reference)?;
        let (r, w) = std::io::pipe().map_err(BuildError::io("creating a pipe for", path))?;
        let dir = path.to_path_buf();
        let writer = std::thread::spawn(move || tar_layout(&dir, w));
        let mut r = r;
        let loaded = rbuild_store::archive::load(self.store, &mut r as &mut dyn Read);
        drop(r);
        let written = writer.join().unwrap_or_else(|_| Err(std::io::Error::other("the tar writer panicked")));
        let loaded = loaded?;
        written.map_err(BuildError::io("reading", path))?;
        loaded
            .into_iter()
            .find(|l| l.image.config_digest.to_string() == config)
            .map(|l| l.image)
            .ok_or_else(|| BuildError::OciLayout { path: path.to_path_buf(), problem: "its image did not load".into() })
    }
}

/// The config digest of the image an OCI layout's index names by `reference`.
fn layout_config(path: &Path, reference: Option<&str>) -> Result<String> {
    let bad = |problem: &str| BuildError::OciLayout { path: path.to_path_buf(), problem: problem.to_string() };
    let read_json = |p: PathBuf| -> Result<serde_json::Value> {
        let data = std::fs::read(&p).map_err(BuildError::io("reading", &p))?;
        serde_json::from_slice(&data).map_err(|e| bad(&format!("{}: {e}", p.display())))
    };
    let index = read_json(path.join("index.json"))?;
    let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
    let matches = |m: &serde_json::Value| match reference {
        None => true,
        Some(r) if r.contains(':') && r.starts_with("sha256:") => m["digest"].as_str() == Some(r),
        Some(tag) => {
            let name = m["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap_or_default();
            name == tag || name.ends_with(&format!(":{tag}"))
        }
    };
    let found: Vec<&serde_json::Value> = manifests.iter().filter(|m| matches(m)).collect();
    let m = match found.as_slice() {
        [m] => *m,
        [] => return Err(bad(&format!("no image {}", reference.unwrap_or("")))),
        _ => return Err(bad("more than one image: name one (oci-layout://PATH:TAG or PATH@DIGEST)")),
    };
    let digest = m["digest"].as_str().ok_or_else(|| bad("a manifest without a digest"))?;
    let blob = |d: &str| path.join("blobs").join(d.replacen(':', "/", 1));
    let manifest = read_json(blob(digest))?;
    manifest["config"]["digest"].as_str().map(String::from).ok_or_else(|| bad("not an image manifest"))
}

/// The `.dockerignore` of a named local context.
fn dir_ignore(root: &Path) -> Result<Option<Matcher>> {
    match std::fs::read(root.join(".dockerignore")) {
        Ok(data) => Ok(Some(Matcher::new(&read_dockerignore(&data)).map_err(BuildError::DockerIgnore)?)),
        Err(_) => Ok(None),
    }
}

/// Writes the regular files of an OCI layout directory (`oci-layout`, `index.json`,
/// `blobs/…`) as a tar stream, for the store's archive loader.
fn tar_layout(dir: &Path, w: std::io::PipeWriter) -> std::io::Result<()> {
    let mut t = rbuild_store::tar::Writer::new(std::io::BufWriter::new(w));
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        let mut names: Vec<_> =
            std::fs::read_dir(dir.join(&rel))?.filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
        names.sort();
        for n in names {
            let r = rel.join(&n);
            let m = std::fs::metadata(dir.join(&r))?;
            if m.is_dir() {
                todo.push(r);
            } else if m.is_file() {
                let mut e = rbuild_store::tar::Entry::new(
                    r.to_string_lossy().as_bytes().to_vec(),
                    rbuild_store::tar::EntryKind::File,
                );
                e.size = m.len();
                e.mode = 0o644;
                t.append(&e, &mut std::fs::File::open(dir.join(&r))?)?;
            }
        }
    }
    t.finish()?;
    Ok(())
}
