//! Bytes relayed between two connected sockets until both sides are done: the published
//! ports' TCP proxy (`network::ports`) and the builder's ssh agent proxy
//! (`RUN --mount=type=ssh`, Unix sockets) use the same loop.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::thread;

/// A connected stream socket that can be cloned and half-closed (TCP or Unix).
pub trait Socket: Read + Write + Send + Sized + 'static {
    fn try_clone(&self) -> io::Result<Self>;
    fn shutdown(&self, how: Shutdown) -> io::Result<()>;
}

impl Socket for TcpStream {
    fn try_clone(&self) -> io::Result<Self> {
        TcpStream::try_clone(self)
    }
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        TcpStream::shutdown(self, how)
    }
}

impl Socket for UnixStream {
    fn try_clone(&self) -> io::Result<Self> {
        UnixStream::try_clone(self)
    }
    fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        UnixStream::shutdown(self, how)
    }
}

/// Copies `from` to `to` until `from` ends or either side fails, then closes `to` for
/// writing (its peer reads the end) and `from` for reading.
pub fn pump<S: Socket>(mut from: S, mut to: S) {
    let mut buf = [0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

/// Relays both ways between `a` and `b` (a to b on a thread of its own) and returns when
/// both directions have ended.
pub fn relay<S: Socket>(a: S, b: S) {
    let (Ok(a2), Ok(b2)) = (a.try_clone(), b.try_clone()) else { return };
    let up = thread::spawn(move || pump(a, b2));
    pump(b, a2);
    let _ = up.join();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each side's bytes reach the other, and one side closing its writing half ends that
    /// direction only: the answer still comes back.
    #[test]
    fn relays_both_ways_until_each_side_is_done() {
        let (client, a) = UnixStream::pair().unwrap();
        let (b, mut server) = UnixStream::pair().unwrap();
        let t = thread::spawn(move || relay(a, b));
        let mut client = client;
        client.write_all(b"ping").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"ping");
        server.write_all(b"pong").unwrap();
        drop(server);
        let mut back = Vec::new();
        client.read_to_end(&mut back).unwrap();
        assert_eq!(back, b"pong");
        t.join().unwrap();
    }
}
