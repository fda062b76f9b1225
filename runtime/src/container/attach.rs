//! `attach`: this terminal (or these pipes) joined to a running container's streams
//! through its shim's `attach.sock`, with docker's detach keys (Ctrl-P Ctrl-Q by default)
//! on a `-t` container, the terminal's size passed on, and this process's signals passed
//! to the container (`--sig-proxy`).

use super::error::ContainerError;
use super::state::Status;
use super::Container;
use crate::error::{Result, RuntimeError, Step};
use crate::shim::{wire, RawTerminal};
use crate::syscall::linux;
use std::io::{IsTerminal, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// docker's default detach keys: Ctrl-P Ctrl-Q.
pub const DEFAULT_DETACH_KEYS: &[u8] = &[0x10, 0x11];

/// What an attached client takes and gives.
#[derive(Debug, Clone)]
pub struct AttachOptions {
    /// Pass this process's stdin to the container (when it keeps one open).
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// The sequence that detaches from a `-t` container; empty: none.
    pub detach_keys: Vec<u8>,
    /// Pass the signals this process gets on to the container (docker's `--sig-proxy`).
    pub proxy_signals: bool,
}

impl Default for AttachOptions {
    fn default() -> Self {
        AttachOptions {
            stdin: true,
            stdout: true,
            stderr: true,
            detach_keys: DEFAULT_DETACH_KEYS.to_vec(),
            proxy_signals: true,
        }
    }
}

/// How an attachment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attached {
    /// The container's process ended with this code.
    Exited(i32),
    /// The user typed the detach keys; the container runs on.
    Detached,
    /// This process got a signal it does not pass on (`--sig-proxy=false`).
    Signaled(i32),
}

/// The hello a client sends first.
fn hello(s: &mut UnixStream, o: &AttachOptions) -> std::io::Result<()> {
    let mut want = 0;
    for (on, bit) in [(o.stdin, wire::WANT_STDIN), (o.stdout, wire::WANT_STDOUT), (o.stderr, wire::WANT_STDERR)] {
        if on {
            want |= bit;
        }
    }
    wire::write_frame(s, wire::HELLO, &[want])
}

/// A connected socket pair for a shim about to start: (ours with the hello already sent,
/// the shim's).
pub(crate) fn pair(o: &AttachOptions) -> Result<(UnixStream, rustix::fd::OwnedFd)> {
    use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
    let (ours, theirs) = socketpair(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None)
        .step(|| "creating the attach socket".into())?;
    let mut ours = UnixStream::from(ours);
    hello(&mut ours, o).step(|| "greeting the shim".into())?;
    Ok((ours, theirs))
}

/// Attaches to a running container.
pub fn attach(c: &Container, o: &AttachOptions) -> Result<Attached> {
    match c.state().status {
        Status::Running => {}
        Status::Paused => return Err(ContainerError::AttachPaused.into()),
        _ => return Err(ContainerError::AttachStopped.into()),
    }
    let (_dir, path) = wire::socket_path(&c.dir).step(|| "opening the container's directory".into())?;
    let mut s = UnixStream::connect(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => ContainerError::AttachStopped.into(),
        _ => RuntimeError::io("connecting to the container's monitor", e),
    })?;
    hello(&mut s, o).step(|| "greeting the shim".into())?;
    run_client(c, &mut s, o, true)
}

/// docker's escape proxy: passes input on until the detach sequence is typed; a partial
/// match is held back until the next byte shows whether it was one.
struct Escape<'a> {
    keys: &'a [u8],
    held: usize,
}

impl Escape<'_> {
    /// The bytes to send, and whether the sequence is complete.
    fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if self.keys.is_empty() {
                out.push(b);
                continue;
            }
            if b == self.keys[self.held] {
                self.held += 1;
                if self.held == self.keys.len() {
                    return (out, true);
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.held]);
            self.held = 0;
            if b == self.keys[0] {
                self.held = 1;
                if self.keys.len() == 1 {
                    return (out, true);
                }
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

fn send(w: &Mutex<UnixStream>, kind: u8, payload: &[u8]) -> bool {
    w.lock().map(|mut s| wire::write_frame(&mut *s, kind, payload).is_ok()).unwrap_or(false)
}

fn send_size(w: &Mutex<UnixStream>, grow: bool) {
    if let Ok(ws) = rustix::termios::tcgetwinsize(rustix::stdio::stdin()) {
        let d = u16::from(grow);
        for (rows, cols) in
            [(ws.ws_row + d, ws.ws_col + d), (ws.ws_row, ws.ws_col)].into_iter().skip(usize::from(!grow))
        {
            let mut p = rows.to_be_bytes().to_vec();
            p.extend_from_slice(&cols.to_be_bytes());
            send(w, wire::RESIZE, &p);
        }
    }
}

/// Copies this process's stdin to the shim (through the escape proxy on a tty).
fn pump_stdin(w: Arc<Mutex<UnixStream>>, keys: Vec<u8>, tty: bool, detached: Arc<AtomicBool>) {
    let mut esc = Escape { keys: if tty { &keys } else { &[] }, held: 0 };
    let mut buf = [0u8; 16 * 1024];
    let mut stdin = std::io::stdin();
    loop {
        let n = match stdin.read(&mut buf) {
            Ok(0) | Err(_) => {
                send(&w, wire::STDIN_EOF, &[]);
                return;
            }
            Ok(n) => n,
        };
        let (out, detach) = esc.feed(&buf[..n]);
        if !out.is_empty() && !send(&w, wire::STDIN, &out) {
            return;
        }
        if detach {
            detached.store(true, Ordering::SeqCst);
            if let Ok(s) = w.lock() {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
            return;
        }
    }
}

/// Writes the container's output here; the exit code when the shim sends it.
fn pump_output(mut r: UnixStream) -> Option<i32> {
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    while let Ok(Some((kind, payload))) = wire::read_frame(&mut r) {
        match kind {
            wire::STDOUT => {
                let _ = out.write_all(&payload).and_then(|()| out.flush());
            }
            wire::STDERR => {
                let _ = err.write_all(&payload).and_then(|()| err.flush());
            }
            wire::EXIT if payload.len() == 4 => {
                return Some(i32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]));
            }
            _ => {}
        }
    }
    None
}

/// The client: output to this process's stdout/stderr, stdin to the container, the
/// terminal's size and signals passed on, until the process ends or the user detaches.
pub(crate) fn run_client(c: &Container, s: &mut UnixStream, o: &AttachOptions, redraw: bool) -> Result<Attached> {
    let tty = c.config.tty;
    let with_stdin = o.stdin && c.config.open_stdin;
    let _raw = (tty && with_stdin && std::io::stdin().is_terminal()).then(RawTerminal::enter).flatten();
    // Signals are taken here (the threads below inherit the mask).
    let signals = crate::sandbox::init::FORWARDED.to_vec();
    linux::block_signals(&signals).step(|| "blocking signals".into())?;
    let writer = Arc::new(Mutex::new(s.try_clone().step(|| "duplicating the attach socket".into())?));
    if tty && std::io::stdin().is_terminal() {
        send_size(&writer, redraw);
    }
    let detached = Arc::new(AtomicBool::new(false));
    if with_stdin {
        let (w, keys, d) = (writer.clone(), o.detach_keys.clone(), detached.clone());
        std::thread::Builder::new()
            .spawn(move || pump_stdin(w, keys, tty, d))
            .step(|| "starting the input thread".into())?;
    }
    let reader = s.try_clone().step(|| "duplicating the attach socket".into())?;
    let (done_tx, done) = mpsc::channel();
    std::thread::Builder::new()
        .spawn(move || {
            let _ = done_tx.send(pump_output(reader));
        })
        .step(|| "starting the output thread".into())?;
    loop {
        match done.try_recv() {
            Ok(code) => return Ok(finished(c, code, &detached)),
            Err(mpsc::TryRecvError::Disconnected) => return Ok(finished(c, None, &detached)),
            Err(mpsc::TryRecvError::Empty) => {}
        }
        match linux::wait_signal(&signals, 100) {
            Ok(Some(libc::SIGWINCH)) if tty => send_size(&writer, false),
            Ok(Some(libc::SIGWINCH)) | Ok(None) | Err(_) => {}
            Ok(Some(sig)) if o.proxy_signals => {
                let _ = super::kill(c, sig);
            }
            Ok(Some(sig)) => return Ok(Attached::Signaled(sig)),
        }
        if let Ok(code) = done.recv_timeout(Duration::from_millis(1)) {
            return Ok(finished(c, code, &detached));
        }
    }
}

fn finished(c: &Container, code: Option<i32>, detached: &AtomicBool) -> Attached {
    if detached.load(Ordering::SeqCst) {
        return Attached::Detached;
    }
    // The shim always sends the code; a shim that died could not.
    Attached::Exited(code.unwrap_or_else(|| c.state().exit_code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_are_held_back_until_they_match() {
        let keys = DEFAULT_DETACH_KEYS;
        let mut e = Escape { keys, held: 0 };
        assert_eq!(e.feed(b"ls\r"), (b"ls\r".to_vec(), false));
        // Ctrl-P alone is held; a following byte that is not Ctrl-Q lets both through.
        assert_eq!(e.feed(&[0x10]), (vec![], false));
        assert_eq!(e.feed(b"x"), (vec![0x10, b'x'], false));
        assert_eq!(e.feed(&[b'a', 0x10, 0x11, b'b']), (vec![b'a'], true));
        let mut e = Escape { keys, held: 0 };
        assert_eq!(e.feed(&[0x10, 0x10, 0x11]), (vec![0x10], true));
        let mut none = Escape { keys: &[], held: 0 };
        assert_eq!(none.feed(&[0x10, 0x11]), (vec![0x10, 0x11], false));
    }
}
