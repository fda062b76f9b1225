//! `images`, `tag`, `rmi`, `inspect` (images), `history`.

use crate::cli::{HistoryArgs, ImagesArgs, RmiArgs};
use crate::commands::format::{check_format, created_at, print_rows};
use crate::commands::util::{ago, human_size};
use anyhow::{bail, Context};
use rbuild_store::config::parse_rfc3339;
use rbuild_store::filter::{created_secs, ImageFilter};
use rbuild_store::{Image, Reference, Store};
use rbuild_template::Value;
use std::process::ExitCode;

/// One row of `images`: docker's ImageContext (keys sorted, as its JSON has them).
fn image_row(store: &Store, img: &Image, name: Option<&Reference>, no_trunc: bool) -> Value {
    let id = if no_trunc { img.config_digest.to_string() } else { img.config_digest.short() };
    let (repo, tag) = match name {
        Some(n) => (n.familiar_repository(), n.tag.clone().unwrap_or_else(|| "<none>".into())),
        None => ("<none>".into(), "<none>".into()),
    };
    // The registry's digest for this repository, never the store's own manifest digest.
    let digest = name
        .and_then(|n| {
            let repo = n.repository();
            n.digest.or_else(|| {
                store
                    .image_record(&img.config_digest)
                    .repo_digest_refs()
                    .iter()
                    .find(|r| r.repository() == repo)?
                    .digest
            })
        })
        .map_or_else(|| "<none>".to_string(), |d| d.to_string());
    let secs = created_secs(store, img);
    let size = human_size(store.image_content_size(img));
    Value::object([
        ("Containers", Value::from("N/A")),
        ("CreatedAt", created_at(secs).into()),
        ("CreatedSince", ago(secs).into()),
        ("Digest", digest.into()),
        ("ID", id.into()),
        ("Repository", repo.into()),
        ("SharedSize", "N/A".into()),
        ("Size", size.clone().into()),
        ("Tag", tag.into()),
        ("UniqueSize", "N/A".into()),
        ("VirtualSize", size.into()),
    ])
}

fn image_header() -> Value {
    Value::map([
        ("Containers", Value::from("CONTAINERS")),
        ("CreatedAt", "CREATED AT".into()),
        ("CreatedSince", "CREATED".into()),
        ("Digest", "DIGEST".into()),
        ("ID", "IMAGE ID".into()),
        ("Repository", "REPOSITORY".into()),
        ("SharedSize", "SHARED SIZE".into()),
        ("Size", "SIZE".into()),
        ("Tag", "TAG".into()),
        ("UniqueSize", "UNIQUE SIZE".into()),
        ("VirtualSize", "VIRTUAL SIZE".into()),
    ])
}

pub fn images(store: &Store, a: ImagesArgs) -> anyhow::Result<ExitCode> {
    check_format(a.format.as_deref())?;
    let mut filters = a.filter.clone();
    if let Some(r) = &a.repository {
        filters.push(format!("reference={r}"));
    }
    let filter = ImageFilter::parse(store, &filters)?;
    let mut imgs: Vec<Image> = store.images()?.into_iter().filter(|i| filter.matches_image(store, i)).collect();
    imgs.sort_by_key(|i| std::cmp::Reverse(created_secs(store, i)));
    // Rows: one per matching name; an image without names is one <none> row, unless names
    // were asked for (docker skips those then).
    let mut rows: Vec<(&Image, Option<Reference>)> = Vec::new();
    for i in &imgs {
        if i.names.is_empty() {
            if !filter.has_references() {
                rows.push((i, None));
            }
            continue;
        }
        let mut names: Vec<&Reference> = i.names.iter().filter(|n| filter.matches_name(n)).collect();
        names.sort();
        rows.extend(names.into_iter().map(|n| (i, Some(n.clone()))));
    }
    if a.quiet {
        let mut seen = Vec::new();
        for (i, _) in &rows {
            if !seen.contains(&i.config_digest) {
                seen.push(i.config_digest);
                outln!("{}", if a.no_trunc { i.config_digest.to_string() } else { i.config_digest.short() })?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let values: Vec<Value> = rows.iter().map(|(i, n)| image_row(store, i, n.as_ref(), a.no_trunc)).collect();
    let default = if a.digests {
        "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    } else {
        "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
    };
    print_rows(a.format.as_deref(), default, &values, &image_header())?;
    Ok(ExitCode::SUCCESS)
}

pub fn tag(store: &Store, source: &str, target: &str) -> anyhow::Result<ExitCode> {
    let img = store.image(source)?;
    let name = Reference::parse(target)?;
    if name.digest.is_some() {
        bail!("refusing to create a tag with a digest reference: {target}");
    }
    store.set_name(&name, img.manifest_digest, img.manifest_size)?;
    crate::commands::event(store, "image", "tag", &img.config_digest.to_string(), &[("name", &name.familiar())]);
    Ok(ExitCode::SUCCESS)
}

pub fn rmi(store: &Store, a: RmiArgs) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for spec in &a.images {
        match rmi_one(store, spec, a.force) {
            Ok(lines) => {
                for l in lines {
                    if let Some(n) = l.strip_prefix("Untagged: ") {
                        crate::commands::event(store, "image", "untag", n, &[("name", n)]);
                    }
                    if let Some(id) = l.strip_prefix("Deleted: ") {
                        crate::commands::event(store, "image", "delete", id, &[]);
                    }
                    outln!("{l}")?;
                }
            }
            Err(e) => {
                errln!("error: {}", crate::commands::render_error(&e));
                failed = true;
            }
        }
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn rmi_one(store: &Store, spec: &str, force: bool) -> anyhow::Result<Vec<String>> {
    Ok(store
        .remove_image(spec, force)?
        .into_iter()
        .map(|r| match r {
            rbuild_store::Removal::Untagged(n) => format!("Untagged: {}", n.familiar()),
            rbuild_store::Removal::Deleted(id) => format!("Deleted: {id}"),
        })
        .collect())
}

pub fn history(store: &Store, a: HistoryArgs) -> anyhow::Result<ExitCode> {
    check_format(a.format.as_deref())?;
    let img = store.image(&a.image)?;
    let mut layer_sizes = img.layers.iter().map(|l| l.size);
    let n = img.config.history.len();
    let mut rows: Vec<Value> = Vec::new();
    let mut ids = Vec::new();
    for (i, h) in img.config.history.iter().enumerate() {
        let size = if h.empty_layer { 0 } else { layer_sizes.next().unwrap_or(0) };
        let id = if i + 1 == n {
            if a.no_trunc {
                img.config_digest.to_string()
            } else {
                img.config_digest.short()
            }
        } else {
            "<missing>".into()
        };
        let mut by = h.created_by.clone().unwrap_or_default();
        if !a.no_trunc && by.chars().count() > 45 {
            by = by.chars().take(44).collect::<String>() + "…";
        }
        let secs = h.created.as_deref().map(parse_rfc3339).unwrap_or(0);
        let (since, at, size) = if a.human {
            (ago(secs), created_at(secs), human_size(size))
        } else {
            let t = h.created.clone().unwrap_or_default();
            (t.clone(), t, size.to_string())
        };
        ids.push(id.clone());
        rows.push(Value::object([
            ("Comment", Value::from(h.comment.clone().unwrap_or_default())),
            ("CreatedAt", at.into()),
            ("CreatedBy", by.into()),
            ("CreatedSince", since.into()),
            ("ID", id.into()),
            ("Size", size.into()),
        ]));
    }
    rows.reverse();
    ids.reverse();
    if a.quiet {
        for id in ids {
            outln!("{id}")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let header = Value::map([
        ("Comment", Value::from("COMMENT")),
        ("CreatedAt", "CREATED AT".into()),
        ("CreatedBy", "CREATED BY".into()),
        ("CreatedSince", "CREATED".into()),
        ("ID", "IMAGE".into()),
        ("Size", "SIZE".into()),
    ]);
    print_rows(
        a.format.as_deref(),
        "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}",
        &rows,
        &header,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Resolves a list of images for save: by name (that name is written), or by ID (no names).
pub fn resolve_for_save(store: &Store, specs: &[String]) -> anyhow::Result<Vec<rbuild_store::archive::SaveImage>> {
    let mut out: Vec<rbuild_store::archive::SaveImage> = Vec::new();
    for s in specs {
        let img = store.image(s).with_context(|| format!("cannot save {s}"))?;
        let names: Vec<Reference> = match Reference::parse(s) {
            Ok(r) if img.names.contains(&r) => vec![r],
            _ => vec![],
        };
        match out.iter_mut().find(|o| o.image.manifest_digest == img.manifest_digest) {
            Some(o) => o.names.extend(names),
            None => out.push(rbuild_store::archive::SaveImage { image: img, names }),
        }
    }
    Ok(out)
}
