//! docker's option strings (`-p`, `--tmpfs`, `-e`/`--env-file`, sizes, `--security-opt`)
//! parsed into the runtime's typed options: the library never sees a docker flag string.

use anyhow::{bail, Context};
use rbuild_runtime::container::TmpfsSpec;
use rbuild_runtime::{Port, Proto, SecurityOptions};
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

/// `-p [IP:]HOST:CONTAINER[/tcp]`.
pub fn publish(s: &str) -> anyhow::Result<Port> {
    let bad = || anyhow::anyhow!("invalid publish spec {s:?} (expected [IP:]HOST_PORT:CONTAINER_PORT)");
    let spec = s.strip_suffix("/tcp").unwrap_or(s);
    if spec.contains('/') {
        bail!("{s}: only tcp ports can be published");
    }
    let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
    let (ip, host, ctr) = match parts.as_slice() {
        [c, h] => ("0.0.0.0", *h, *c),
        [c, h, ip] => (*ip, *h, *c),
        _ => return Err(bad()),
    };
    let port = |p: &str| p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad);
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    ip.parse::<std::net::IpAddr>().map_err(|_| bad())?;
    Ok(Port { host_ip: ip.to_string(), host_port: port(host)?, container_port: port(ctr)?, proto: Proto::Tcp })
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
        assert_eq!(
            publish("8080:80").unwrap(),
            Port { host_ip: "0.0.0.0".into(), host_port: 8080, container_port: 80, proto: Proto::Tcp }
        );
        assert_eq!(publish("127.0.0.1:8080:80/tcp").unwrap().host_ip, "127.0.0.1");
        assert_eq!(publish("[::1]:8080:80").unwrap().host_ip, "::1");
        assert!(publish("80").is_err());
        assert!(publish("a:80").is_err());
        assert!(publish("1:2/udp").is_err());
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
