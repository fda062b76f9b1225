//! The attach protocol between a container's shim and `attach` clients, over the unix
//! socket `attach.sock` in the container's directory (or a socket pair handed to the shim
//! when `run` attaches from the start). Both directions are frames: a kind byte, a
//! big-endian u32 length, the payload. The client speaks first ([`HELLO`]: the streams it
//! wants); the shim sends output as it comes and [`EXIT`] with the exit code when the
//! container's process has ended and all its output was sent.

use std::io::{self, Read, Write};
use std::path::Path;

/// Client → shim: input for the container's stdin.
pub const STDIN: u8 = 0;
/// Shim → client: the container's stdout (a tty's whole output).
pub const STDOUT: u8 = 1;
/// Shim → client: the container's stderr.
pub const STDERR: u8 = 2;
/// Shim → client: the process ended; payload the exit code (i32, big-endian).
pub const EXIT: u8 = 3;
/// Client → shim: no more input (the container's stdin closes if it is `StdinOnce`).
pub const STDIN_EOF: u8 = 4;
/// Client → shim: the terminal's size (rows u16, columns u16).
pub const RESIZE: u8 = 5;
/// Client → shim, first: one byte of [`WANT_STDIN`] | [`WANT_STDOUT`] | [`WANT_STDERR`].
pub const HELLO: u8 = 6;

pub const WANT_STDIN: u8 = 1;
pub const WANT_STDOUT: u8 = 2;
pub const WANT_STDERR: u8 = 4;

/// The largest payload a frame may carry.
pub const MAX_FRAME: usize = 1 << 20;

/// The socket's name in the container's directory.
pub const SOCKET: &str = "attach.sock";

pub fn write_frame(w: &mut impl Write, kind: u8, payload: &[u8]) -> io::Result<()> {
    let mut frame = Vec::with_capacity(5 + payload.len());
    frame.push(kind);
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    w.write_all(&frame)
}

/// The next frame, or None at the end of the stream.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    loop {
        match r.read(&mut head[..1]) {
            Ok(0) => return Ok(None),
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    r.read_exact(&mut head[1..])?;
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("attach frame of {len} bytes")));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some((head[0], payload)))
}

/// A path for the socket in `dir` that fits a sockaddr_un whatever `dir`'s length: the
/// directory through a descriptor (`/proc/self/fd/N/attach.sock`). Keep the returned
/// descriptor open while the path is used.
pub fn socket_path(dir: &Path) -> io::Result<(rustix::fd::OwnedFd, String)> {
    use rustix::fd::AsRawFd;
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(dir, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
    let path = format!("/proc/self/fd/{}/{SOCKET}", fd.as_raw_fd());
    Ok((fd, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_end_cleanly() {
        let mut buf = Vec::new();
        write_frame(&mut buf, STDOUT, b"hello").unwrap();
        write_frame(&mut buf, EXIT, &3i32.to_be_bytes()).unwrap();
        let mut r = &buf[..];
        assert_eq!(read_frame(&mut r).unwrap(), Some((STDOUT, b"hello".to_vec())));
        assert_eq!(read_frame(&mut r).unwrap(), Some((EXIT, vec![0, 0, 0, 3])));
        assert_eq!(read_frame(&mut r).unwrap(), None);
        // A cut frame is an error, an absurd length too.
        assert!(read_frame(&mut &buf[..3]).is_err());
        assert!(read_frame(&mut &[1u8, 0xff, 0xff, 0xff, 0xff][..]).is_err());
    }
}
