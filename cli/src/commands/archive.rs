//! `save`, `load`, `import`.

use crate::cli::{ArchiveFormat, CompressionArg, ImportArgs, LoadArgs, SaveArgs};
use crate::commands::images::resolve_for_save;
use anyhow::{bail, Context};
use rbuild_store::archive::{self, SaveFormat};
use rbuild_store::compress::Compression;
use rbuild_store::config::{rfc3339, ImageConfig};
use rbuild_store::{AtomicWriter, Durability, Reference, Store};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

pub fn save(store: &Store, a: SaveArgs) -> anyhow::Result<ExitCode> {
    let images = resolve_for_save(store, &a.images)?;
    for i in &images {
        crate::commands::event(store, "image", "save", &i.image.config_digest.to_string(), &[]);
    }
    let compression = match a.compression {
        CompressionArg::None => Compression::None,
        CompressionArg::Gzip => Compression::Gzip,
        CompressionArg::Zstd => Compression::Zstd,
    };
    let format = match a.format {
        ArchiveFormat::DockerArchive => SaveFormat::DockerArchive,
        ArchiveFormat::OciArchive => SaveFormat::OciArchive,
        ArchiveFormat::OciDir => SaveFormat::OciDir,
    };
    if format == SaveFormat::OciDir {
        let Some(dir) = &a.output else { bail!("--format oci-dir needs -o DIRECTORY") };
        archive::save_oci_dir(store, &images, compression, dir)
            .with_context(|| format!("writing {}", dir.display()))?;
        return Ok(ExitCode::SUCCESS);
    }
    match &a.output {
        None => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            let mut lock = stdout.lock();
            archive::save(store, &images, format, compression, &mut lock)?;
            lock.flush()?;
        }
        Some(path) => {
            // Written beside the target and renamed: a failed save leaves no partial file.
            let f = AtomicWriter::create(path).with_context(|| format!("creating {}", path.display()))?;
            let mut w = std::io::BufWriter::new(f);
            archive::save(store, &images, format, compression, &mut w)?;
            let f = w.into_inner().map_err(|e| e.into_error())?;
            f.commit(Durability::Durable).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn load(store: &Store, a: LoadArgs) -> anyhow::Result<ExitCode> {
    let loaded = match &a.input {
        Some(p) => {
            let mut f = std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
            archive::load(store, &mut f).with_context(|| format!("cannot load {}", p.display()))?
        }
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                bail!("requested load from stdin, but stdin is empty (use -i FILE or a pipe)");
            }
            archive::load(store, &mut stdin.lock()).context("cannot load the archive from standard input")?
        }
    };
    for l in &loaded {
        let id = l.image.config_digest.to_string();
        if l.names.is_empty() {
            crate::commands::event(store, "image", "load", &id, &[]);
        }
        for n in &l.names {
            crate::commands::event(store, "image", "load", &id, &[("name", &n.familiar())]);
        }
    }
    if !a.quiet {
        for l in &loaded {
            if l.names.is_empty() {
                outln!("Loaded image ID: {}", l.image.config_digest)?;
            }
            for n in &l.names {
                outln!("Loaded image: {}", n.familiar())?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn import(store: &Store, a: ImportArgs) -> anyhow::Result<ExitCode> {
    let name = a.name.as_deref().map(Reference::parse).transpose()?;
    let mut config = ImageConfig::default();
    rbuild_builder::meta::apply_changes(&mut config, &a.changes)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let created = rfc3339(now.as_secs() as i64, now.subsec_nanos());
    let comment = a.message.clone().unwrap_or_else(|| format!("Imported from {}", a.file));
    let img = if a.file == "-" {
        archive::import(store, &mut std::io::stdin().lock(), config, &comment, created)
    } else {
        let mut f = std::fs::File::open(&a.file).with_context(|| format!("cannot open {}", a.file))?;
        archive::import(store, &mut f, config, &comment, created)
    }
    .with_context(|| format!("cannot import {}", a.file))?;
    match &name {
        Some(n) => store.set_name(n, img.manifest_digest, img.manifest_size)?,
        None => store.add_untagged(img.manifest_digest, img.manifest_size)?,
    }
    crate::commands::event(store, "image", "import", &img.config_digest.to_string(), &[]);
    outln!("{}", img.config_digest)?;
    Ok(ExitCode::SUCCESS)
}
