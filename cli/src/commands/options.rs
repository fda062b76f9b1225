//! docker's option strings (`-p`, `-e`/`--env-file`, sizes, `--security-opt`,
//! `--restart`, `--ulimit`, `--sysctl`, durations, detach keys, labels) parsed into the
//! runtime's typed options: the library never sees a docker flag string. Filesystem
//! options (`-v`, `--mount`, `--tmpfs`, `--device`) are in `mountopts.rs`.

use anyhow::{bail, Context};
use rbuild_runtime::container::RestartPolicy;
use rbuild_runtime::{NetRequest, Network, Port, Proto, Rlimit, SecurityOptions};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// docker's `RAMInBytes`: `512`, `64k`, `128m`, `1g` (binary units, an optional `b`).
pub fn bytes(s: &str) -> anyhow::Result<u64> {
    let t = s.trim().to_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let v: f64 = num
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .with_context(|| format!("invalid size: {s:?}"))?;
    Ok((v * mult as f64) as u64)
}

/// `-p [IP:][HOST:]CONTAINER[/tcp|udp]`, ports or equal-length ranges (`8000-8010:80-90`);
/// no host port (or `IP::CONTAINER`) means a random one (0 here), no IP every address
/// (empty here: the runtime binds IPv4 and IPv6, as docker does).
pub fn publish(s: &str) -> anyhow::Result<Vec<Port>> {
    let bad = |why: &str| anyhow::anyhow!("invalid publish spec {s:?}: {why}");
    let (spec, proto) = match s.rsplit_once('/') {
        Some((p, "tcp")) => (p, Proto::Tcp),
        Some((p, "udp")) => (p, Proto::Udp),
        Some((_, other)) => return Err(bad(&format!("unknown protocol {other:?} (tcp or udp)"))),
        None => (s, Proto::Tcp),
    };
    // An IPv6 address is in brackets: [::1]:8080:80.
    let (ip, rest) = match spec.strip_prefix('[') {
        Some(r) => {
            let (ip, rest) = r.split_once("]:").ok_or_else(|| bad("unclosed '['"))?;
            (Some(ip), rest)
        }
        None => match spec.matches(':').count() {
            2 => {
                let (ip, rest) = spec.split_once(':').unwrap_or_default();
                (Some(ip), rest)
            }
            0 | 1 => (None, spec),
            _ => return Err(bad("too many colons")),
        },
    };
    let ip = match ip {
        Some(ip) if !ip.is_empty() => {
            ip.parse::<std::net::IpAddr>().map_err(|_| bad(&format!("invalid IP address {ip:?}")))?;
            ip.to_string()
        }
        _ => String::new(),
    };
    let (host, ctr) = match rest.split_once(':') {
        Some((h, c)) => (h, c),
        None => ("", rest),
    };
    let range = |r: &str| -> anyhow::Result<(u16, u16)> {
        let (a, b) = r.split_once('-').unwrap_or((r, r));
        let p = |x: &str| x.parse::<u16>().ok().ok_or_else(|| bad(&format!("invalid port {x:?}")));
        let (a, b) = (p(a)?, p(b)?);
        if b < a {
            return Err(bad("a range must go up"));
        }
        Ok((a, b))
    };
    let (c0, c1) = range(ctr)?;
    if c0 == 0 {
        return Err(bad("the container port cannot be 0"));
    }
    let hosts: Vec<u16> = if host.is_empty() {
        vec![0; (c1 - c0) as usize + 1]
    } else {
        let (h0, h1) = range(host)?;
        if h1 - h0 != c1 - c0 && h0 != h1 {
            return Err(bad("the host and container ranges differ in length"));
        }
        if h0 == h1 && c0 != c1 {
            return Err(bad("a range of container ports needs a range of host ports"));
        }
        (h0..=h1).collect()
    };
    Ok((c0..=c1)
        .zip(hosts)
        .map(|(c, h)| Port { host_ip: ip.clone(), host_port: h, container_port: c, proto })
        .collect())
}

/// Every `-p` (`-P`, the image's EXPOSEd ports, is the runtime's: it knows the image).
pub fn publish_all(specs: &[String]) -> anyhow::Result<Vec<Port>> {
    let mut out = Vec::new();
    for s in specs {
        out.extend(publish(s)?);
    }
    Ok(out)
}

/// `--network NAME|bridge|none|host|container:NAME` with `--network-alias` and `--ip`.
pub fn network(name: &str, aliases: &[String], ip: Option<&str>) -> anyhow::Result<Network> {
    let plain = |n: &Network| -> anyhow::Result<()> {
        if !aliases.is_empty() || ip.is_some() {
            bail!(
                "network-scoped aliases and --ip are only supported for user-defined networks (not {})",
                n.names()[0]
            );
        }
        Ok(())
    };
    let n = match name {
        "host" => Network::Host,
        "none" => Network::None,
        _ if name.starts_with("container:") => Network::Container(name.trim_start_matches("container:").to_string()),
        _ => {
            let ip = ip.map(|i| i.parse().with_context(|| format!("invalid --ip {i:?}"))).transpose()?;
            let req = NetRequest { aliases: aliases.to_vec(), ip, ..NetRequest::on(name) };
            if name == "bridge" && (!aliases.is_empty() || ip.is_some()) {
                bail!(
                    "user specified IP address and network-scoped aliases are supported only for user-defined networks"
                );
            }
            return Ok(Network::Bridge(vec![req]));
        }
    };
    plain(&n)?;
    Ok(n)
}

/// `--add-host NAME:IP`.
pub fn add_host(s: &str) -> anyhow::Result<(String, String)> {
    let (name, ip) = s
        .split_once(':')
        .filter(|(name, _)| !name.is_empty())
        .with_context(|| format!("invalid argument {s:?} for --add-host: expected NAME:IP"))?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if ip != "host-gateway" {
        ip.parse::<std::net::IpAddr>().with_context(|| format!("invalid IP address in --add-host {s:?}"))?;
    }
    Ok((name.to_string(), ip.to_string()))
}

/// `--link NAME[:ALIAS]`.
pub fn link(s: &str) -> (String, String) {
    let (name, alias) = s.split_once(':').unwrap_or((s, s));
    (name.trim_start_matches('/').to_string(), alias.to_string())
}

/// The run's variables: `--env-file`s, then `-e`; `NAME` alone takes this process's value
/// and is left out when it has none, as docker does.
pub fn env(files: &[PathBuf], vars: &[String]) -> anyhow::Result<Vec<String>> {
    let mut raw = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).with_context(|| format!("reading env file {}", f.display()))?;
        raw.extend(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from));
    }
    raw.extend(vars.iter().cloned());
    Ok(raw
        .into_iter()
        .filter_map(|e| if e.contains('=') { Some(e) } else { std::env::var(&e).ok().map(|v| format!("{e}={v}")) })
        .collect())
}

/// `--privileged`, `--cap-add`, `--cap-drop` and `--security-opt` (`no-new-privileges`,
/// `no-new-privileges=true|false`, `seccomp=unconfined`; `:` as docker's older
/// separator; `apparmor=`/`label=` accepted and ignored, as docker does on a host without
/// that LSM).
pub fn security(
    privileged: bool,
    cap_add: &[String],
    cap_drop: &[String],
    opts: &[String],
) -> anyhow::Result<SecurityOptions> {
    let mut s =
        SecurityOptions { privileged, cap_add: cap_add.to_vec(), cap_drop: cap_drop.to_vec(), ..Default::default() };
    for opt in opts {
        let (k, v) = match opt.split_once(['=', ':']) {
            Some((k, v)) => (k, Some(v)),
            None => (opt.as_str(), None),
        };
        match (k, v) {
            ("no-new-privileges", None) => s.no_new_privileges = true,
            ("no-new-privileges", Some("true")) => s.no_new_privileges = true,
            ("no-new-privileges", Some("false")) => s.no_new_privileges = false,
            ("no-new-privileges", Some(_)) => bail!("invalid --security-opt 2: {opt:?}"),
            ("seccomp", Some("unconfined")) => s.seccomp_unconfined = true,
            ("seccomp", Some(_)) => {
                bail!(
                    "--security-opt {opt}: only docker's default seccomp profile and seccomp=unconfined are supported"
                )
            }
            ("apparmor", Some(_)) | ("label", Some(_)) => {}
            _ => bail!("invalid --security-opt: {opt:?}"),
        }
    }
    Ok(s)
}

/// `--restart no|always|unless-stopped|on-failure[:N]`, with docker's messages.
pub fn restart(s: &str) -> anyhow::Result<RestartPolicy> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() > 2 {
        bail!("invalid restart policy format");
    }
    let count = match parts.get(1) {
        Some(n) => Some(n.parse::<i64>().map_err(|_| anyhow::anyhow!("maximum retry count must be an integer"))?),
        None => None,
    };
    let policy = match parts[0] {
        "" | "no" => RestartPolicy::No,
        "always" => RestartPolicy::Always,
        "unless-stopped" => RestartPolicy::UnlessStopped,
        "on-failure" => {
            let n = count.unwrap_or(0);
            if n < 0 {
                bail!("maximum retry count cannot be negative");
            }
            return Ok(RestartPolicy::OnFailure { max_retries: u32::try_from(n).unwrap_or(u32::MAX) });
        }
        other => bail!("invalid restart policy '{other}'"),
    };
    if count.is_some() {
        bail!("maximum retry count cannot be used with restart policy '{}'", policy.name());
    }
    Ok(policy)
}

/// A Go duration (`1h30m`, `10s`, `1.5s`, `300ms`, `0`), as docker's duration flags take.
pub fn go_duration(s: &str) -> anyhow::Result<std::time::Duration> {
    let bad = || anyhow::anyhow!("invalid duration {s:?} (e.g. 30s, 1m30s, 500ms)");
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut nanos = 0f64;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let v: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        nanos += v * unit;
        rest = &rest[u..];
    }
    if neg && nanos > 0.0 {
        bail!("negative duration {s:?}");
    }
    Ok(std::time::Duration::from_nanos(nanos as u64))
}

/// docker's detach keys (`ctrl-p,ctrl-q`, `a`, `ctrl-@`, `ctrl-[` …) as bytes.
pub fn detach_keys(s: &str) -> anyhow::Result<Vec<u8>> {
    let bad = || anyhow::anyhow!("Invalid detach keys ({s}) provided");
    let mut out = Vec::new();
    for key in s.split(',') {
        let k = key.to_ascii_lowercase();
        match k.strip_prefix("ctrl-") {
            Some(c) if c.len() == 1 => {
                let b = c.as_bytes()[0];
                out.push(match b {
                    b'a'..=b'z' => b - b'a' + 1,
                    b'@' => 0,
                    b'[' => 27,
                    b'\\' => 28,
                    b']' => 29,
                    b'^' => 30,
                    b'_' => 31,
                    _ => return Err(bad()),
                });
            }
            None if key.len() == 1 => out.push(key.as_bytes()[0]),
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

/// `--ulimit NAME=SOFT[:HARD]` (go-units' ParseUlimit).
pub fn ulimit(s: &str) -> anyhow::Result<Rlimit> {
    let (name, values) = s.split_once('=').with_context(|| format!("invalid ulimit argument: {s}"))?;
    if !rbuild_runtime::ulimit_known(name) {
        bail!("invalid argument {s:?} for \"--ulimit\" flag: invalid ulimit type: {name}");
    }
    let num = |v: &str| v.parse::<i64>().with_context(|| format!("invalid ulimit value {v:?} in {s}"));
    let (soft, hard) = match values.split_once(':') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(values)?, num(values)?),
    };
    if soft > hard && hard != -1 {
        bail!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}");
    }
    Ok(Rlimit { name: name.to_string(), soft, hard })
}

/// `--sysctl KEY=VALUE`: docker's allowed namespaced ones.
pub fn sysctl(s: &str) -> anyhow::Result<(String, String)> {
    const ALLOWED: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let not_allowed = || anyhow::anyhow!("invalid argument {s:?} for \"--sysctl\" flag: sysctl '{s}' is not allowed");
    let (k, v) = s.split_once('=').ok_or_else(not_allowed)?;
    if ALLOWED.contains(&k) || k.starts_with("net.") || k.starts_with("fs.mqueue.") {
        Ok((k.to_string(), v.to_string()))
    } else {
        Err(not_allowed())
    }
}

/// `--label`s over `--label-file`s (KEY=VALUE lines, `#` comments). A KEY alone is a
/// label with an empty value on the command line; in a file docker skips it.
pub fn labels(files: &[PathBuf], labels: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut raw = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).with_context(|| format!("reading label file {}", f.display()))?;
        raw.extend(text.lines().map(str::trim).filter(|l| l.contains('=') && !l.starts_with('#')).map(String::from));
    }
    raw.extend(labels.iter().cloned());
    Ok(raw
        .into_iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l, String::new()),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_docker_reads_them() {
        assert_eq!(bytes("512").unwrap(), 512);
        assert_eq!(bytes("64k").unwrap(), 64 << 10);
        assert_eq!(bytes("128m").unwrap(), 128 << 20);
        assert_eq!(bytes("1G").unwrap(), 1 << 30);
        assert_eq!(bytes("1.5gb").unwrap(), 3 << 29);
        assert!(bytes("-1m").is_err());
        assert!(bytes("lots").is_err());
    }

    #[test]
    fn publish_specs() {
        let one = |s: &str| publish(s).unwrap().remove(0);
        assert_eq!(
            one("8080:80"),
            Port { host_ip: String::new(), host_port: 8080, container_port: 80, proto: Proto::Tcp }
        );
        assert_eq!(one("127.0.0.1:8080:80/tcp").host_ip, "127.0.0.1");
        assert_eq!(one("[::1]:8080:80").host_ip, "::1");
        assert_eq!(one("80"), Port { host_ip: String::new(), host_port: 0, container_port: 80, proto: Proto::Tcp });
        assert_eq!(one("127.0.0.1::80").host_port, 0);
        assert_eq!(one("53:53/udp").proto, Proto::Udp);
        let r = publish("8000-8002:9000-9002").unwrap();
        assert_eq!(
            r.iter().map(|p| (p.host_port, p.container_port)).collect::<Vec<_>>(),
            [(8000, 9000), (8001, 9001), (8002, 9002)]
        );
        assert_eq!(publish("7000-7001").unwrap().len(), 2);
        assert!(publish("a:80").is_err());
        assert!(publish("1:2/sctp").is_err());
        assert!(publish("8000-8001:80-82").is_err());
        assert!(publish("9-8:9-8").is_err());
        assert!(publish("300.1.1.1:80:80").is_err());
        assert_eq!(one("0:80").host_port, 0, "0 is a random host port, as docker's");
        assert!(publish("80:0").is_err());
    }

    #[test]
    fn env_files_then_variables_and_bare_names() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("env");
        std::fs::write(&f, "# comment\nA=1\n\nB=2\n").unwrap();
        std::env::set_var("RBUILD_TEST_FROM_HOST", "yes");
        let v = env(&[f], &["B=3".into(), "RBUILD_TEST_FROM_HOST".into(), "RBUILD_TEST_UNSET_XYZ".into()]).unwrap();
        assert_eq!(v, ["A=1", "B=2", "B=3", "RBUILD_TEST_FROM_HOST=yes"]);
    }

    #[test]
    fn restart_policies_with_dockers_messages() {
        assert_eq!(restart("no").unwrap(), RestartPolicy::No);
        assert_eq!(restart("always").unwrap(), RestartPolicy::Always);
        assert_eq!(restart("unless-stopped").unwrap(), RestartPolicy::UnlessStopped);
        assert_eq!(restart("on-failure").unwrap(), RestartPolicy::OnFailure { max_retries: 0 });
        assert_eq!(restart("on-failure:3").unwrap(), RestartPolicy::OnFailure { max_retries: 3 });
        assert_eq!(restart("foo").unwrap_err().to_string(), "invalid restart policy 'foo'");
        assert_eq!(
            restart("always:3").unwrap_err().to_string(),
            "maximum retry count cannot be used with restart policy 'always'"
        );
        assert_eq!(restart("on-failure:-1").unwrap_err().to_string(), "maximum retry count cannot be negative");
        assert_eq!(restart("on-failure:x").unwrap_err().to_string(), "maximum retry count must be an integer");
        assert_eq!(restart("a:b:c").unwrap_err().to_string(), "invalid restart policy format");
    }

    #[test]
    fn durations_keys_limits_and_sysctls() {
        use std::time::Duration;
        assert_eq!(go_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(go_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(go_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(go_duration("0").unwrap(), Duration::ZERO);
        assert!(go_duration("10").is_err() && go_duration("5d").is_err() && go_duration("-1s").is_err());
        assert_eq!(detach_keys("ctrl-p,ctrl-q").unwrap(), [0x10, 0x11]);
        assert_eq!(detach_keys("ctrl-@,a,ctrl-[").unwrap(), [0, b'a', 27]);
        assert!(detach_keys("ctrl-1").is_err() && detach_keys("ab").is_err());
        assert_eq!(ulimit("nofile=1024:2048").unwrap(), Rlimit { name: "nofile".into(), soft: 1024, hard: 2048 });
        assert_eq!(ulimit("nproc=64").unwrap().hard, 64);
        assert!(ulimit("bogus=1").is_err() && ulimit("nofile=2:1").is_err() && ulimit("nofile").is_err());
        assert_eq!(sysctl("net.ipv4.ip_forward=1").unwrap().0, "net.ipv4.ip_forward");
        assert!(sysctl("kernel.shmmax=1").is_ok() && sysctl("fs.mqueue.msg_max=20").is_ok());
        assert!(sysctl("kernel.hostname=x")
            .unwrap_err()
            .to_string()
            .ends_with("sysctl 'kernel.hostname=x' is not allowed"));
    }

    #[test]
    fn security_options() {
        let s = security(false, &[], &["NET_RAW".into()], &["no-new-privileges".into()]).unwrap();
        assert!(s.no_new_privileges && !s.privileged);
        let opts = |o: &[&str]| security(false, &[], &[], &o.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert!(!opts(&["no-new-privileges", "no-new-privileges=false"]).unwrap().no_new_privileges);
        assert!(opts(&["no-new-privileges:true"]).unwrap().no_new_privileges);
        assert!(opts(&["seccomp=unconfined"]).unwrap().seccomp_unconfined);
        assert!(opts(&["apparmor=docker-default", "label=disable"]).is_ok());
        for bad in ["no-new-privileges=maybe", "seccomp=/etc/profile.json", "bogus", "nonsense"] {
            assert!(opts(&[bad]).is_err(), "{bad}");
        }
    }
}
