//! `network create|ls|inspect|connect|disconnect|rm|prune`.

use crate::cli::{
    NetworkCmd, NetworkConnectArgs, NetworkCreateArgs, NetworkDisconnectArgs, NetworkLsArgs, NetworkPruneArgs,
    NetworkRmArgs,
};
use crate::commands::format::{check_format, print_rows};
use crate::commands::{event, render_error};
use anyhow::{bail, Context};
use rbuild_runtime::container;
use rbuild_runtime::network::config::{self, NetworkDef, Subnet};
use rbuild_runtime::network::manage::{self, CreateNetwork};
use rbuild_store::Store;
use rbuild_template::{NilKind, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::process::ExitCode;

/// A network as `ls` and `inspect` show it: rbuild's bridges, and docker's `host` and
/// `none`, which exist without a definition.
struct Shown {
    name: String,
    id: String,
    driver: &'static str,
    def: Option<NetworkDef>,
}

fn builtin_id(name: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!("rbuild-network\0{name}").as_bytes()))
}

fn all(store: &Store) -> anyhow::Result<Vec<Shown>> {
    let mut out: Vec<Shown> = config::list(&store.state_dir())?
        .into_iter()
        .map(|d| Shown { name: d.name.clone(), id: d.id.clone(), driver: "bridge", def: Some(d) })
        .collect();
    for (name, driver) in [("host", "host"), ("none", "null")] {
        out.push(Shown { name: name.into(), id: builtin_id(name), driver, def: None });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn find(store: &Store, name: &str) -> anyhow::Result<Shown> {
    let all = all(store)?;
    let hits: Vec<Shown> =
        all.into_iter().filter(|n| n.name == name || (name.len() >= 3 && n.id.starts_with(name))).collect();
    match hits.len() {
        1 => Ok(hits.into_iter().next().unwrap_or_else(|| unreachable!())),
        0 => bail!("network {name} not found"),
        _ => bail!("network {name} is ambiguous ({} matches found based on ID prefix)", hits.len()),
    }
}

/// docker's `network inspect` of one network.
pub fn network_value(store: &Store, name: &str) -> anyhow::Result<Value> {
    let n = find(store, name)?;
    let mut containers = BTreeMap::new();
    if n.def.is_some() {
        for (c, ep) in manage::attached(store, &n.name)? {
            containers.insert(
                c.config.id.clone(),
                Value::object([
                    ("Name", c.config.name.clone().into()),
                    ("EndpointID", ep.host_ifname.clone().into()),
                    ("MacAddress", ep.mac.clone().into()),
                    ("IPv4Address", format!("{}/{}", ep.ip, ep.prefix).into()),
                    ("IPv6Address", "".into()),
                ]),
            );
        }
    }
    let ipam_config = match &n.def {
        Some(d) => Value::List(vec![Value::object([
            ("Subnet", d.subnet.to_string().into()),
            ("Gateway", d.gateway.to_string().into()),
        ])]),
        None => Value::List(vec![]),
    };
    let labels = n.def.as_ref().map(|d| d.labels.clone()).unwrap_or_default();
    let options = match &n.def {
        Some(d) if d.name == config::DEFAULT => Value::map([
            ("com.docker.network.bridge.default_bridge", Value::from("true")),
            ("com.docker.network.bridge.name", d.bridge.clone().into()),
        ]),
        Some(d) => Value::map([("com.docker.network.bridge.name", Value::from(d.bridge.clone()))]),
        None => Value::map(Vec::<(String, Value)>::new()),
    };
    Ok(Value::object([
        ("Name", n.name.clone().into()),
        ("Id", n.id.clone().into()),
        ("Created", n.def.as_ref().map(|d| d.created.clone()).unwrap_or_default().into()),
        ("Scope", "local".into()),
        ("Driver", n.driver.into()),
        ("EnableIPv6", false.into()),
        (
            "IPAM",
            Value::object([
                ("Driver", "default".into()),
                ("Options", Value::Nil(NilKind::Map)),
                ("Config", ipam_config),
            ]),
        ),
        ("Internal", n.def.as_ref().is_some_and(|d| d.internal).into()),
        ("Attachable", false.into()),
        ("Ingress", false.into()),
        ("ConfigFrom", Value::object([("Network", "".into())])),
        ("ConfigOnly", false.into()),
        ("Containers", Value::Map(containers)),
        ("Options", options),
        ("Labels", Value::map(labels.into_iter().map(|(k, v)| (k, Value::from(v))))),
    ]))
}

/// `network ls` filters, as docker has them.
struct Filter {
    terms: Vec<(String, String)>,
}

impl Filter {
    fn parse(raw: &[String]) -> anyhow::Result<Filter> {
        let mut terms = Vec::new();
        for f in raw {
            let (k, v) =
                f.split_once('=').with_context(|| format!("bad format of filter (expected name=value): {f}"))?;
            if !matches!(k, "name" | "id" | "driver" | "label" | "type" | "scope") {
                bail!("invalid filter '{k}'");
            }
            terms.push((k.to_string(), v.to_string()));
        }
        Ok(Filter { terms })
    }

    fn matches(&self, n: &Shown) -> bool {
        let labels = n.def.as_ref().map(|d| d.labels.clone()).unwrap_or_default();
        let builtin = matches!(n.name.as_str(), "bridge" | "host" | "none");
        // Terms of one key are alternatives; different keys must all hold.
        let mut keys: Vec<&str> = self.terms.iter().map(|(k, _)| k.as_str()).collect();
        keys.dedup();
        keys.iter().all(|key| {
            self.terms.iter().filter(|(k, _)| k == key).any(|(k, v)| match k.as_str() {
                "name" => n.name.contains(v.as_str()),
                "id" => n.id.starts_with(v.as_str()),
                "driver" => n.driver == v,
                "scope" => v == "local",
                "type" => (v == "builtin") == builtin && matches!(v.as_str(), "builtin" | "custom"),
                _ => match v.split_once('=') {
                    Some((lk, lv)) => labels.get(lk).is_some_and(|x| x == lv),
                    None => labels.contains_key(v.as_str()),
                },
            })
        })
    }
}

/// Bad input to `create`, `connect` and `disconnect` (overlapping subnets, names in use,
/// unknown or stopped containers, invalid addresses) is one line and exit 125.
pub fn run(store: &Store, c: NetworkCmd) -> anyhow::Result<ExitCode> {
    let refusable = matches!(c, NetworkCmd::Create(_) | NetworkCmd::Connect(_) | NetworkCmd::Disconnect(_));
    run_cmd(store, c).map_err(|e| {
        if refusable && e.downcast_ref::<crate::commands::Reported>().is_none() {
            crate::commands::Reported { message: render_error(&e), code: 125 }.into()
        } else {
            e
        }
    })
}

fn run_cmd(store: &Store, c: NetworkCmd) -> anyhow::Result<ExitCode> {
    match c {
        NetworkCmd::Create(a) => create_cmd(store, a),
        NetworkCmd::Ls(a) => ls_cmd(store, a),
        NetworkCmd::Inspect(a) => crate::commands::format::inspect(store, a.typed("network")),
        NetworkCmd::Connect(a) => connect_cmd(store, a),
        NetworkCmd::Disconnect(a) => disconnect_cmd(store, a),
        NetworkCmd::Rm(a) => rm_cmd(store, a),
        NetworkCmd::Prune(a) => prune_cmd(store, a),
    }
}

fn create_cmd(store: &Store, a: NetworkCreateArgs) -> anyhow::Result<ExitCode> {
    let mut labels = BTreeMap::new();
    for l in &a.labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let o = CreateNetwork {
        name: a.name.clone(),
        driver: Some(a.driver.clone()),
        subnet: a.subnet.as_deref().map(Subnet::parse).transpose()?,
        gateway: a
            .gateway
            .as_deref()
            .map(|g| g.parse().with_context(|| format!("invalid gateway {g:?}")))
            .transpose()?,
        internal: a.internal,
        labels,
    };
    let def = manage::create(store, &o)?;
    event(store, "network", "create", &def.id, &[("name", &def.name), ("type", "bridge")]);
    outln!("{}", def.id)?;
    Ok(ExitCode::SUCCESS)
}

fn ls_cmd(store: &Store, a: NetworkLsArgs) -> anyhow::Result<ExitCode> {
    check_format(a.format.as_deref())?;
    let filter = Filter::parse(&a.filter)?;
    let shown: Vec<Shown> = all(store)?.into_iter().filter(|n| filter.matches(n)).collect();
    let id = |n: &Shown| if a.no_trunc { n.id.clone() } else { n.id[..12].to_string() };
    if a.quiet {
        for n in &shown {
            outln!("{}", id(n))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Value> = shown
        .iter()
        .map(|n| {
            let labels = n.def.as_ref().map(|d| d.labels.clone()).unwrap_or_default();
            Value::object([
                ("CreatedAt", n.def.as_ref().map(|d| d.created.clone()).unwrap_or_default().into()),
                ("Driver", n.driver.into()),
                ("ID", id(n).into()),
                ("IPv6", "false".into()),
                ("Internal", n.def.as_ref().is_some_and(|d| d.internal).to_string().into()),
                ("Labels", labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",").into()),
                ("Name", n.name.clone().into()),
                ("Scope", "local".into()),
            ])
        })
        .collect();
    let header = Value::map([
        ("CreatedAt", Value::from("CREATED")),
        ("Driver", "DRIVER".into()),
        ("ID", "NETWORK ID".into()),
        ("IPv6", "IPV6".into()),
        ("Internal", "INTERNAL".into()),
        ("Labels", "LABELS".into()),
        ("Name", "NAME".into()),
        ("Scope", "SCOPE".into()),
    ]);
    print_rows(a.format.as_deref(), "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}", &rows, &header)?;
    Ok(ExitCode::SUCCESS)
}

fn connect_cmd(store: &Store, a: NetworkConnectArgs) -> anyhow::Result<ExitCode> {
    let n = find(store, &a.network)?;
    if n.def.is_none() {
        bail!("container cannot be disconnected from host network or connected to host network");
    }
    let c = container::find(store, &a.container)?;
    manage::connect(store, &n.name, &c, &a.alias)?;
    event(store, "network", "connect", &n.id, &[("container", &c.config.id), ("name", &n.name)]);
    Ok(ExitCode::SUCCESS)
}

fn disconnect_cmd(store: &Store, a: NetworkDisconnectArgs) -> anyhow::Result<ExitCode> {
    let n = find(store, &a.network)?;
    let c = container::find(store, &a.container)?;
    match manage::disconnect(store, &n.name, &c) {
        Ok(()) => {}
        Err(rbuild_runtime::RuntimeError::Network(rbuild_runtime::error::NetworkError::NotConnected { .. }))
            if a.force => {}
        Err(e) => return Err(e.into()),
    }
    event(store, "network", "disconnect", &n.id, &[("container", &c.config.id), ("name", &n.name)]);
    Ok(ExitCode::SUCCESS)
}

fn rm_cmd(store: &Store, a: NetworkRmArgs) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for name in &a.networks {
        let r = find(store, name).and_then(|n| {
            manage::remove(store, &n.name)?;
            event(store, "network", "destroy", &n.id, &[("name", &n.name), ("type", "bridge")]);
            Ok(())
        });
        match r {
            Ok(()) => outln!("{name}")?,
            Err(e) => {
                errln!("Error response from daemon: {}", render_error(&e));
                failed = true;
            }
        }
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn prune_cmd(store: &Store, a: NetworkPruneArgs) -> anyhow::Result<ExitCode> {
    if !a.force {
        out!("WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ")?;
        std::io::stdout().flush()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        if !matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let gone = manage::prune(store)?;
    if !gone.is_empty() {
        outln!("Deleted Networks:")?;
        for n in gone {
            outln!("{n}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
