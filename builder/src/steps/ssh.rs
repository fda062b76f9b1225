//! `RUN --mount=type=ssh`: the build's ssh agent, reachable from the step through a
//! socket of its own (owned and moded as the mount says, 0600 root by default) whose
//! connections are relayed to the agent — the agent's socket itself is never mounted,
//! and nothing of it is stored.

use crate::error::{BuildError, Result};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A listening socket that relays each connection to an ssh agent; stops when dropped.
pub(crate) struct AgentProxy {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl AgentProxy {
    /// Listens at `path` for the agent at `agent`.
    pub(crate) fn start(agent: &Path, path: &Path, owner: (u32, u32), mode: u32) -> Result<AgentProxy> {
        // Fail now, not in the step, when the agent is not there.
        UnixStream::connect(agent).map_err(BuildError::io("connecting to the ssh agent at", agent))?;
        let listener = UnixListener::bind(path).map_err(BuildError::io("listening at", path))?;
        rustix::fs::chown(path, Some(rustix::fs::Uid::from_raw(owner.0)), Some(rustix::fs::Gid::from_raw(owner.1)))
            .map_err(BuildError::io("chown", path))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(BuildError::io("chmod", path))?;
        let stop = Arc::new(AtomicBool::new(false));
        let agent = agent.to_path_buf();
        let thread = std::thread::spawn({
            let stop = stop.clone();
            move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(client) = conn else { continue };
                    let Ok(upstream) = UnixStream::connect(&agent) else { continue };
                    std::thread::spawn(move || rbuild_runtime::relay::relay(client, upstream));
                }
            }
        });
        Ok(AgentProxy { path: path.to_path_buf(), stop, thread: Some(thread) })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for AgentProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// What a client writes reaches the agent and back, through a socket with the
    /// mount's owner and mode.
    #[test]
    fn relays_to_the_agent() {
        let t = tempfile::tempdir().unwrap();
        let agent_path = t.path().join("agent");
        let agent = UnixListener::bind(&agent_path).unwrap();
        let echo = std::thread::spawn(move || {
            // The proxy's own check connects once, then the client's connection.
            let _probe = agent.accept().unwrap();
            let (mut s, _) = agent.accept().unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
        });
        let proxy = AgentProxy::start(&agent_path, &t.path().join("proxy"), (0, 0), 0o600).unwrap();
        let mode = std::fs::metadata(proxy.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let mut c = UnixStream::connect(proxy.path()).unwrap();
        c.write_all(b"hello").unwrap();
        let mut back = [0u8; 5];
        c.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"hello");
        echo.join().unwrap();
        drop(proxy);
        assert!(!t.path().join("proxy").exists());
    }
}
