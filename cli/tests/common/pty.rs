//! A pseudo-terminal for tests of `run -it` and `attach`: the program gets the pty's slave
//! as its stdio; the test types into the master and reads what the program shows.

use rustix::fd::OwnedFd;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a test waits for a terminal to show something before it fails.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub struct Pty {
    master: OwnedFd,
    child: Child,
    shown: Arc<Mutex<Vec<u8>>>,
}

impl Pty {
    /// Starts `cmd` on a new 24x80 terminal.
    pub fn spawn(mut cmd: Command) -> Pty {
        use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).unwrap();
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let name = ptsname(&master, Vec::new()).unwrap();
        let slave = rustix::fs::open(
            name.as_c_str(),
            rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .unwrap();
        let ws = rustix::termios::Winsize { ws_row: 24, ws_col: 80, ws_xpixel: 0, ws_ypixel: 0 };
        rustix::termios::tcsetwinsize(&slave, ws).unwrap();
        let child = cmd
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave))
            .spawn()
            .unwrap();
        drop(cmd);
        let shown = Arc::new(Mutex::new(Vec::new()));
        let (reader, out) = (master.try_clone().unwrap(), shown.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = rustix::io::read(&reader, &mut buf) {
                if n == 0 {
                    break;
                }
                out.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Pty { master, child, shown }
    }

    /// What the terminal has shown so far.
    pub fn shown(&self) -> String {
        String::from_utf8_lossy(&self.shown.lock().unwrap()).into_owned()
    }

    /// Waits until the terminal shows `needle` (panics after [`PATIENCE`]).
    pub fn expect(&self, needle: &str) {
        let t = Instant::now();
        while !self.shown().contains(needle) {
            assert!(t.elapsed() < PATIENCE, "the terminal never showed {needle:?}; it shows {:?}", self.shown());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn type_in(&self, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = rustix::io::write(&self.master, rest).unwrap();
            rest = &rest[n..];
        }
    }

    /// Waits for the program to end (killing it after [`PATIENCE`]).
    pub fn wait(mut self) -> (ExitStatus, String) {
        let t = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                // Let the reader take what is left.
                std::thread::sleep(Duration::from_millis(50));
                return (st, self.shown());
            }
            if t.elapsed() > PATIENCE {
                let _ = self.child.kill();
                panic!("the program on the terminal did not end; it shows {:?}", self.shown());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
