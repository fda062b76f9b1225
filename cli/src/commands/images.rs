//! `images`, `tag`, `rmi`, `inspect` (images), `history`.

use crate::cli::{HistoryArgs, ImagesArgs, RmiArgs};
use crate::commands::util::{ago, human_size, table};
use anyhow::{bail, Context};
use rbuild_store::config::parse_rfc3339;
use rbuild_store::{Image, Reference, Store};
use serde_json::{json, Value};
use std::process::ExitCode;

fn created_secs(img: &Image) -> i64 {
    img.config.created.as_deref().map(parse_rfc3339).unwrap_or(0)
}

pub fn images(store: &Store, a: ImagesArgs) -> anyhow::Result<ExitCode> {
    let mut imgs = store.images()?;
    imgs.sort_by_key(|i| std::cmp::Reverse(created_secs(i)));
    let filter =
        a.repository.as_deref().map(|r| Reference::parse(r).map(|x| x.repository()).unwrap_or_else(|_| r.to_string()));
    let id = |i: &Image| if a.no_trunc { i.config_digest.to_string() } else { i.config_digest.short() };
    if a.quiet {
        let mut seen = Vec::new();
        for i in &imgs {
            if !seen.contains(&i.config_digest) {
                seen.push(i.config_digest);
                outln!("{}", id(i))?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = vec![if a.digests {
        vec!["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]
    } else {
        vec!["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    }
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>()];
    for i in &imgs {
        let names: Vec<Option<&Reference>> =
            if i.names.is_empty() { vec![None] } else { i.names.iter().map(Some).collect() };
        for n in names {
            if let (Some(f), Some(n)) = (&filter, n) {
                if &n.repository() != f {
                    continue;
                }
            } else if filter.is_some() {
                continue;
            }
            let (repo, tag) = match n {
                Some(n) => (n.familiar_repository(), n.tag.clone().unwrap_or_else(|| "<none>".into())),
                None => ("<none>".into(), "<none>".into()),
            };
            let mut row = vec![repo, tag];
            if a.digests {
                row.push(i.manifest_digest.to_string());
            }
            row.extend([id(i), ago(created_secs(i)), human_size(i.size())]);
            rows.push(row);
        }
    }
    out!("{}", table(&rows))?;
    Ok(ExitCode::SUCCESS)
}

pub fn tag(store: &Store, source: &str, target: &str) -> anyhow::Result<ExitCode> {
    let img = store.image(source)?;
    let name = Reference::parse(target)?;
    if name.digest.is_some() {
        bail!("refusing to create a tag with a digest reference: {target}");
    }
    store.set_name(&name, img.manifest_digest, img.manifest_size)?;
    Ok(ExitCode::SUCCESS)
}

pub fn rmi(store: &Store, a: RmiArgs) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for spec in &a.images {
        match rmi_one(store, spec, a.force) {
            Ok(lines) => {
                for l in lines {
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
    let img = store.image(spec)?;
    let by_name = Reference::parse(spec).ok().filter(|r| img.names.contains(r));
    let users = store.pinned_by(&img.config_digest)?;
    if !users.is_empty() && !force && (by_name.is_none() || img.names.len() == 1) {
        bail!(
            "conflict: unable to remove {spec} (must be forced) - image {} is used by container {}",
            img.config_digest.short(),
            users.join(", ")
        );
    }
    let mut out = Vec::new();
    match by_name {
        Some(name) => {
            store.update_index(|entries| {
                entries.retain(|e| e.name.as_ref() != Some(&name));
                Ok(())
            })?;
            out.push(format!("Untagged: {}", name.familiar()));
            if img.names.len() == 1 {
                store.update_index(|entries| {
                    entries.retain(|e| e.manifest != img.manifest_digest);
                    Ok(())
                })?;
                out.push(format!("Deleted: {}", img.config_digest));
            }
        }
        None => {
            if img.names.len() > 1 && !force {
                bail!(
                    "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                    img.config_digest.short()
                );
            }
            store.update_index(|entries| {
                entries.retain(|e| e.manifest != img.manifest_digest);
                Ok(())
            })?;
            for n in &img.names {
                out.push(format!("Untagged: {}", n.familiar()));
            }
            out.push(format!("Deleted: {}", img.config_digest));
        }
    }
    Ok(out)
}

/// `docker image inspect` JSON for one image.
pub fn inspect_json(img: &Image) -> Value {
    let c = &img.config.config;
    let opt_list = |v: &Vec<String>| if v.is_empty() { Value::Null } else { json!(v) };
    let mut config = json!({
        "Hostname": "",
        "Domainname": "",
        "User": c.user,
        "AttachStdin": false,
        "AttachStdout": false,
        "AttachStderr": false,
        "Tty": false,
        "OpenStdin": false,
        "StdinOnce": false,
        "Env": opt_list(&c.env),
        "Cmd": c.cmd,
        "Image": "",
        "Volumes": if c.volumes.is_empty() { Value::Null } else { json!(c.volumes) },
        "WorkingDir": c.working_dir,
        "Entrypoint": c.entrypoint,
        "OnBuild": opt_list(&c.on_build),
        "Labels": if c.labels.is_empty() { Value::Null } else { json!(c.labels) },
    });
    let m = config.as_object_mut().expect("an object");
    if !c.exposed_ports.is_empty() {
        m.insert("ExposedPorts".into(), json!(c.exposed_ports));
    }
    if let Some(h) = &c.healthcheck {
        m.insert("Healthcheck".into(), json!(h));
    }
    if !c.stop_signal.is_empty() {
        m.insert("StopSignal".into(), json!(c.stop_signal));
    }
    if !c.shell.is_empty() {
        m.insert("Shell".into(), json!(c.shell));
    }
    if c.args_escaped {
        m.insert("ArgsEscaped".into(), json!(true));
    }
    let tags: Vec<String> = img.names.iter().filter(|n| n.tag.is_some()).map(|n| n.familiar()).collect();
    let digests: Vec<String> = img
        .names
        .iter()
        .filter(|n| n.digest.is_some())
        .map(|n| format!("{}@{}", n.familiar_repository(), n.digest.unwrap()))
        .collect();
    let other = |k: &str| img.config.other.get(k).cloned().unwrap_or(json!(""));
    json!({
        "Id": img.config_digest.to_string(),
        "RepoTags": tags,
        "RepoDigests": digests,
        "Parent": "",
        "Comment": other("comment"),
        "Created": img.config.created.clone().unwrap_or_default(),
        "Container": other("container"),
        "ContainerConfig": img.config.other.get("container_config").cloned().unwrap_or(Value::Null),
        "DockerVersion": other("docker_version"),
        "Author": img.config.author.clone().unwrap_or_default(),
        "Config": config,
        "Architecture": img.config.architecture,
        "Os": img.config.os,
        "Size": img.size(),
        "VirtualSize": img.size(),
        "GraphDriver": {"Name": "overlay", "Data": null},
        "RootFS": {"Type": "layers", "Layers": img.config.rootfs.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
        "Metadata": {"ManifestDigest": img.manifest_digest.to_string()},
    })
}

pub fn history(store: &Store, a: HistoryArgs) -> anyhow::Result<ExitCode> {
    let img = store.image(&a.image)?;
    let mut layer_sizes = img.layers.iter().map(|l| l.size);
    let mut rows = vec![["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"].map(String::from).to_vec()];
    let n = img.config.history.len();
    let mut entries: Vec<Vec<String>> = Vec::new();
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
        let created = h.created.as_deref().map(|c| ago(parse_rfc3339(c))).unwrap_or_default();
        entries.push(vec![id, created, by, human_size(size), h.comment.clone().unwrap_or_default()]);
    }
    if a.quiet {
        outln!("{}", img.config_digest.short())?;
        return Ok(ExitCode::SUCCESS);
    }
    entries.reverse();
    rows.extend(entries);
    out!("{}", table(&rows))?;
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
