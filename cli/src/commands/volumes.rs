//! `volume create|ls|inspect|rm|prune`.

use crate::cli::VolumeCmd;
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
    let dir = store.volumes_dir();
    match c {
        VolumeCmd::Create(a) => {
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
        VolumeCmd::Ls(a) => {
            check_format(a.format.as_deref())?;
            let filter = VolumeFilter::parse(&a.filter)?;
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
        VolumeCmd::Inspect(a) => crate::commands::format::inspect(store, a.typed("volume")),
        VolumeCmd::Rm(a) => {
            let mut failed = false;
            for n in &a.volumes {
                match volume::remove(store, n) {
                    Ok(()) => {
                        event(store, "volume", "destroy", n, &[("driver", "local")]);
                        outln!("{n}")?;
                    }
                    Err(rbuild_runtime::RuntimeError::NoSuchVolume(_)) if a.force => {}
                    Err(e) => {
                        errln!("Error: {}", render_error(&e.into()));
                        failed = true;
                    }
                }
            }
            Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        VolumeCmd::Prune(a) => {
            let filter = VolumeFilter::parse(&a.filter)?;
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
            if !names.is_empty() {
                outln!("Deleted Volumes:")?;
                for n in &names {
                    event(store, "volume", "destroy", n, &[("driver", "local")]);
                    outln!("{n}")?;
                }
                outln!()?;
            }
            outln!("Total reclaimed space: {}", human_size(bytes))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
