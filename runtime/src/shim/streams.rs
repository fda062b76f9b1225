//! The shim's terminal and stream plumbing: the pty, the caller's terminal in raw mode,
//! and the pumps that copy a sandbox's output into its json-file log (and, in the
//! foreground, to the caller).

use super::attach::Hub;
use super::wire;
use crate::error::{Result, Step};
use crate::sandbox::init;
use crate::state;
use rustix::fd::{AsFd, OwnedFd};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

pub(crate) fn open_pty() -> Result<(OwnedFd, (OwnedFd, std::path::PathBuf))> {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let master =
        openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).step(|| "opening a pty".into())?;
    grantpt(&master).step(|| "grantpt".into())?;
    unlockpt(&master).step(|| "unlockpt".into())?;
    let name = ptsname(&master, Vec::new()).step(|| "ptsname".into())?;
    let slave = rustix::fs::open(
        name.as_c_str(),
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .step(|| "opening the pty".into())?;
    let path = std::path::PathBuf::from(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name.as_bytes()));
    Ok((master, (slave, path)))
}

pub(crate) fn sync_winsize(master: Option<&OwnedFd>) {
    let Some(m) = master else { return };
    if let Ok(ws) = rustix::termios::tcgetwinsize(rustix::stdio::stdin()) {
        let _ = rustix::termios::tcsetwinsize(m, ws);
    }
}

/// The terminal in raw mode while a `-t` container runs in the foreground.
pub(crate) struct RawTerminal(rustix::termios::Termios);

impl RawTerminal {
    pub(crate) fn enter() -> Option<RawTerminal> {
        let stdin = rustix::stdio::stdin();
        let saved = rustix::termios::tcgetattr(stdin).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(stdin, rustix::termios::OptionalActions::Now, &raw).ok()?;
        Some(RawTerminal(saved))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = rustix::termios::tcsetattr(rustix::stdio::stdin(), rustix::termios::OptionalActions::Now, &self.0);
    }
}

pub(crate) fn copy_fd(from: &impl AsFd, to: &impl AsFd) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match rustix::io::read(from, &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if init::write_all(to, &buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// Where a foreground sandbox's stream also goes.
#[derive(Clone, Copy)]
pub(crate) enum Echo {
    Stdout,
    Stderr,
}

/// Copies a stream into the json-file log, one entry per line (as docker's json-file),
/// and as it comes to `echo` and the attached clients.
pub(crate) fn pump(
    fd: OwnedFd,
    log: Option<Arc<Mutex<std::fs::File>>>,
    stream: &'static str,
    echo: Option<Echo>,
    hub: Option<Arc<Hub>>,
) -> JoinHandle<()> {
    let kind = if stream == "stderr" { wire::STDERR } else { wire::STDOUT };
    std::thread::spawn(move || {
        let mut f = std::fs::File::from(fd);
        let mut buf = vec![0u8; 32 * 1024];
        let mut pending: Vec<u8> = Vec::new();
        let emit = |line: &[u8]| {
            if let Some(l) = &log {
                let entry =
                    serde_json::json!({"log": String::from_utf8_lossy(line), "stream": stream, "time": state::now()});
                if let Ok(mut w) = l.lock() {
                    let _ = writeln!(w, "{entry}");
                }
            }
        };
        let mut echoing = echo.is_some();
        loop {
            let n = match f.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if echoing {
                let r = match echo {
                    Some(Echo::Stderr) => init::write_all(&rustix::stdio::stderr(), &buf[..n]),
                    _ => init::write_all(&rustix::stdio::stdout(), &buf[..n]),
                };
                // A closed terminal or pipe stops the echo, not the log.
                echoing = r.is_ok();
            }
            if let Some(h) = &hub {
                h.broadcast(kind, &buf[..n]);
            }
            pending.extend_from_slice(&buf[..n]);
            while let Some(i) = pending.iter().position(|&c| c == b'\n') {
                let line: Vec<u8> = pending.drain(..=i).collect();
                emit(&line);
            }
            if pending.len() > 16 * 1024 {
                emit(&pending);
                pending.clear();
            }
        }
        if !pending.is_empty() {
            emit(&pending);
        }
    })
}
