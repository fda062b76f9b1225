//! `rbuild build`'s BuildKit-era options, as buildx reads them: `--secret`, `--ssh` and
//! `--build-context`.

use anyhow::{bail, Context};
use rbuild_builder::NamedContext;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// `--secret id=ID[,src=FILE|source=FILE][,env=VAR][,type=file|env]`: the id and the
/// value. Without `src` or `env`, the variable named like the id, as buildx does.
pub fn secret(spec: &str) -> anyhow::Result<(String, Vec<u8>)> {
    let (mut id, mut src, mut env, mut typ) = (None, None, None, None);
    for field in spec.split(',') {
        let (k, v) =
            field.split_once('=').with_context(|| format!("invalid secret {spec:?}: {field:?} is not KEY=VALUE"))?;
        match k.trim().to_ascii_lowercase().as_str() {
            "id" => id = Some(v.to_string()),
            "src" | "source" => src = Some(v.to_string()),
            "env" => env = Some(v.to_string()),
            "type" => typ = Some(v.to_string()),
            other => bail!("invalid secret {spec:?}: unexpected key {other:?}"),
        }
    }
    let id = id.filter(|i| !i.is_empty()).with_context(|| format!("invalid secret {spec:?}: no id"))?;
    let from_env = |var: &str| -> anyhow::Result<Vec<u8>> {
        std::env::var_os(var)
            .map(std::os::unix::ffi::OsStringExt::into_vec)
            .with_context(|| format!("secret {id}: environment variable {var} is not set"))
    };
    let value = match (typ.as_deref(), src, env) {
        (Some("env"), src, env) => from_env(&env.or(src).unwrap_or_else(|| id.clone()))?,
        (_, Some(file), _) => std::fs::read(&file).with_context(|| format!("secret {id}: reading {file}"))?,
        (_, None, Some(var)) => from_env(&var)?,
        (Some("file") | None, None, None) => match std::env::var_os(&id) {
            Some(_) => from_env(&id)?,
            None => bail!("secret {id}: give src=FILE or env=VAR"),
        },
        (Some(t), _, _) => bail!("invalid secret {spec:?}: unsupported type {t:?}"),
    };
    Ok((id, value))
}

/// `--build-context NAME=VALUE`.
pub fn build_context(spec: &str) -> anyhow::Result<(String, NamedContext)> {
    let (name, value) =
        spec.split_once('=').with_context(|| format!("invalid build context {spec:?}: expected NAME=VALUE"))?;
    if name.is_empty() {
        bail!("invalid build context {spec:?}: no name");
    }
    let ctx = NamedContext::parse(value)?;
    if let NamedContext::Dir(d) = &ctx {
        if !d.is_dir() {
            bail!("build context {name}: {} is not a directory", d.display());
        }
    }
    Ok((name.to_string(), ctx))
}

/// The ssh agents of `--ssh` flags, by id: a socket given (or `$SSH_AUTH_SOCK`), or an
/// agent started here for key files (stopped when this is dropped).
#[derive(Default)]
pub struct SshAgents {
    pub sockets: Vec<(String, PathBuf)>,
    started: Vec<(Child, tempfile_dir::Dir)>,
}

impl SshAgents {
    pub fn from_flags(flags: &[String]) -> anyhow::Result<SshAgents> {
        let mut out = SshAgents::default();
        for spec in flags {
            let (id, paths) = match spec.split_once('=') {
                Some((id, p)) => (id.to_string(), p.split(',').map(PathBuf::from).collect::<Vec<_>>()),
                None => (spec.clone(), vec![]),
            };
            if id.is_empty() {
                bail!("invalid --ssh {spec:?}: no id");
            }
            let socket = match paths.as_slice() {
                [] => std::env::var_os("SSH_AUTH_SOCK")
                    .map(PathBuf::from)
                    .with_context(|| format!("--ssh {id}: SSH_AUTH_SOCK is not set (give a socket or key files)"))?,
                [p] if is_socket(p) => p.clone(),
                keys => out.start_agent(&id, keys)?,
            };
            out.sockets.push((id, socket));
        }
        Ok(out)
    }

    /// Starts `ssh-agent` on a socket of its own and adds `keys` to it.
    fn start_agent(&mut self, id: &str, keys: &[PathBuf]) -> anyhow::Result<PathBuf> {
        let dir = tempfile_dir::Dir::new()?;
        let sock = dir.0.join("agent.sock");
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting ssh-agent (install openssh-client)")?;
        self.started.push((child, dir));
        for _ in 0..200 {
            if is_socket(&sock) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        for k in keys {
            let st = Command::new("ssh-add")
                .arg("-q")
                .arg(k)
                .env("SSH_AUTH_SOCK", &sock)
                .stdin(Stdio::null())
                .status()
                .context("running ssh-add")?;
            if !st.success() {
                bail!("--ssh {id}: ssh-add could not add {}", k.display());
            }
        }
        Ok(sock)
    }
}

impl Drop for SshAgents {
    fn drop(&mut self) {
        for (child, _) in &mut self.started {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn is_socket(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.file_type().is_socket())
}

mod tempfile_dir {
    use std::path::PathBuf;

    /// A private directory under the system's temp dir, removed when dropped.
    pub struct Dir(pub PathBuf);

    impl Dir {
        pub fn new() -> std::io::Result<Dir> {
            let mut b = [0u8; 8];
            let _ = rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty());
            let name: String = b.iter().map(|x| format!("{x:02x}")).collect();
            let p = std::env::temp_dir().join(format!("rbuild-ssh-{}-{name}", std::process::id()));
            std::fs::create_dir(&p)?;
            std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
            Ok(Dir(p))
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_as_buildx_reads_them() {
        let t = std::env::temp_dir().join(format!("rbuild-secret-test-{}", std::process::id()));
        std::fs::write(&t, "v1").unwrap();
        assert_eq!(secret(&format!("id=a,src={}", t.display())).unwrap(), ("a".into(), b"v1".to_vec()));
        assert_eq!(secret(&format!("id=a,source={}", t.display())).unwrap().1, b"v1");
        let path = std::env::var("PATH").unwrap().into_bytes();
        assert_eq!(secret("id=b,env=PATH").unwrap().1, path);
        assert_eq!(secret("id=PATH").unwrap().1, path);
        assert!(secret("src=/x").is_err());
        assert!(secret("id=c,src=/nonexistent/file").is_err());
        assert!(secret("id=c,bogus=1").is_err());
        std::fs::remove_file(&t).unwrap();
    }

    #[test]
    fn build_contexts() {
        assert_eq!(
            build_context("base=docker-image://img:1").unwrap(),
            ("base".into(), NamedContext::Image("img:1".into()))
        );
        assert!(build_context("x=/nonexistent/dir").is_err());
        assert!(build_context("noequals").is_err());
        assert!(build_context("x=https://example.com/repo.git").is_err());
    }
}
