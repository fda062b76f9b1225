//! `docker container inspect`: a container in docker's shape — State (with Health),
//! HostConfig, Config, NetworkSettings — with the fields rbuild has, in docker's order.

use crate::commands::format::{container_labels, health_value, nil_list, opt_map};
use rbuild_runtime::container::Container;
use rbuild_runtime::state::Status;
use rbuild_runtime::Network;
use rbuild_store::Store;
use rbuild_template::{NilKind, Value};

fn zero_time(t: &str) -> String {
    if t.is_empty() {
        "0001-01-01T00:00:00Z".into()
    } else {
        t.to_string()
    }
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

/// docker's `State` (Health only for a container with a check).
fn state_value(c: &Container, s: &rbuild_runtime::state::State) -> Value {
    let running = matches!(s.status, Status::Running | Status::Paused | Status::Restarting);
    let mut f: Vec<(&str, Value)> = vec![
        ("Status", s.status.as_str().into()),
        ("Running", running.into()),
        ("Paused", (s.status == Status::Paused).into()),
        ("Restarting", (s.status == Status::Restarting).into()),
        ("OOMKilled", s.oom_killed.into()),
        ("Dead", false.into()),
        ("Pid", (if matches!(s.status, Status::Running | Status::Paused) { s.pid } else { 0 }).into()),
        ("ExitCode", s.exit_code.into()),
        ("Error", s.error.clone().into()),
        ("StartedAt", zero_time(&s.started_at).into()),
        ("FinishedAt", zero_time(&s.finished_at).into()),
    ];
    let checked = rbuild_runtime::shim::health::probe_command(&c.config).is_some();
    let Some(h) = s.health.as_ref().filter(|_| checked) else {
        f.push(("Health", Value::Nil(NilKind::Omitted)));
        return Value::object(f);
    };
    {
        let log: Vec<Value> = h
            .log
            .iter()
            .map(|p| {
                Value::object([
                    ("Start", Value::from(p.start.clone())),
                    ("End", p.end.clone().into()),
                    ("ExitCode", p.exit_code.into()),
                    ("Output", p.output.clone().into()),
                ])
            })
            .collect();
        f.push((
            "Health",
            Value::object([
                ("Status", Value::from(h.status.as_str())),
                ("FailingStreak", i64::from(h.failing_streak).into()),
                ("Log", Value::List(log)),
            ]),
        ));
    }
    Value::object(f)
}

/// docker's `HostConfig` (the fields rbuild has, in docker's order).
fn host_config(c: &Container) -> Value {
    let cfg = &c.config;
    let binds: Vec<String> = cfg
        .mounts
        .iter()
        .filter(|m| m.typ == "bind" || (m.typ == "volume" && m.name.len() != 64))
        .map(|m| {
            let src = if m.typ == "bind" { &m.source } else { &m.name };
            format!("{src}:{}{}", m.destination, if m.rw { "" } else { ":ro" })
        })
        .collect();
    let network = cfg.network.names().into_iter().next().unwrap_or_default();
    let devices: Vec<Value> = cfg
        .devices
        .iter()
        .map(|d| {
            Value::object([
                ("PathOnHost", Value::from(d.source.display().to_string())),
                ("PathInContainer", d.target.clone().into()),
                ("CgroupPermissions", d.access.clone().into()),
            ])
        })
        .collect();
    let ulimits: Vec<Value> = cfg
        .ulimits
        .iter()
        .map(|u| {
            Value::object([("Name", Value::from(u.name.clone())), ("Hard", u.hard.into()), ("Soft", u.soft.into())])
        })
        .collect();
    let mut f: Vec<(&str, Value)> = vec![
        ("Binds", Value::strings(&binds, true)),
        (
            "LogConfig",
            Value::object([
                ("Type", Value::from(cfg.log_driver.name())),
                ("Config", Value::map(Vec::<(String, Value)>::new())),
            ]),
        ),
        ("NetworkMode", network.into()),
        ("PortBindings", ports_value(c)),
        (
            "RestartPolicy",
            Value::object([
                ("Name", Value::from(cfg.restart_policy.name())),
                ("MaximumRetryCount", i64::from(cfg.restart_policy.max_retries()).into()),
            ]),
        ),
        ("AutoRemove", cfg.auto_remove.into()),
        ("CapAdd", nil_list(&cfg.cap_add)),
        ("CapDrop", nil_list(&cfg.cap_drop)),
        ("Privileged", cfg.privileged.into()),
        ("ReadonlyRootfs", cfg.read_only.into()),
        ("SecurityOpt", nil_list(&cfg.security_opt)),
        ("ShmSize", (cfg.shm_size.unwrap_or(64 << 20) as i64).into()),
    ];
    if !cfg.sysctls.is_empty() {
        f.push(("Sysctls", opt_map(&cfg.sysctls)));
    }
    f.extend([
        ("Memory", cfg.limits.memory.unwrap_or(0).into()),
        ("NanoCpus", cfg.limits.cpus.map_or(0, |x| (x * 1e9) as i64).into()),
        ("Devices", Value::List(devices)),
        ("PidsLimit", cfg.limits.pids.map_or(Value::Nil(NilKind::Pointer), Value::from)),
        ("Ulimits", if ulimits.is_empty() { Value::Nil(NilKind::List) } else { Value::List(ulimits) }),
        ("Init", cfg.init.into()),
    ]);
    Value::object(f)
}

/// docker's container `Config`.
fn container_config(c: &Container, labels: std::collections::BTreeMap<String, String>) -> Value {
    let cfg = &c.config;
    let mut f: Vec<(&str, Value)> = vec![
        ("Hostname", cfg.hostname.clone().into()),
        ("Domainname", "".into()),
        ("User", cfg.user.clone().into()),
        ("AttachStdin", cfg.attach_stdin.into()),
        ("AttachStdout", cfg.attach_stdout.into()),
        ("AttachStderr", cfg.attach_stderr.into()),
        ("Tty", cfg.tty.into()),
        ("OpenStdin", cfg.open_stdin.into()),
        ("StdinOnce", cfg.stdin_once.into()),
        ("Env", nil_list(&cfg.env)),
        ("Cmd", nil_list(&cfg.cmd)),
    ];
    if let Some(h) = &cfg.healthcheck {
        f.push(("Healthcheck", health_value(h)));
    }
    f.extend([
        ("Image", cfg.image.clone().into()),
        ("Volumes", Value::Nil(NilKind::Map)),
        ("WorkingDir", cfg.working_dir.clone().into()),
        ("Entrypoint", nil_list(&cfg.entrypoint)),
        ("OnBuild", Value::Nil(NilKind::List)),
        ("Labels", Value::map(labels.iter().map(|(k, v)| (k.clone(), Value::from(v))))),
    ]);
    if !cfg.stop_signal.is_empty() {
        f.push(("StopSignal", cfg.stop_signal.clone().into()));
    }
    if let Some(t) = cfg.stop_timeout {
        f.push(("StopTimeout", t.into()));
    }
    Value::object(f)
}

/// `docker container inspect` of one container.
pub fn container_value(store: &Store, c: &Container, size: bool) -> Value {
    let s = c.state();
    let mut args = c.config.entrypoint.clone();
    args.extend(c.config.cmd.iter().cloned());
    let path = args.first().cloned().unwrap_or_default();
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
        ("State", state_value(c, &s)),
        ("Image", c.config.image_id.to_string().into()),
        ("ResolvConfPath", c.dir.join("resolv.conf").display().to_string().into()),
        ("HostnamePath", c.dir.join("hostname").display().to_string().into()),
        ("HostsPath", c.dir.join("hosts").display().to_string().into()),
        ("LogPath", c.log_path().display().to_string().into()),
        ("Name", format!("/{}", c.config.name).into()),
        ("RestartCount", i64::from(s.restart_count).into()),
        ("Driver", "overlay2".into()),
        ("Platform", "linux".into()),
        ("MountLabel", "".into()),
        ("ProcessLabel", "".into()),
        ("AppArmorProfile", "".into()),
        ("ExecIDs", Value::Nil(NilKind::List)),
        ("HostConfig", host_config(c)),
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
        ("Config", container_config(c, labels)),
        ("NetworkSettings", network_settings(c, &s)),
    ]);
    Value::object(f)
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
