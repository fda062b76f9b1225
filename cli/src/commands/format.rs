//! `--format` and `inspect`: objects in docker's shapes (the fields that exist here, in
//! docker's order and types), printed as docker's JSON or through a Go template.

use crate::cli::InspectArgs;
use anyhow::Context;
use rbuild_runtime::container::Container;
use rbuild_runtime::state::Status;
use rbuild_runtime::volume::VolumeInfo;
use rbuild_runtime::Network;
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

fn nil_list(v: &[String]) -> Value {
    Value::strings(v, true)
}

fn opt_map<V: Into<Value> + Clone>(m: &std::collections::BTreeMap<String, V>) -> Value {
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
        f.push(("Healthcheck", Value::from(serde_json::to_value(h).unwrap_or_default())));
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

fn status_str(s: Status) -> &'static str {
    match s {
        Status::Created => "created",
        Status::Running => "running",
        Status::Paused => "paused",
        Status::Exited => "exited",
    }
}

fn zero_time(t: &str) -> String {
    if t.is_empty() {
        "0001-01-01T00:00:00Z".into()
    } else {
        t.to_string()
    }
}

/// The labels of a container (its image's; `run --label` does not exist yet).
pub fn container_labels(store: &Store, c: &Container) -> std::collections::BTreeMap<String, String> {
    store
        .read_blob(&c.config.image_id)
        .ok()
        .and_then(|d| rbuild_store::ImageConfig::from_json(&d).ok())
        .map(|cfg| cfg.config.labels)
        .unwrap_or_default()
}

fn ports_value(c: &Container) -> Value {
    let mut m: std::collections::BTreeMap<String, Value> = std::collections::BTreeMap::new();
    for p in &c.config.ports {
        let e = m.entry(format!("{}/{}", p.container_port, p.proto)).or_insert_with(|| Value::List(vec![]));
        if let Value::List(l) = e {
            l.push(Value::object([("HostIp", p.host_ip.clone().into()), ("HostPort", p.host_port.to_string().into())]));
        }
    }
    if m.is_empty() {
        Value::map(Vec::<(String, Value)>::new())
    } else {
        Value::Map(m)
    }
}

/// `docker container inspect` of one container.
pub fn container_value(store: &Store, c: &Container, size: bool) -> Value {
    let s = c.state();
    let running = matches!(s.status, Status::Running | Status::Paused);
    let mut args = c.config.entrypoint.clone();
    args.extend(c.config.cmd.iter().cloned());
    let path = args.first().cloned().unwrap_or_default();
    let network = c.config.network.names().into_iter().next().unwrap_or_default();
    let mounts: Vec<Value> = c
        .config
        .mounts
        .iter()
        .map(|m| {
            let mut f: Vec<(&str, Value)> = vec![("Type", m.typ.clone().into())];
            if !m.name.is_empty() {
                f.push(("Name", m.name.clone().into()));
            }
            f.extend([("Source", m.source.clone().into()), ("Destination", m.destination.clone().into())]);
            if m.typ == "volume" {
                f.push(("Driver", "local".into()));
            }
            f.extend([
                ("Mode", if m.typ == "volume" { "z" } else { "" }.into()),
                ("RW", m.rw.into()),
                ("Propagation", if m.typ == "bind" { "rprivate" } else { "" }.into()),
            ]);
            Value::object(f)
        })
        .collect();
    let labels = container_labels(store, c);
    let mut f: Vec<(&str, Value)> = vec![
        ("Id", c.config.id.clone().into()),
        ("Created", c.config.created.clone().into()),
        ("Path", path.into()),
        ("Args", Value::strings(args.get(1..).unwrap_or(&[]), false)),
        (
            "State",
            Value::object([
                ("Status", status_str(s.status).into()),
                ("Running", running.into()),
                ("Paused", (s.status == Status::Paused).into()),
                ("Restarting", false.into()),
                ("OOMKilled", s.oom_killed.into()),
                ("Dead", false.into()),
                ("Pid", (if running { s.pid } else { 0 }).into()),
                ("ExitCode", s.exit_code.into()),
                ("Error", s.error.clone().into()),
                ("StartedAt", zero_time(&s.started_at).into()),
                ("FinishedAt", zero_time(&s.finished_at).into()),
            ]),
        ),
        ("Image", c.config.image_id.to_string().into()),
        ("ResolvConfPath", c.dir.join("resolv.conf").display().to_string().into()),
        ("HostnamePath", c.dir.join("hostname").display().to_string().into()),
        ("HostsPath", c.dir.join("hosts").display().to_string().into()),
        ("LogPath", c.log_path().display().to_string().into()),
        ("Name", format!("/{}", c.config.name).into()),
        ("RestartCount", 0i64.into()),
        ("Driver", "overlay2".into()),
        ("Platform", "linux".into()),
        ("MountLabel", "".into()),
        ("ProcessLabel", "".into()),
        ("AppArmorProfile", "".into()),
        ("ExecIDs", Value::Nil(NilKind::List)),
        (
            "HostConfig",
            Value::object([
                (
                    "Binds",
                    Value::strings(
                        &c.config
                            .mounts
                            .iter()
                            .filter(|m| m.typ == "bind" || (m.typ == "volume" && m.name.len() != 64))
                            .map(|m| {
                                let src = if m.typ == "bind" { &m.source } else { &m.name };
                                format!("{src}:{}{}", m.destination, if m.rw { "" } else { ":ro" })
                            })
                            .collect::<Vec<_>>(),
                        true,
                    ),
                ),
                ("NetworkMode", network.clone().into()),
                ("PortBindings", ports_value(c)),
                ("AutoRemove", c.config.auto_remove.into()),
                ("CapAdd", nil_list(&c.config.cap_add)),
                ("CapDrop", nil_list(&c.config.cap_drop)),
                ("ReadonlyRootfs", c.config.read_only.into()),
                ("Memory", c.config.limits.memory.unwrap_or(0).into()),
                ("NanoCpus", c.config.limits.cpus.map_or(0, |x| (x * 1e9) as i64).into()),
                ("PidsLimit", c.config.limits.pids.map_or(Value::Nil(NilKind::Pointer), Value::from)),
                ("Init", c.config.init.into()),
            ]),
        ),
        (
            "GraphDriver",
            Value::object([
                (
                    "Data",
                    Value::map([
                        ("MergedDir", Value::from(c.dir.join("rootfs").display().to_string())),
                        ("UpperDir", c.upper().display().to_string().into()),
                        ("WorkDir", c.dir.join("work").display().to_string().into()),
                    ]),
                ),
                ("Name", "overlay2".into()),
            ]),
        ),
    ];
    if size {
        let rw = rbuild_store::snapshot::content_bytes(&c.upper());
        let image: u64 = c.config.layers.iter().filter_map(|d| store.blob_size(d).ok()).sum();
        f.push(("SizeRw", rw.into()));
        f.push(("SizeRootFs", (rw + image).into()));
    }
    f.extend([
        ("Mounts", Value::List(mounts)),
        (
            "Config",
            Value::object([
                ("Hostname", c.config.hostname.clone().into()),
                ("Domainname", "".into()),
                ("User", c.config.user.clone().into()),
                ("AttachStdin", false.into()),
                ("AttachStdout", false.into()),
                ("AttachStderr", false.into()),
                ("Tty", c.config.tty.into()),
                ("OpenStdin", c.config.open_stdin.into()),
                ("StdinOnce", false.into()),
                ("Env", nil_list(&c.config.env)),
                ("Cmd", nil_list(&c.config.cmd)),
                ("Image", c.config.image.clone().into()),
                ("Volumes", Value::Nil(NilKind::Map)),
                ("WorkingDir", c.config.working_dir.clone().into()),
                ("Entrypoint", nil_list(&c.config.entrypoint)),
                ("OnBuild", Value::Nil(NilKind::List)),
                ("Labels", Value::map(labels.iter().map(|(k, v)| (k.clone(), Value::from(v))))),
                ("StopSignal", c.config.stop_signal.clone().into()),
            ]),
        ),
        ("NetworkSettings", network_settings(c, &s)),
    ]);
    Value::object(f)
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
            return Ok(container_value(store, &c, size));
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

/// docker's `NetworkSettings`: the default bridge's endpoint at the top level (empty on
/// other networks, as docker has it), every network under `Networks`.
fn network_settings(c: &Container, s: &rbuild_runtime::state::State) -> Value {
    let running = matches!(s.status, Status::Running | Status::Paused);
    let ep = |name: &str| running.then(|| s.networks.iter().find(|e| e.network == name)).flatten();
    let default = ep("bridge");
    let text = |f: &dyn Fn(&rbuild_runtime::network::attach::Endpoint) -> String| default.map(f).unwrap_or_default();
    let aliases = |name: &str| -> Value {
        match &c.config.network {
            Network::Bridge(reqs) if name != "bridge" => {
                let mut a: Vec<String> =
                    reqs.iter().filter(|r| r.network == name).flat_map(|r| r.aliases.clone()).collect();
                a.push(c.config.id[..12].to_string());
                Value::strings(&a, false)
            }
            _ => Value::Nil(NilKind::List),
        }
    };
    let networks = c.config.network.names().into_iter().map(|name| {
        let e = ep(&name);
        let t = |f: &dyn Fn(&rbuild_runtime::network::attach::Endpoint) -> String| e.map(f).unwrap_or_default();
        let v = Value::object([
            ("IPAMConfig", Value::Nil(NilKind::Pointer)),
            ("Links", Value::Nil(NilKind::List)),
            ("Aliases", aliases(&name)),
            ("NetworkID", t(&|e| e.network_id.clone()).into()),
            ("EndpointID", t(&|e| e.host_ifname.clone()).into()),
            ("Gateway", t(&|e| e.gateway.to_string()).into()),
            ("IPAddress", t(&|e| e.ip.to_string()).into()),
            ("IPPrefixLen", (e.map_or(0, |e| e.prefix) as i64).into()),
            ("IPv6Gateway", "".into()),
            ("GlobalIPv6Address", "".into()),
            ("GlobalIPv6PrefixLen", 0i64.into()),
            ("MacAddress", t(&|e| e.mac.clone()).into()),
            ("DriverOpts", Value::Nil(NilKind::Map)),
        ]);
        (name, v)
    });
    Value::object([
        ("Bridge", "".into()),
        ("SandboxID", "".into()),
        ("HairpinMode", false.into()),
        ("LinkLocalIPv6Address", "".into()),
        ("LinkLocalIPv6PrefixLen", 0i64.into()),
        ("Ports", ports_value(c)),
        ("SandboxKey", (if running { format!("/proc/{}/ns/net", s.pid) } else { String::new() }).into()),
        ("SecondaryIPAddresses", Value::Nil(NilKind::List)),
        ("SecondaryIPv6Addresses", Value::Nil(NilKind::List)),
        ("EndpointID", text(&|e| e.host_ifname.clone()).into()),
        ("Gateway", text(&|e| e.gateway.to_string()).into()),
        ("GlobalIPv6Address", "".into()),
        ("GlobalIPv6PrefixLen", 0i64.into()),
        ("IPAddress", text(&|e| e.ip.to_string()).into()),
        ("IPPrefixLen", (default.map_or(0, |e| e.prefix) as i64).into()),
        ("IPv6Gateway", "".into()),
        ("MacAddress", text(&|e| e.mac.clone()).into()),
        ("Networks", Value::map(networks)),
    ])
}
