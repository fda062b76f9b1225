//! `--format` and `inspect`: objects in docker's shapes (the fields that exist here, in
//! docker's order and types), printed as docker's JSON or through a Go template. A
//! container's shape is in `ctrinspect.rs`.

use crate::cli::InspectArgs;
use anyhow::Context;
use rbuild_runtime::container::Container;
use rbuild_runtime::volume::VolumeInfo;
use rbuild_store::config::{rfc3339, ContainerConfig};
use rbuild_store::{Image, Store};
use rbuild_template::{Format, NilKind, Template, Value};
use std::process::ExitCode;

/// A `--format` error, worded as docker's.
fn template_err(e: rbuild_template::TemplateError) -> anyhow::Error {
    anyhow::anyhow!("template parsing error: {e}")
}

/// Prints `rows` with `--format` (None: `default`, a `table …` format).
pub fn print_rows(format: Option<&str>, default: &str, rows: &[Value], header: &Value) -> anyhow::Result<()> {
    let f = match format {
        None | Some("") | Some("table") => default,
        Some(f) => f,
    };
    let fmt = Format::parse(f).map_err(template_err)?;
    out!("{}", fmt.render(rows, header).map_err(template_err)?)?;
    Ok(())
}

pub(crate) fn nil_list(v: &[String]) -> Value {
    Value::strings(v, true)
}

pub(crate) fn opt_map<V: Into<Value> + Clone>(m: &std::collections::BTreeMap<String, V>) -> Value {
    if m.is_empty() {
        return Value::Nil(NilKind::Map);
    }
    Value::map(m.iter().map(|(k, v)| (k.clone(), v.clone().into())))
}

fn set_map(keys: impl Iterator<Item = String>) -> Value {
    let m: Vec<(String, Value)> = keys.map(|k| (k, Value::object(Vec::<(String, Value)>::new()))).collect();
    if m.is_empty() {
        Value::Nil(NilKind::Map)
    } else {
        Value::map(m)
    }
}

fn labels_value(labels: &std::collections::BTreeMap<String, String>) -> Value {
    opt_map(labels)
}

/// docker's `HealthConfig`, zero fields left out, in docker's order.
pub(crate) fn health_value(h: &rbuild_store::config::HealthConfig) -> Value {
    let mut f: Vec<(&str, Value)> = Vec::new();
    if !h.test.is_empty() {
        f.push(("Test", Value::strings(&h.test, false)));
    }
    for (k, v) in [
        ("Interval", h.interval),
        ("Timeout", h.timeout),
        ("StartPeriod", h.start_period),
        ("StartInterval", h.start_interval),
        ("Retries", h.retries),
    ] {
        if v != 0 {
            f.push((k, v.into()));
        }
    }
    Value::object(f)
}

/// docker's `container.Config` of an image.
fn image_config(c: &ContainerConfig) -> Value {
    let mut f: Vec<(&str, Value)> = vec![
        ("Hostname", "".into()),
        ("Domainname", "".into()),
        ("User", c.user.clone().into()),
        ("AttachStdin", false.into()),
        ("AttachStdout", false.into()),
        ("AttachStderr", false.into()),
    ];
    if !c.exposed_ports.is_empty() {
        f.push(("ExposedPorts", set_map(c.exposed_ports.keys().cloned())));
    }
    f.extend([
        ("Tty", false.into()),
        ("OpenStdin", false.into()),
        ("StdinOnce", false.into()),
        ("Env", nil_list(&c.env)),
        ("Cmd", c.cmd.as_deref().map_or(Value::Nil(NilKind::List), |v| Value::strings(v, false))),
    ]);
    if let Some(h) = &c.healthcheck {
        f.push(("Healthcheck", health_value(h)));
    }
    if c.args_escaped {
        f.push(("ArgsEscaped", true.into()));
    }
    f.extend([
        ("Image", "".into()),
        ("Volumes", set_map(c.volumes.keys().cloned())),
        ("WorkingDir", c.working_dir.clone().into()),
        ("Entrypoint", c.entrypoint.as_deref().map_or(Value::Nil(NilKind::List), |v| Value::strings(v, false))),
        ("OnBuild", nil_list(&c.on_build)),
        ("Labels", labels_value(&c.labels)),
    ]);
    if !c.stop_signal.is_empty() {
        f.push(("StopSignal", c.stop_signal.clone().into()));
    }
    if !c.shell.is_empty() {
        f.push(("Shell", Value::strings(&c.shell, false)));
    }
    Value::object(f)
}

/// The time `images`/`inspect` show for an image (RFC 3339): made here, else the config's.
pub fn image_created(store: &Store, img: &Image) -> String {
    store
        .image_record(&img.config_digest)
        .created_here
        .unwrap_or_else(|| img.config.created.clone().unwrap_or_default())
}

/// `docker image inspect` of one image.
pub fn image_value(store: &Store, img: &Image) -> Value {
    let rec = store.image_record(&img.config_digest);
    let tags: Vec<String> = img.names.iter().filter(|n| n.tag.is_some()).map(|n| n.familiar()).collect();
    let mut digests: Vec<String> = img
        .names
        .iter()
        .filter_map(|n| n.digest.map(|d| format!("{}@{d}", n.familiar_repository())))
        .chain(rec.repo_digest_refs().iter().map(|r| r.familiar()))
        .collect();
    digests.sort();
    digests.dedup();
    let other = |k: &str| img.config.other.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let mut f: Vec<(&str, Value)> = vec![
        ("Id", img.config_digest.to_string().into()),
        ("RepoTags", Value::strings(&tags, false)),
        ("RepoDigests", Value::strings(&digests, false)),
        ("Parent", "".into()),
        ("Comment", other("comment").into()),
        ("Created", image_created(store, img).into()),
        ("Container", other("container").into()),
        (
            "ContainerConfig",
            img.config
                .other
                .get("container_config")
                .and_then(|v| serde_json::from_value::<ContainerConfig>(v.clone()).ok())
                .map_or_else(|| image_config(&ContainerConfig::default()), |c| image_config(&c)),
        ),
        ("DockerVersion", other("docker_version").into()),
        ("Author", img.config.author.clone().unwrap_or_default().into()),
        ("Config", image_config(&img.config.config)),
        ("Architecture", img.config.architecture.clone().into()),
    ];
    if let Some(v) = &img.config.variant {
        f.push(("Variant", v.clone().into()));
    }
    f.extend([
        ("Os", img.config.os.clone().into()),
        ("Size", store.image_content_size(img).into()),
        ("VirtualSize", store.image_content_size(img).into()),
        ("GraphDriver", Value::object([("Data", Value::Nil(NilKind::Map)), ("Name", "overlay2".into())])),
        (
            "RootFS",
            Value::object([
                ("Type", "layers".into()),
                (
                    "Layers",
                    Value::strings(
                        &img.config.rootfs.diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
                        false,
                    ),
                ),
            ]),
        ),
        (
            "Metadata",
            Value::object([
                ("LastTagTime", "0001-01-01T00:00:00Z".into()),
                ("ManifestDigest", img.manifest_digest.to_string().into()),
            ]),
        ),
    ]);
    Value::object(f)
}

/// The labels of a container (the image's with `--label` applied).
pub fn container_labels(store: &Store, c: &Container) -> std::collections::BTreeMap<String, String> {
    c.labels(store)
}

/// `docker volume inspect` of one volume.
pub fn volume_value(v: &VolumeInfo) -> Value {
    Value::object([
        ("CreatedAt", v.created_at.clone().into()),
        ("Driver", "local".into()),
        ("Labels", labels_value(&v.labels)),
        ("Mountpoint", v.mountpoint.display().to_string().into()),
        ("Name", v.name.clone().into()),
        ("Options", Value::Nil(NilKind::Map)),
        ("Scope", "local".into()),
    ])
}

/// Finds `name` as a container, image or volume (in docker's order), limited to `typ`.
fn find_object(store: &Store, name: &str, typ: Option<&str>, size: bool) -> anyhow::Result<Value> {
    let want = |t: &str| typ.is_none_or(|x| x == t);
    if want("container") {
        if let Ok(c) = rbuild_runtime::container::find(store, name) {
            return Ok(crate::commands::ctrinspect::container_value(store, &c, size));
        }
    }
    if want("image") {
        match store.image(name) {
            Ok(img) => return Ok(image_value(store, &img)),
            Err(rbuild_store::StoreError::ImageNotFound(_)) | Err(rbuild_store::StoreError::BadReference(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if want("volume") {
        if let Ok(v) = rbuild_runtime::volume::inspect(&store.volumes_dir(), name) {
            return Ok(volume_value(&v));
        }
    }
    if want("network") {
        if let Ok(v) = crate::commands::networks::network_value(store, name) {
            return Ok(v);
        }
    }
    Err(match typ {
        Some(t) => anyhow::anyhow!("No such {t}: {name}"),
        None => anyhow::anyhow!("No such object: {name}"),
    })
}

/// Prints objects as docker's `inspect` does: a JSON array (four-space indent, HTML
/// escaped), or the template once per object. Objects not found are reported after the
/// others, and make the exit status 1.
pub fn print_objects(values: &[Value], errors: &[String], format: Option<&str>) -> anyhow::Result<ExitCode> {
    match format {
        None | Some("") => {
            outln!("{}", rbuild_template::to_json_with(&Value::List(values.to_vec()), Some("    "), true))?;
        }
        Some("json") => {
            for v in values {
                outln!("{}", rbuild_template::to_json(v, false))?;
            }
        }
        Some(f) => {
            let t = Template::parse(f).map_err(template_err)?;
            for v in values {
                outln!("{}", t.execute(v).map_err(template_err)?)?;
            }
        }
    }
    for e in errors {
        errln!("Error: {e}");
    }
    Ok(if errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

pub fn inspect(store: &Store, a: InspectArgs) -> anyhow::Result<ExitCode> {
    let mut values = Vec::new();
    let mut errors = Vec::new();
    for n in &a.names {
        match find_object(store, n, a.typ.as_deref(), a.size) {
            Ok(v) => values.push(v),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if values.is_empty() && a.format.is_none() {
        // docker prints `[]` and the errors.
        outln!("[]")?;
        for e in &errors {
            errln!("Error: {e}");
        }
        return Ok(ExitCode::from(1));
    }
    print_objects(&values, &errors, a.format.as_deref())
}

/// docker's `CreatedAt` column: `2006-01-02 15:04:05 +0000 UTC`.
pub fn created_at(secs: i64) -> String {
    let t = rfc3339(secs, 0);
    format!("{} +0000 UTC", t.trim_end_matches('Z').replacen('T', " ", 1))
}

/// Parses `--format` early so a bad template fails before any work.
pub fn check_format(f: Option<&str>) -> anyhow::Result<()> {
    if let Some(f) = f {
        if f != "json" && f != "table" {
            Format::parse(f).map_err(template_err).context("--format")?;
        }
    }
    Ok(())
}
