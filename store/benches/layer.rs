//! Turning a 512 MiB tree into a stored layer: tar + sha256 (no compression), with and
//! without writing the blob. The tree is 2048 files of 256 KiB, half random, half text,
//! like the `fatlayer` workload.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rbuild_store::layer::{write_layer, WriteOptions};
use rbuild_store::Store;
use std::io::Write;
use std::path::{Path, PathBuf};

const FILES: usize = 2048;
const SIZE: usize = 256 * 1024;

fn tree() -> PathBuf {
    let dir = PathBuf::from("/var/tmp/rbuild-bench-tree-512m");
    if dir.join(".complete").exists() {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let mut seed: u64 = 0x9E3779B97F4A7C15;
    let mut buf = vec![0u8; SIZE];
    for i in 0..FILES {
        if i % 2 == 0 {
            for chunk in buf.chunks_mut(8) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                chunk.copy_from_slice(&seed.to_le_bytes()[..chunk.len()]);
            }
        } else {
            let line = format!("line {i} of compressible text\n");
            for (k, b) in buf.iter_mut().enumerate() {
                *b = line.as_bytes()[k % line.len()];
            }
        }
        std::fs::File::create(dir.join(format!("data/f{i:04}"))).unwrap().write_all(&buf).unwrap();
    }
    std::fs::write(dir.join(".complete"), "").unwrap();
    dir
}

/// Counts and hashes, discards.
struct Sink(rbuild_store::digest::Hasher);
impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn bench(c: &mut Criterion) {
    let src = tree();
    let bytes = (FILES * SIZE) as u64;
    let mut g = c.benchmark_group("layer");
    g.sample_size(10);
    g.measurement_time(std::time::Duration::from_secs(20));
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("tar_sha256_512MiB", |b| {
        b.iter(|| {
            let (s, _) = write_layer(&src, &WriteOptions::default(), Sink(Default::default())).unwrap();
            s.0.finish()
        })
    });
    let root = Path::new("/var/tmp/rbuild-bench-store");
    let _ = std::fs::remove_dir_all(root);
    let store = Store::open(root).unwrap();
    g.bench_function("commit_blob_512MiB", |b| {
        b.iter(|| {
            let l = store.commit_dir(&src, &WriteOptions::default(), false).unwrap();
            // Remove it so the next round writes it again.
            std::fs::remove_file(store.blob_path(&l.diff_id)).unwrap();
            l
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(root);
}

criterion_group!(benches, bench);
criterion_main!(benches);
