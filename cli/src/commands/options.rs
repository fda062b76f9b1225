//! docker's option strings (`-p`, `--tmpfs`, `-e`/`--env-file`, sizes, `--security-opt`)
//! parsed into the runtime's typed options: the library never sees a docker flag string.

use anyhow::{bail, Context};
use rbuild_runtime::container::TmpfsSpec;
use rbuild_runtime::{NetRequest, Network, Port, Proto, SecurityOptions};
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

/// `--tmpfs PATH[:OPTIONS]`.
pub fn tmpfs(s: &str) -> TmpfsSpec {
    let (target, options) = s.split_once(':').unwrap_or((s, ""));
    TmpfsSpec { target: target.to_string(), options: options.to_string() }
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

/// `--privileged`, `--cap-add`, `--cap-drop` and `--security-opt`.
pub fn security(
    privileged: bool,
    cap_add: &[String],
    cap_drop: &[String],
    opts: &[String],
) -> anyhow::Result<SecurityOptions> {
    let mut s =
        SecurityOptions { privileged, cap_add: cap_add.to_vec(), cap_drop: cap_drop.to_vec(), ..Default::default() };
    for o in opts {
        s.apply_opt(o)?;
    }
    Ok(s)
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
        assert_eq!(one("8080:80"), Port { host_ip: "".into(), host_port: 8080, container_port: 80, proto: Proto::Tcp });
        assert_eq!(one("127.0.0.1:8080:80/tcp").host_ip, "127.0.0.1");
        assert_eq!(one("[::1]:8080:80").host_ip, "::1");
        assert_eq!(one("80"), Port { host_ip: "".into(), host_port: 0, container_port: 80, proto: Proto::Tcp });
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
    fn security_options() {
        let s = security(false, &[], &["NET_RAW".into()], &["no-new-privileges".into()]).unwrap();
        assert!(s.no_new_privileges && !s.privileged);
        assert!(security(false, &[], &[], &["nonsense".into()]).is_err());
    }
}
