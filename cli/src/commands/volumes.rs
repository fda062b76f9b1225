//! `volume create|ls|inspect|rm|prune`.

use crate::cli::{VolumeCmd, VolumeCreateArgs, VolumeLsArgs, VolumePruneArgs, VolumeRmArgs};
use crate::commands::format::{check_format, print_rows};
use crate::commands::util::human_size;
use crate::commands::{event, render_error};
use anyhow::bail;
use rbuild_runtime::volume::{self, VolumeFilter};
use rbuild_store::Store;
use rbuild_template::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::process::ExitCode;

fn random_name() -> String {
    let mut b = [0u8; 32];
    let _ = rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty());
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn run(store: &Store, c: VolumeCmd) -> anyhow::Result<ExitCode> {
    match c {
        VolumeCmd::Create(a) => create_cmd(store, a),
        VolumeCmd::Ls(a) => ls_cmd(store, a),
        VolumeCmd::Inspect(a) => crate::commands::format::inspect(store, a.typed("volume")),
        VolumeCmd::Rm(a) => rm_cmd(store, a),
        VolumeCmd::Prune(a) => prune_cmd(store, a),
    }
}

fn create_cmd(store: &Store, a: VolumeCreateArgs) -> anyhow::Result<ExitCode> {
    let dir = store.volumes_dir();
    if a.driver != "local" {
        bail!("create: volume driver {:?} is not available (rbuild has the local driver)", a.driver);
    }
    if let Some(o) = a.opts.first() {
        bail!("create: invalid option {o:?}: the local driver of rbuild takes no options");
    }
    let mut labels = BTreeMap::new();
    for l in &a.labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let name = a.name.unwrap_or_else(random_name);
    let existed = volume::inspect(&dir, &name).is_ok();
    let v = volume::create(&dir, &name, &labels)?;
    if !existed {
        event(store, "volume", "create", &v.name, &[("driver", "local")]);
    }
    outln!("{}", v.name)?;
    Ok(ExitCode::SUCCESS)
}

fn ls_cmd(store: &Store, a: VolumeLsArgs) -> anyhow::Result<ExitCode> {
    let dir = store.volumes_dir();
    check_format(a.format.as_deref())?;
    let filter = volume_filter(&a.filter)?;
    let mut rows = Vec::new();
    let mut names = Vec::new();
    for v in volume::list(&dir)? {
        let in_use = !volume::users(store, &v.name)?.is_empty();
        if !filter.matches(&v, in_use) {
            continue;
        }
        names.push(v.name.clone());
        let labels = v.labels.clone();
        rows.push(Value::object([
            ("Driver", Value::from("local")),
            (
                "Label",
                Value::method(move |args| {
                    let k = args.first().map(rbuild_template::print_value).unwrap_or_default();
                    Ok(labels.get(&k).cloned().unwrap_or_default().into())
                }),
            ),
            ("Labels", v.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",").into()),
            ("Links", "N/A".into()),
            ("Mountpoint", v.mountpoint.display().to_string().into()),
            ("Name", v.name.clone().into()),
            ("Scope", "local".into()),
            ("Size", "N/A".into()),
        ]));
    }
    if a.quiet {
        for n in names {
            outln!("{n}")?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let header = Value::map([
        ("Driver", Value::from("DRIVER")),
        ("Label", Value::method(|_| Ok("LABEL".into()))),
        ("Labels", "LABELS".into()),
        ("Links", "LINKS".into()),
        ("Mountpoint", "MOUNTPOINT".into()),
        ("Name", "VOLUME NAME".into()),
        ("Scope", "SCOPE".into()),
        ("Size", "SIZE".into()),
    ]);
    print_rows(a.format.as_deref(), "table {{.Driver}}\t{{.Name}}", &rows, &header)?;
    Ok(ExitCode::SUCCESS)
}

fn rm_cmd(store: &Store, a: VolumeRmArgs) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for n in &a.volumes {
        match volume::remove(store, n) {
            Ok(()) => {
                event(store, "volume", "destroy", n, &[("driver", "local")]);
                outln!("{n}")?;
            }
            Err(rbuild_runtime::RuntimeError::Volume(volume::VolumeError::NoSuchVolume(_))) if a.force => {}
            Err(e) => {
                errln!("Error: {}", render_error(&e.into()));
                failed = true;
            }
        }
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn prune_cmd(store: &Store, a: VolumePruneArgs) -> anyhow::Result<ExitCode> {
    let filter = volume_filter(&a.filter)?;
    if !a.force {
        let what = if a.all {
            "all local volumes not used by at least one container"
        } else {
            "all anonymous local volumes not used by at least one container"
        };
        out!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ")?;
        std::io::stdout().flush()?;
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        if !matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let (names, bytes) = volume::prune(store, &filter, a.all)?;
    for n in &names {
        event(store, "volume", "destroy", n, &[("driver", "local")]);
    }
    super::prune::print_deleted("Deleted Volumes:", &names)?;
    outln!("Total reclaimed space: {}", human_size(bytes))?;
    Ok(ExitCode::SUCCESS)
}

/// `volume ls/prune --filter` (dangling, name, label, label!=, driver) as docker reads them.
fn volume_filter(filters: &[String]) -> anyhow::Result<VolumeFilter> {
    let mut f = VolumeFilter::default();
    let kv = super::filters::label_filter;
    for s in filters {
        if let Some(v) = s.strip_prefix("label!=") {
            f.not_labels.push(kv(v));
            continue;
        }
        let Some((k, v)) = s.split_once('=') else { bail!("bad format of filter (expected name=value): {s}") };
        match k {
            "dangling" => {
                f.dangling = Some(match v {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => bail!("invalid filter 'dangling={v}'"),
                })
            }
            "name" => f.names.push(v.to_string()),
            "label" => f.labels.push(kv(v)),
            "driver" => f.drivers.push(v.to_string()),
            other => bail!("invalid filter '{other}'"),
        }
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_filters_as_docker_reads_them() {
        let f = volume_filter(&["label=a=1".into(), "name=ata".into(), "label!=b".into()]).unwrap();
        assert_eq!(f.labels, [("a".to_string(), Some("1".to_string()))]);
        assert_eq!((f.names.len(), f.not_labels.len()), (1, 1));
        assert_eq!(volume_filter(&["dangling=true".into()]).unwrap().dangling, Some(true));
        for bad in ["colour=red", "dangling=maybe", "noequals"] {
            assert!(volume_filter(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
