//! Compression on every core: the input is cut into fixed chunks, each compressed on its
//! own into a complete gzip member (or zstd frame), and the members are handed out in
//! order. Concatenated members are one valid gzip stream (RFC 1952 §2.2; docker's, Go's
//! and zlib's readers read them all, as they read pigz's `--independent` output), and
//! concatenated frames one valid zstd stream. The output depends only on the input and
//! the level — never on the number of threads or their timing — so the same layer always
//! gets the same compressed digest.
//!
//! A chunk that looks like noise (already compressed or random data: its byte entropy
//! is over [`STORED_ABOVE`] bits a byte) is stored in deflate's stored blocks instead of
//! searched for matches: deflate at level 6 gains nothing on such data and runs at ~35
//! MB/s, zlib's level 0 at ~350 MB/s, and [`gzip_stored`] at ~3 GB/s (a copy and a CRC).

use super::Compression;
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// Input bytes per gzip member.
pub const GZIP_CHUNK: usize = 1 << 20;
/// Input bytes per zstd frame (zstd's window is larger than deflate's 32 KiB).
pub const ZSTD_CHUNK: usize = 4 << 20;
/// Bits of entropy per byte above which a chunk is stored rather than deflated.
pub const STORED_ABOVE: f64 = 7.95;

/// A compression algorithm and level for [`CompressingReader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codec {
    pub algo: Compression,
    pub level: i32,
}

impl Codec {
    /// docker's: gzip at the default level (6).
    pub const GZIP: Codec = Codec { algo: Compression::Gzip, level: 6 };
    /// zstd at its default level (3), as containerd and buildah write it.
    pub const ZSTD: Codec = Codec { algo: Compression::Zstd, level: 3 };

    fn chunk(self) -> usize {
        match self.algo {
            Compression::Zstd => ZSTD_CHUNK,
            _ => GZIP_CHUNK,
        }
    }

    /// One chunk as a self-contained gzip member or zstd frame.
    pub fn compress_chunk(self, data: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.compress_chunk_into(data, &mut out)?;
        Ok(out)
    }

    /// [`Codec::compress_chunk`] into `out` (cleared first; its allocation is reused).
    pub fn compress_chunk_into(self, data: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        out.clear();
        match self.algo {
            Compression::Gzip => {
                if self.level == 0 || looks_random(data) {
                    gzip_stored_into(data, out);
                    return Ok(());
                }
                let level = self.level.clamp(1, 9) as u32;
                out.reserve(data.len() / 2 + 64);
                let mut e = flate2::GzBuilder::new()
                    .operating_system(255)
                    .write(std::mem::take(out), flate2::Compression::new(level));
                e.write_all(data)?;
                *out = e.finish()?;
                Ok(())
            }
            Compression::Zstd => {
                out.reserve(zstd::zstd_safe::compress_bound(data.len()));
                zstd::bulk::Compressor::new(self.level)?.compress_to_buffer(data, out).map(|_| ())
            }
            other => Err(io::Error::new(io::ErrorKind::Unsupported, format!("{other:?} is not written by rbuild"))),
        }
    }
}

/// `data` as one gzip member of stored deflate blocks (RFC 1951 §3.2.4): what zlib
/// writes at level 0, ten times faster (a copy and a CRC).
pub fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    gzip_stored_into(data, &mut out);
    out
}

fn gzip_stored_into(data: &[u8], out: &mut Vec<u8>) {
    const BLOCK: usize = 65535;
    out.reserve(data.len() + (data.len() / BLOCK + 1) * 5 + 18);
    // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=unknown, as flate2's builder writes them.
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
    let mut blocks = data.chunks(BLOCK).peekable();
    if data.is_empty() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(b) = blocks.next() {
        out.push(u8::from(blocks.peek().is_none()));
        let n = b.len() as u16;
        out.extend_from_slice(&n.to_le_bytes());
        out.extend_from_slice(&(!n).to_le_bytes());
        out.extend_from_slice(b);
    }
    out.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
}

/// Does `data` look like noise? Small inputs: their byte entropy is over
/// [`STORED_ABOVE`]. Larger ones are judged by [`SAMPLES`] windows of [`SAMPLE`] bytes
/// spread evenly over them, every one of which must be over it (an 8 KiB window of
/// random bytes measures 7.98 ± 0.002 bits; text, code, tar headers and binaries stay
/// far below): a sixteenth of a 1 MiB chunk is read instead of all of it. A chunk
/// whose compressible parts all fall between the windows is stored whole — it loses
/// ratio, never validity.
pub fn looks_random(data: &[u8]) -> bool {
    if data.len() < 2 * SAMPLES * SAMPLE {
        return data.len() >= 4096 && entropy(data) > STORED_ABOVE;
    }
    let step = data.len() / SAMPLES;
    (0..SAMPLES).all(|i| entropy(&data[i * step..i * step + SAMPLE]) > STORED_ABOVE)
}

/// Windows [`looks_random`] measures in a large input.
pub const SAMPLES: usize = 8;
/// Bytes in each window.
pub const SAMPLE: usize = 8192;

/// Shannon entropy of `data`'s bytes, in bits a byte.
fn entropy(data: &[u8]) -> f64 {
    let mut counts = [[0u32; 256]; 4];
    let mut quads = data.chunks_exact(4);
    for q in &mut quads {
        counts[0][q[0] as usize] += 1;
        counts[1][q[1] as usize] += 1;
        counts[2][q[2] as usize] += 1;
        counts[3][q[3] as usize] += 1;
    }
    for &b in quads.remainder() {
        counts[0][b as usize] += 1;
    }
    let n = data.len() as f64;
    let mut bits = 0.0;
    let [c0, c1, c2, c3] = &counts;
    for (((a, b), c), d) in c0.iter().zip(c1).zip(c2).zip(c3) {
        let c = (a + b + c + d) as f64;
        if c > 0.0 {
            let p = c / n;
            bits -= p * p.log2();
        }
    }
    bits
}

/// A chunk to compress: its number, its input and a buffer for its output.
type Job = (u64, Vec<u8>, Vec<u8>);
/// A compressed chunk: its number, the output (in the job's buffer), the input buffer back.
type Done = (u64, io::Result<Vec<u8>>, Vec<u8>);

/// The compressed form of a reader, compressed on `threads` worker threads with a few
/// chunks in flight (memory: about `3 × threads` chunks), read in order.
pub struct CompressingReader<R> {
    src: R,
    codec: Codec,
    jobs: Option<mpsc::SyncSender<Job>>,
    done: mpsc::Receiver<Done>,
    workers: Vec<std::thread::JoinHandle<()>>,
    max_in_flight: usize,
    in_flight: usize,
    sent: u64,
    next: u64,
    early: BTreeMap<u64, io::Result<Vec<u8>>>,
    /// Buffers to reuse: inputs the workers are done with, outputs read out.
    spare_in: Vec<Vec<u8>>,
    spare_out: Vec<Vec<u8>>,
    out: Vec<u8>,
    pos: usize,
    eof: bool,
    /// Bytes of input consumed so far.
    consumed: u64,
}

impl<R: Read> CompressingReader<R> {
    /// Compresses `src` with `codec` on all cores.
    pub fn new(src: R, codec: Codec) -> Self {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 16);
        Self::with_threads(src, codec, threads)
    }

    pub fn with_threads(src: R, codec: Codec, threads: usize) -> Self {
        let threads = threads.max(1);
        let (jobs_tx, jobs_rx) = mpsc::sync_channel::<Job>(threads);
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        let workers = (0..threads)
            .map(|_| {
                let (rx, tx) = (jobs_rx.clone(), done_tx.clone());
                std::thread::spawn(move || loop {
                    let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    let Ok((seq, data, mut out)) = job else { return };
                    let r = codec.compress_chunk_into(&data, &mut out).map(|()| out);
                    if tx.send((seq, r, data)).is_err() {
                        return;
                    }
                })
            })
            .collect();
        CompressingReader {
            src,
            codec,
            jobs: Some(jobs_tx),
            done: done_rx,
            workers,
            max_in_flight: 2 * threads + 1,
            in_flight: 0,
            sent: 0,
            next: 0,
            early: BTreeMap::new(),
            spare_in: Vec::new(),
            spare_out: Vec::new(),
            out: Vec::new(),
            pos: 0,
            eof: false,
            consumed: 0,
        }
    }

    /// How much of the input has been read so far.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Reads one chunk of input (short only at the end).
    fn read_chunk(&mut self) -> io::Result<Vec<u8>> {
        let size = self.codec.chunk();
        let mut buf = self.spare_in.pop().unwrap_or_default();
        // A reused buffer is initialised already: no memset for every chunk.
        buf.resize(size, 0);
        let mut n = 0;
        while n < size {
            match self.src.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(n);
        self.consumed += n as u64;
        Ok(buf)
    }

    /// Keeps the workers busy: reads and hands out chunks until enough are in flight.
    fn fill(&mut self) -> io::Result<()> {
        while !self.eof && self.in_flight < self.max_in_flight {
            let chunk = self.read_chunk()?;
            // An empty input is still one (empty) member: a gzip stream has at least one.
            if chunk.is_empty() && self.sent > 0 {
                self.eof = true;
                break;
            }
            self.eof = chunk.len() < self.codec.chunk();
            let jobs = self.jobs.as_ref().ok_or_else(|| io::Error::other("compressor stopped"))?;
            let out = self.spare_out.pop().unwrap_or_default();
            jobs.send((self.sent, chunk, out)).map_err(|_| io::Error::other("a compression worker stopped"))?;
            self.sent += 1;
            self.in_flight += 1;
        }
        Ok(())
    }

    /// The next compressed chunk in order, or None at the end.
    fn next_chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        self.fill()?;
        if self.in_flight == 0 {
            return Ok(None);
        }
        let got = loop {
            if let Some(r) = self.early.remove(&self.next) {
                break r;
            }
            let (seq, r, input) = self.done.recv().map_err(|_| io::Error::other("the compression workers stopped"))?;
            self.spare_in.push(input);
            self.early.insert(seq, r);
        };
        self.next += 1;
        self.in_flight -= 1;
        got.map(Some)
    }
}

impl<R: Read> Read for CompressingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.out.len() {
            match self.next_chunk()? {
                Some(c) => {
                    let done = std::mem::replace(&mut self.out, c);
                    self.spare_out.push(done);
                    self.pos = 0;
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl<R> Drop for CompressingReader<R> {
    fn drop(&mut self) {
        // Closing the job channel ends the workers once they finish what they hold.
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn text(n: usize) -> Vec<u8> {
        (0..)
            .map(|i| format!("line {i} of a layer that compresses well\n"))
            .flat_map(String::into_bytes)
            .take(n)
            .collect()
    }

    fn compress(data: &[u8], codec: Codec, threads: usize) -> Vec<u8> {
        let mut out = Vec::new();
        CompressingReader::with_threads(data, codec, threads).read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn the_output_decompresses_to_the_input_and_does_not_depend_on_the_threads() {
        let mut input = text(3 * GZIP_CHUNK + 12345);
        input.extend(pseudo_random(GZIP_CHUNK + 7, 42));
        input.extend(text(5000));
        for codec in [Codec::GZIP, Codec::ZSTD] {
            let one = compress(&input, codec, 1);
            assert_eq!(one, compress(&input, codec, 4), "{codec:?}");
            let (c, mut r) = super::super::decompressed(one.as_slice()).unwrap();
            assert_eq!(c, codec.algo);
            let mut back = Vec::new();
            r.read_to_end(&mut back).unwrap();
            assert!(back == input, "{codec:?}: {} bytes back of {}", back.len(), input.len());
            assert!(one.len() < input.len() / 2, "{codec:?}: {}", one.len());
        }
    }

    #[test]
    fn members_are_one_gzip_stream_for_a_standard_reader() {
        let input = text(2 * GZIP_CHUNK + 1);
        let z = compress(&input, Codec::GZIP, 2);
        // gzip(1) reads every member of a multi-member file.
        let mut child = std::process::Command::new("gzip")
            .args(["-dc"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let feeder = std::thread::spawn(move || stdin.write_all(&z).unwrap());
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap();
        assert!(out.status.success());
        assert!(out.stdout == input);
    }

    #[test]
    fn empty_and_exact_chunk_inputs_are_valid_streams() {
        for n in [0, GZIP_CHUNK, 2 * GZIP_CHUNK] {
            let input = text(n);
            let z = compress(&input, Codec::GZIP, 2);
            let mut back = Vec::new();
            flate2::read::MultiGzDecoder::new(z.as_slice()).read_to_end(&mut back).unwrap();
            assert_eq!(back.len(), n);
        }
    }

    #[test]
    fn random_chunks_are_stored_and_text_is_not() {
        assert!(looks_random(&pseudo_random(1 << 16, 7)));
        assert!(!looks_random(&text(1 << 16)));
        assert!(!looks_random(&vec![0u8; 1 << 16]));
        assert!(looks_random(&pseudo_random(GZIP_CHUNK, 3)));
        // A large input is judged by windows spread over it: text in any one of them (or
        // all of it text but for a random stretch) keeps the chunk deflated.
        for w in 0..SAMPLES {
            let mut mixed = pseudo_random(GZIP_CHUNK, 5);
            let at = w * (GZIP_CHUNK / SAMPLES);
            mixed[at..at + SAMPLE].copy_from_slice(&text(SAMPLE));
            assert!(!looks_random(&mixed), "text in window {w}");
        }
        let mut mostly_text = text(GZIP_CHUNK);
        mostly_text[..GZIP_CHUNK / 4].copy_from_slice(&pseudo_random(GZIP_CHUNK / 4, 11));
        assert!(!looks_random(&mostly_text));
        let r = pseudo_random(GZIP_CHUNK, 9);
        let z = Codec::GZIP.compress_chunk(&r).unwrap();
        // Stored blocks: 5 bytes a block (zlib's are 16-64 KiB), plus the member's header
        // and trailer; deflate's search would take ~30x longer for nothing.
        assert!(z.len() <= r.len() + r.len() / 1000 + 18, "{}", z.len());
    }

    #[test]
    fn stored_members_are_what_zlib_reads_back() {
        for n in [0usize, 1, 65535, 65536, 200_000] {
            let data = pseudo_random(n, n as u64 + 1);
            let z = gzip_stored(&data);
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(z.as_slice()).read_to_end(&mut back).unwrap();
            assert!(back == data, "{n}");
        }
    }

    #[test]
    fn a_failing_source_fails_the_reader() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("disk on fire"));
                }
                let n = buf.len().min(self.0);
                buf[..n].fill(b'a');
                self.0 -= n;
                Ok(n)
            }
        }
        let mut r = CompressingReader::with_threads(Failing(3 * GZIP_CHUNK / 2), Codec::GZIP, 2);
        let e = r.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(e.to_string().contains("disk on fire"), "{e}");
    }
}
