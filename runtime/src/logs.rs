//! Container logs in docker's json-file format: `logs [-f] [-t] [--tail N]`.

use crate::container::Container;
use serde::Deserialize;
use std::io::{BufRead, Write};

#[derive(Deserialize)]
struct Entry {
    log: String,
    stream: String,
    time: String,
}

/// Writes the log to `out`/`err`; with `follow`, keeps going until the container stops.
pub fn print(
    c: &Container,
    follow: bool,
    timestamps: bool,
    tail: Option<usize>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<()> {
    let path = c.log_path();
    let emit = |line: &str, out: &mut dyn Write, err: &mut dyn Write| -> std::io::Result<()> {
        let Ok(e) = serde_json::from_str::<Entry>(line) else { return Ok(()) };
        let w: &mut dyn Write = if e.stream == "stderr" { err } else { out };
        if timestamps {
            write!(w, "{} ", e.time)?;
        }
        w.write_all(e.log.as_bytes())?;
        w.flush()
    };
    let mut offset = 0u64;
    if let Ok(f) = std::fs::File::open(&path) {
        let lines: Vec<String> = std::io::BufReader::new(f).lines().map_while(Result::ok).collect();
        let skip = tail.map_or(0, |n| lines.len().saturating_sub(n));
        for l in &lines[skip..] {
            emit(l, out, err)?;
        }
        offset = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    }
    if !follow {
        return Ok(());
    }
    let mut partial = String::new();
    loop {
        let running = c.running();
        if let Ok(mut f) = std::fs::File::open(&path) {
            use std::io::{Read, Seek, SeekFrom};
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            if len > offset {
                f.seek(SeekFrom::Start(offset))?;
                let mut buf = String::new();
                f.read_to_string(&mut buf)?;
                offset = len;
                partial.push_str(&buf);
                while let Some(i) = partial.find('\n') {
                    let line: String = partial.drain(..=i).collect();
                    emit(line.trim_end(), out, err)?;
                }
            }
        }
        if !running {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
