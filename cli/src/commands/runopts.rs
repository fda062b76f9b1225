//! `run`/`create` flags → the runtime's typed [`CreateOptions`]: each docker option string
//! parsed (see `options.rs`) and the flags checked against each other as docker's CLI
//! checks them (ripgrep's lowargs → hiargs).

use crate::cli::RunArgs;
use crate::commands::mountopts::{self, MountSpec};
use crate::commands::options;
use anyhow::bail;
use rbuild_runtime::container::{CreateOptions, LogDriver};
use rbuild_runtime::Limits;
use rbuild_store::config::HealthConfig;

/// The streams `run` attaches (docker's AttachStdin/Stdout/Stderr): `-a` as given (stdin
/// too with `-i`), else stdout and stderr (and stdin with `-i`), none with `-d`.
fn streams(a: &RunArgs) -> anyhow::Result<(bool, bool, bool)> {
    if a.detach && !a.attach.is_empty() {
        bail!("conflicting options: -a and -d");
    }
    let mut s = (a.interactive, a.attach.is_empty(), a.attach.is_empty());
    for x in &a.attach {
        match x.to_ascii_lowercase().as_str() {
            "stdin" => s.0 = true,
            "stdout" => s.1 = true,
            "stderr" => s.2 = true,
            _ => bail!("invalid argument {x:?} for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR"),
        }
    }
    Ok(if a.detach { (false, false, false) } else { s })
}

fn nanos(flag: &str, v: Option<&str>) -> anyhow::Result<i64> {
    let Some(v) = v else { return Ok(0) };
    let d = options::go_duration(v).map_err(|_| {
        if v.starts_with('-') {
            anyhow::anyhow!("--{flag} cannot be negative")
        } else {
            anyhow::anyhow!("invalid argument {v:?} for \"--{flag}\" flag: time: invalid duration {v:?}")
        }
    })?;
    if !d.is_zero() && d < std::time::Duration::from_millis(1) {
        bail!("--{flag} cannot be less than 1ms");
    }
    Ok(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// docker's health options: `--no-healthcheck` (a test of NONE), or the `--health-*` ones
/// (none given: the image's check).
fn healthcheck(a: &RunArgs) -> anyhow::Result<Option<HealthConfig>> {
    let h = HealthConfig {
        test: a.health_cmd.iter().flat_map(|c| ["CMD-SHELL".to_string(), c.clone()]).collect(),
        interval: nanos("health-interval", a.health_interval.as_deref())?,
        timeout: nanos("health-timeout", a.health_timeout.as_deref())?,
        start_period: nanos("health-start-period", a.health_start_period.as_deref())?,
        retries: a.health_retries.unwrap_or(0),
        ..Default::default()
    };
    if h.retries < 0 {
        bail!("--health-retries cannot be negative");
    }
    let given = h != HealthConfig::default();
    if a.no_healthcheck {
        if given {
            bail!("--no-healthcheck conflicts with --health-* options");
        }
        return Ok(Some(HealthConfig { test: vec!["NONE".into()], ..Default::default() }));
    }
    Ok(given.then_some(h))
}

pub fn create_options(a: &RunArgs) -> anyhow::Result<CreateOptions> {
    let restart = options::restart(&a.restart)?;
    if a.rm && !restart.is_no() {
        bail!("conflicting options: cannot specify both --restart and --rm");
    }
    let mut volumes = a.volume.iter().map(|v| mountopts::volume(v)).collect::<anyhow::Result<Vec<_>>>()?;
    let mut tmpfs: Vec<_> = a.tmpfs.iter().map(|t| mountopts::tmpfs(t)).collect();
    for m in &a.mount {
        match mountopts::mount(m)? {
            MountSpec::Volume(v) => volumes.push(v),
            MountSpec::Tmpfs(t) => tmpfs.push(t),
        }
    }
    let attach = streams(a)?;
    let log_driver = match a.log_driver.as_str() {
        "json-file" => LogDriver::JsonFile,
        "none" => LogDriver::None,
        other => bail!("logging driver {other:?} is not supported: rbuild keeps json-file logs or none"),
    };
    if let Some(s) = &a.stop_signal {
        rbuild_runtime::signal::parse_signal(s)?;
    }
    let shm_size = a.shm_size.as_deref().map(options::bytes).transpose()?;
    if shm_size == Some(0) {
        bail!("invalid --shm-size: it must be greater than 0");
    }
    Ok(CreateOptions {
        image: a.image.clone(),
        name: a.name.clone(),
        args: a.command.clone(),
        entrypoint: a.entrypoint.clone(),
        env: options::env(&a.env_file, &a.env)?,
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        volumes,
        volumes_from: a.volumes_from.iter().map(|v| mountopts::volumes_from(v)).collect(),
        tmpfs,
        network: options::network(&a.network, &a.network_alias, a.ip.as_deref())?,
        publish: options::publish_all(&a.publish)?,
        publish_exposed: a.publish_all,
        extra_hosts: a.add_host.iter().map(|h| options::add_host(h)).collect::<anyhow::Result<_>>()?,
        dns: a.dns.clone(),
        dns_search: a.dns_search.clone(),
        links: a.link.iter().map(|l| options::link(l)).collect(),
        tty: a.tty,
        interactive: a.interactive,
        init: a.init,
        limits: Limits {
            memory: a.memory.as_deref().map(options::bytes).transpose()?,
            pids: a.pids_limit,
            cpus: a.cpus,
        },
        security: options::security(a.privileged, &a.cap_add, &a.cap_drop, &a.security_opt)?,
        security_opt: a.security_opt.clone(),
        read_only: a.read_only,
        hostname: a.hostname.clone(),
        auto_remove: a.rm,
        restart,
        labels: options::labels(&a.label_file, &a.label)?,
        stop_signal: a.stop_signal.clone(),
        stop_timeout: a.stop_timeout,
        healthcheck: healthcheck(a)?,
        log_driver,
        attach,
        stdin_once: attach.0 && a.interactive,
        ulimits: a.ulimit.iter().map(|u| options::ulimit(u)).collect::<anyhow::Result<_>>()?,
        sysctls: a.sysctl.iter().map(|s| options::sysctl(s)).collect::<anyhow::Result<_>>()?,
        shm_size,
        devices: a.device.iter().map(|d| mountopts::device(d)).collect::<anyhow::Result<_>>()?,
    })
}
