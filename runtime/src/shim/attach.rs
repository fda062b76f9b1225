//! The shim's side of `attach`: it listens on the container's `attach.sock`, sends every
//! attached client the output it asked for as the pumps read it, and passes clients'
//! input to the container's stdin (a `-t` container's pty, or the pipe of an `-i` one)
//! and their terminal sizes to the pty. Clients come and go while the container runs;
//! each gets [`wire::EXIT`] when the process has ended.

use super::wire;
use rustix::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A client too slow to take output for this long is dropped (the container must not
/// stall behind it).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

struct Client {
    stream: UnixStream,
    stdout: bool,
    stderr: bool,
}

#[derive(Default)]
struct Clients {
    list: Vec<Client>,
    /// The exit code, once the process has ended.
    exited: Option<i32>,
}

/// The attached clients of one run of a container.
pub(crate) struct Hub {
    clients: Mutex<Clients>,
    /// Where clients' input goes; None once closed (or when nothing takes input).
    stdin: Mutex<Option<OwnedFd>>,
    /// The pty master, for window sizes.
    master: Mutex<Option<OwnedFd>>,
    /// docker's StdinOnce: the stdin closes when a client that attached it ends its input.
    stdin_once: bool,
}

impl Hub {
    pub(crate) fn new(stdin_once: bool) -> Arc<Hub> {
        Arc::new(Hub { clients: Mutex::default(), stdin: Mutex::default(), master: Mutex::default(), stdin_once })
    }

    /// Where input goes (the pty or the stdin pipe) and the pty for window sizes.
    pub(crate) fn set_io(&self, stdin: Option<OwnedFd>, master: Option<OwnedFd>) {
        if let Ok(mut s) = self.stdin.lock() {
            *s = stdin;
        }
        if let Ok(mut m) = self.master.lock() {
            *m = master;
        }
    }

    /// Sends output to the clients that want `kind`; drops those that cannot take it.
    pub(crate) fn broadcast(&self, kind: u8, data: &[u8]) {
        let Ok(mut c) = self.clients.lock() else { return };
        if c.list.is_empty() {
            return;
        }
        c.list.retain_mut(|cl| {
            let wanted = if kind == wire::STDERR { cl.stderr } else { cl.stdout };
            !wanted || data.chunks(wire::MAX_FRAME).all(|d| wire::write_frame(&mut cl.stream, kind, d).is_ok())
        });
    }

    /// The process ended with `code`: every client gets it and is let go.
    pub(crate) fn finish(&self, code: i32) {
        let Ok(mut c) = self.clients.lock() else { return };
        c.exited = Some(code);
        for mut cl in c.list.drain(..) {
            let _ = wire::write_frame(&mut cl.stream, wire::EXIT, &code.to_be_bytes());
            let _ = cl.stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Takes a new client: reads its hello, registers it for output and serves its input
    /// on a thread of its own.
    pub(crate) fn add(self: &Arc<Self>, mut stream: UnixStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let want = match wire::read_frame(&mut stream) {
            Ok(Some((wire::HELLO, p))) if p.len() == 1 => p[0],
            _ => return,
        };
        let _ = stream.set_read_timeout(None);
        let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
        let Ok(writer) = stream.try_clone() else { return };
        {
            let Ok(mut c) = self.clients.lock() else { return };
            if let Some(code) = c.exited {
                let _ = wire::write_frame(&mut stream, wire::EXIT, &code.to_be_bytes());
                return;
            }
            c.list.push(Client {
                stream: writer,
                stdout: want & wire::WANT_STDOUT != 0,
                stderr: want & wire::WANT_STDERR != 0,
            });
        }
        let hub = self.clone();
        let takes_stdin = want & wire::WANT_STDIN != 0;
        // A thread that cannot be made (the shim is between namespaces) only loses this
        // client's input.
        let _ = std::thread::Builder::new().spawn(move || hub.serve_input(stream, takes_stdin));
    }

    fn serve_input(&self, mut stream: UnixStream, takes_stdin: bool) {
        while let Ok(Some((kind, payload))) = wire::read_frame(&mut stream) {
            match kind {
                wire::STDIN if takes_stdin => {
                    let fd = self.stdin.lock().ok().and_then(|s| s.as_ref().and_then(|f| f.try_clone().ok()));
                    if let Some(fd) = fd {
                        if crate::sandbox::init::write_all(&fd, &payload).is_err() {
                            return;
                        }
                    }
                }
                wire::STDIN_EOF if takes_stdin && self.stdin_once => {
                    // A pty has no end of input: closing it would hang up the session.
                    let tty = self.master.lock().map(|m| m.is_some()).unwrap_or(true);
                    if let (false, Ok(mut s)) = (tty, self.stdin.lock()) {
                        s.take();
                    }
                }
                wire::RESIZE if payload.len() == 4 => {
                    if let Some(m) = self.master.lock().ok().as_ref().and_then(|m| m.as_ref()) {
                        let ws = rustix::termios::Winsize {
                            ws_row: u16::from_be_bytes([payload[0], payload[1]]),
                            ws_col: u16::from_be_bytes([payload[2], payload[3]]),
                            ws_xpixel: 0,
                            ws_ypixel: 0,
                        };
                        let _ = rustix::termios::tcsetwinsize(m, ws);
                    }
                }
                _ => {}
            }
        }
    }
}

/// Listens on `dir/attach.sock` (replacing a stale one) and adds every client to `hub`.
pub(crate) fn listen(dir: &Path, hub: Arc<Hub>) -> std::io::Result<()> {
    let (_dirfd, path) = wire::socket_path(dir)?;
    let _ = std::fs::remove_file(dir.join(wire::SOCKET));
    let listener = UnixListener::bind(&path)?;
    std::thread::Builder::new().spawn(move || {
        for conn in listener.incoming() {
            match conn {
                Ok(s) => {
                    let hub = hub.clone();
                    // The hello is read on a thread of its own: a silent client must not
                    // keep others out.
                    let _ = std::thread::Builder::new().spawn(move || hub.add(s));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    })?;
    Ok(())
}
