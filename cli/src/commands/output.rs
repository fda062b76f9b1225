//! `build --output` / `-o` and `--metadata-file`, as buildx reads and writes them.
//!
//! An output is a CSV list of KEY=VALUE (`type=local,dest=out`), a bare path (the local
//! exporter into it) or `-` (the filesystem as a tar on stdout). Types: `local`, `tar`,
//! `oci`, `docker` (a file `docker load` reads; without `dest` the image goes into the
//! store, as docker's loads it), `image` (into the store under `name=`, `push=true` also
//! pushes) and `registry` (= `image,push=true`). Several outputs may be given. Unknown
//! keys are ignored, as BuildKit ignores them.

use crate::commands::registry::Printer;
use anyhow::{bail, Context};
use rbuild_registry::client::{Client, ClientOptions};
use rbuild_registry::push::PushOptions;
use rbuild_store::archive::ManifestFormat;
use rbuild_store::compress::Compression;
use rbuild_store::export::{self, LayoutFormat, LayoutOptions};
use rbuild_store::{AtomicWriter, Durability, Image, Reference, Store};
use std::collections::BTreeMap;

/// What buildx's metadata file holds: its keys in order (buildx writes a Go map), the
/// descriptor's fields in BuildKit's order.
pub type Metadata = BTreeMap<&'static str, Meta>;

/// A value of the metadata file.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum Meta {
    Text(String),
    Descriptor(export::DescriptorJson),
}
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

/// Where a file output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    Stdout,
    File(PathBuf),
}

/// One `--output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// The filesystem into a directory.
    Local(PathBuf),
    /// The filesystem as a tar.
    Tar(Dest),
    /// An OCI layout (a tar, or a directory with `tar=false`).
    Layout { format: LayoutFormat, dest: Dest, tar: bool, compression: Compression, names: Vec<Reference> },
    /// The image into the store under `names`, and to its registry with `push`.
    Image { names: Vec<Reference>, push: bool, compression: Compression, oci: bool },
}

/// The outputs of one build.
#[derive(Debug, Default)]
pub struct Outputs {
    pub list: Vec<Output>,
}

/// Splits a CSV line (buildx reads `--output` with Go's encoding/csv): commas separate
/// fields, double quotes protect commas, `""` in quotes is a quote.
fn csv_fields(s: &str) -> anyhow::Result<Vec<String>> {
    let (mut fields, mut cur, mut quoted, mut chars) = (Vec::new(), String::new(), false, s.chars().peekable());
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if quoted {
        bail!("invalid output {s:?}: unterminated quote");
    }
    fields.push(cur);
    Ok(fields)
}

fn parse_bool(k: &str, v: &str) -> anyhow::Result<bool> {
    match v {
        "true" | "1" | "" => Ok(true),
        "false" | "0" => Ok(false),
        _ => bail!("invalid value {v:?} for {k} (true or false)"),
    }
}

fn parse_compression(v: &str) -> anyhow::Result<Compression> {
    Ok(match v {
        "uncompressed" => Compression::None,
        "gzip" => Compression::Gzip,
        "zstd" => Compression::Zstd,
        "estargz" => bail!("compression estargz is not supported (uncompressed, gzip or zstd)"),
        other => bail!("invalid compression type {other:?} (uncompressed, gzip or zstd)"),
    })
}

fn parse_names(v: &str) -> anyhow::Result<Vec<Reference>> {
    v.split(',')
        .filter(|n| !n.trim().is_empty())
        .map(|n| Reference::parse(n.trim()).with_context(|| format!("invalid image name {n:?}")))
        .collect()
}

/// The destination of a file output: `dest`, `-`, or stdout when it is not a terminal.
fn file_dest(typ: &str, dest: Option<String>) -> anyhow::Result<Dest> {
    match dest.as_deref() {
        Some("-") => Ok(Dest::Stdout),
        Some(d) if !d.is_empty() => Ok(Dest::File(PathBuf::from(d))),
        _ if std::io::stdout().is_terminal() => {
            bail!("dest file is required for {typ} exporter. refusing to write to console")
        }
        _ => Ok(Dest::Stdout),
    }
}

impl Output {
    /// Parses one `--output` value; `tags` are the build's `-t` names (the image
    /// outputs' default names).
    pub fn parse(s: &str, tags: &[Reference]) -> anyhow::Result<Output> {
        let fields = csv_fields(s)?;
        if fields.len() == 1 && !s.starts_with("type=") {
            return Ok(if s == "-" { Output::Tar(Dest::Stdout) } else { Output::Local(PathBuf::from(s)) });
        }
        let (mut typ, mut dest, mut names, mut push, mut tar, mut oci, mut compression) =
            (None, None, None, false, true, false, Compression::Gzip);
        for f in fields.iter().filter(|f| !f.is_empty()) {
            let Some((k, v)) = f.split_once('=') else { bail!("invalid value {f:?} in output {s:?}") };
            let k = k.trim().to_ascii_lowercase();
            match k.as_str() {
                "type" => typ = Some(v.to_string()),
                "dest" => dest = Some(v.to_string()),
                "name" => names = Some(parse_names(v)?),
                "push" => push = parse_bool(&k, v)?,
                "tar" => tar = parse_bool(&k, v)?,
                "oci-mediatypes" => oci = parse_bool(&k, v)?,
                "compression" => compression = parse_compression(v)?,
                // compression-level, force-compression, annotations, unpack, store, …
                _ => {}
            }
        }
        let names = names.unwrap_or_else(|| tags.to_vec());
        let layout = |format| -> anyhow::Result<Output> {
            let typ = if format == LayoutFormat::Oci { "oci" } else { "docker" };
            if format == LayoutFormat::Docker && compression == Compression::Zstd {
                bail!("compression zstd needs type=oci (a docker image cannot carry zstd layers)");
            }
            let dest = if tar {
                file_dest(typ, dest.clone())?
            } else {
                match dest.clone().filter(|d| !d.is_empty() && d != "-") {
                    Some(d) => Dest::File(d.into()),
                    None => bail!("dest is required for {typ} exporter with tar=false"),
                }
            };
            Ok(Output::Layout { format, dest, tar, compression, names: names.clone() })
        };
        match typ.as_deref() {
            None => bail!("type is required for output {s:?}"),
            Some("local") => match dest.filter(|d| !d.is_empty()) {
                Some(d) => Ok(Output::Local(d.into())),
                None => bail!("dest is required for local exporter"),
            },
            Some("tar") => Ok(Output::Tar(file_dest("tar", dest)?)),
            Some("oci") => layout(LayoutFormat::Oci),
            Some("docker") if dest.is_some() => layout(LayoutFormat::Docker),
            Some("docker") => Ok(Output::Image { names, push: false, compression, oci }),
            Some(t @ ("image" | "registry")) => {
                let push = push || t == "registry";
                if push && names.is_empty() {
                    bail!("push needs an image name (name=NAME or -t NAME)");
                }
                Ok(Output::Image { names, push, compression, oci })
            }
            Some(other) => bail!("exporter {other:?} could not be found (local, tar, oci, docker, image, registry)"),
        }
    }
}

impl Outputs {
    /// Parses every `--output` and checks them together; none means the image goes into
    /// the store under the `-t` names, as docker's `build` loads it.
    pub fn parse(specs: &[String], tags: &[Reference], iidfile: bool) -> anyhow::Result<Outputs> {
        let mut list: Vec<Output> = specs.iter().map(|s| Output::parse(s, tags)).collect::<anyhow::Result<_>>()?;
        if list.is_empty() {
            list.push(Output::Image { names: tags.to_vec(), push: false, compression: Compression::Gzip, oci: false });
        }
        let stdout = |o: &Output| matches!(o, Output::Tar(Dest::Stdout) | Output::Layout { dest: Dest::Stdout, .. });
        if list.iter().filter(|o| stdout(o)).count() > 1 {
            bail!("only one output can write to standard output");
        }
        if iidfile && list.iter().any(|o| matches!(o, Output::Local(_) | Output::Tar(_))) {
            bail!("local and tar exporters are incompatible with image ID file");
        }
        Ok(Outputs { list })
    }

    /// Whether an output writes to standard output (then `-q` does not print the ID).
    pub fn to_stdout(&self) -> bool {
        self.list.iter().any(|o| matches!(o, Output::Tar(Dest::Stdout) | Output::Layout { dest: Dest::Stdout, .. }))
    }

    /// Whether the image is kept in the store (by name, or untagged).
    pub fn stores_image(&self) -> bool {
        self.list.iter().any(|o| matches!(o, Output::Image { .. }))
    }

    /// The names the store gives the image, each once.
    pub fn names(&self) -> Vec<Reference> {
        let mut out: Vec<Reference> = Vec::new();
        for o in &self.list {
            if let Output::Image { names, .. } = o {
                for n in names {
                    if !out.contains(n) {
                        out.push(n.clone());
                    }
                }
            }
        }
        out
    }

    /// Writes every output but the store's names (the caller sets those first) and
    /// returns what buildx's metadata file says of them.
    pub fn export(&self, store: &Store, ropts: &ClientOptions, image: &Image, quiet: bool) -> anyhow::Result<Metadata> {
        let mut meta = Metadata::new();
        for o in &self.list {
            match o {
                Output::Local(dir) => export::rootfs_dir(store, image, dir)
                    .with_context(|| format!("exporting the filesystem to {}", dir.display()))?,
                Output::Tar(dest) => {
                    write_to(dest, |w| Ok(export::rootfs_tar(store, image, w)?)).context("exporting to a tar")?
                }
                Output::Layout { format, dest, tar, compression, names } => {
                    let opts = LayoutOptions { format: *format, compression: *compression, names: names.clone() };
                    let m = match (dest, tar) {
                        (Dest::File(d), false) => export::layout_dir(store, image, &opts, d)?,
                        _ => write_to(dest, |w| Ok(export::layout_tar(store, image, &opts, w)?))?,
                    };
                    image_meta(&mut meta, image, names);
                    meta.insert("containerimage.descriptor", Meta::Descriptor(m.descriptor(image)));
                    meta.insert("containerimage.digest", Meta::Text(m.digest.to_string()));
                }
                Output::Image { names, push, compression, oci } => {
                    image_meta(&mut meta, image, names);
                    let m = export::ExportedManifest {
                        media_type: rbuild_store::config::MEDIA_TYPE_MANIFEST,
                        digest: image.manifest_digest,
                        size: image.manifest_size,
                    };
                    meta.insert("containerimage.descriptor", Meta::Descriptor(m.descriptor(image)));
                    meta.insert("containerimage.digest", Meta::Text(m.digest.to_string()));
                    if *push {
                        let d = push_all(store, ropts, image, names, *compression, *oci, quiet)?;
                        // The registry's manifest is another document than the store's.
                        meta.remove("containerimage.descriptor");
                        meta.insert("containerimage.digest", Meta::Text(d.to_string()));
                    }
                }
            }
        }
        Ok(meta)
    }
}

fn image_meta(meta: &mut Metadata, image: &Image, names: &[Reference]) {
    meta.insert("containerimage.config.digest", Meta::Text(image.config_digest.to_string()));
    if !names.is_empty() {
        let all: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        meta.insert("image.name", Meta::Text(all.join(",")));
    }
}

/// Pushes the image under every name (docker schema 2 unless `oci`, as docker 26's
/// image exporter pushes); returns the last manifest digest.
fn push_all(
    store: &Store,
    ropts: &ClientOptions,
    image: &Image,
    names: &[Reference],
    compression: Compression,
    oci: bool,
    quiet: bool,
) -> anyhow::Result<rbuild_store::Digest> {
    let popts = PushOptions {
        format: if oci || compression == Compression::Zstd { ManifestFormat::Oci } else { ManifestFormat::Docker },
        compression,
        ..PushOptions::default()
    };
    let mut last = image.manifest_digest;
    for r in names {
        let client = Client::new(&r.domain, ropts)?;
        let printer = Printer::new(quiet, "Pushing");
        last = rbuild_registry::push::push(store, &client, image, r, &popts, &printer)
            .with_context(|| format!("pushing {}", r.familiar()))?;
        store.record_repo_digest(&image.config_digest, &r.repository(), &last)?;
        crate::commands::event(store, "image", "push", &r.familiar(), &[("name", &r.familiar_repository())]);
    }
    Ok(last)
}

/// Runs `f` on the destination: stdout, or a file that appears complete or not at all
/// (written beside it, then renamed).
fn write_to<T>(dest: &Dest, f: impl FnOnce(&mut dyn Write) -> anyhow::Result<T>) -> anyhow::Result<T> {
    match dest {
        Dest::Stdout => {
            let mut out = std::io::stdout().lock();
            let v = f(&mut out)?;
            out.flush().context("writing to standard output")?;
            Ok(v)
        }
        Dest::File(p) => {
            p.file_name().with_context(|| format!("{} is not a file name", p.display()))?;
            if let Some(d) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            }
            let mut file = AtomicWriter::create(p).with_context(|| format!("creating {}", p.display()))?;
            let v = f(&mut file)?;
            file.commit(Durability::Durable).with_context(|| format!("writing {}", p.display()))?;
            Ok(v)
        }
    }
}

/// Writes buildx's metadata file (`--metadata-file`): the keys as JSON, pretty-printed.
pub fn write_metadata(path: &Path, meta: &Metadata) -> anyhow::Result<()> {
    let mut b = serde_json::to_vec_pretty(meta).context("encoding the metadata")?;
    b.push(b'\n');
    std::fs::write(path, b).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> anyhow::Result<Output> {
        Output::parse(s, &[Reference::parse("org/app:1").unwrap()])
    }

    #[test]
    fn shorthands_are_local_and_stdout_tar() {
        assert_eq!(parse("out").unwrap(), Output::Local("out".into()));
        assert_eq!(parse("-").unwrap(), Output::Tar(Dest::Stdout));
        assert_eq!(parse("type=local,dest=o").unwrap(), Output::Local("o".into()));
        // A single field that is not type=…: a path, even with '=' in it, as buildx has it.
        assert_eq!(parse("dest=x").unwrap(), Output::Local("dest=x".into()));
    }

    #[test]
    fn buildx_errors() {
        let err = |s: &str| parse(s).unwrap_err().to_string();
        assert_eq!(err("type=local"), "dest is required for local exporter");
        assert!(err("type=foo,dest=x").starts_with("exporter \"foo\" could not be found"), "{}", err("type=foo"));
        assert!(err("dest=x,name=y").starts_with("type is required"));
        assert!(err("type=oci,dest=x,compression=lz4").contains("invalid compression type"));
        assert!(err("type=docker,dest=x,compression=zstd").contains("zstd"));
        assert!(Output::parse("type=registry", &[]).unwrap_err().to_string().contains("push needs an image name"));
    }

    #[test]
    fn image_outputs_take_the_tags_unless_named() {
        let Output::Image { names, push, .. } = parse("type=image").unwrap() else { panic!() };
        assert_eq!(names[0].familiar(), "org/app:1");
        assert!(!push);
        let Output::Image { names, push, .. } = parse("type=registry,\"name=a/b:1,a/b:2\"").unwrap() else { panic!() };
        assert_eq!(names.iter().map(|n| n.familiar()).collect::<Vec<_>>(), ["a/b:1", "a/b:2"]);
        assert!(push);
        let Output::Layout { format, tar, dest, .. } = parse("type=oci,dest=o,tar=false").unwrap() else { panic!() };
        assert_eq!((format, tar, dest), (LayoutFormat::Oci, false, Dest::File("o".into())));
        // docker without dest: into the store, as `docker build --load`.
        assert!(matches!(parse("type=docker").unwrap(), Output::Image { push: false, .. }));
    }

    #[test]
    fn outputs_checked_together() {
        let tags = [];
        let two = ["-".to_string(), "type=oci,dest=-".to_string()];
        assert!(Outputs::parse(&two, &tags, false).unwrap_err().to_string().contains("only one output"));
        let e = Outputs::parse(&["o".to_string()], &tags, true).unwrap_err().to_string();
        assert_eq!(e, "local and tar exporters are incompatible with image ID file");
        let none = Outputs::parse(&[], &tags, true).unwrap();
        assert!(none.stores_image() && none.names().is_empty());
    }

    #[test]
    fn csv_quotes() {
        assert_eq!(csv_fields("a=1,\"b=2,3\",c").unwrap(), ["a=1", "b=2,3", "c"]);
        assert!(csv_fields("a=\"x").is_err());
    }
}
