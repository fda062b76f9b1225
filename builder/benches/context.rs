//! Context hashing: selecting and digesting a 5,000-file context, cold (every file hashed)
//! and warm (the stat cache answers), and raw sha256 throughput against SHA-NI's
//! ~1.5–2 GB/s per core.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rbuild_builder::context::{items_digest, Source, StatCache};
use sha2::Digest as _;

fn bench(c: &mut Criterion) {
    let dir = tempfile::Builder::new().prefix("rbuild-bench-ctx").tempdir_in("/var/tmp").unwrap();
    let ctx = dir.path().join("ctx");
    for d in 0..50 {
        std::fs::create_dir_all(ctx.join(format!("m{d}"))).unwrap();
        for f in 0..100 {
            std::fs::write(ctx.join(format!("m{d}/f{f}.txt")), vec![b'a' + (f % 26) as u8; 8000]).unwrap();
        }
    }
    let cache = dir.path().join("cache");
    let mut g = c.benchmark_group("context");
    g.sample_size(10);
    g.throughput(Throughput::Elements(5000));
    g.bench_function("select_hash_cold_5000_files", |b| {
        b.iter(|| {
            let src = Source { root: ctx.clone(), ignore: None, exclude: None, parallel: true };
            let mut items = src.select(".").unwrap();
            let sc = StatCache::open(&dir.path().join("nocache"), &ctx);
            sc.fill(&mut items).unwrap();
            items_digest(&items)
        })
    });
    // Let the files age past the stat cache's racy window, then fill it once.
    std::thread::sleep(std::time::Duration::from_millis(100));
    {
        let src = Source { root: ctx.clone(), ignore: None, exclude: None, parallel: true };
        let mut items = src.select(".").unwrap();
        let sc = StatCache::open(&cache, &ctx);
        sc.fill(&mut items).unwrap();
        sc.save();
    }
    g.bench_function("select_hash_warm_5000_files", |b| {
        b.iter(|| {
            let src = Source { root: ctx.clone(), ignore: None, exclude: None, parallel: true };
            let mut items = src.select(".").unwrap();
            let sc = StatCache::open(&cache, &ctx);
            sc.fill(&mut items).unwrap();
            items_digest(&items)
        })
    });
    g.finish();
    let data = vec![7u8; 64 << 20];
    let mut g = c.benchmark_group("sha256");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("sha256_64MiB", |b| b.iter(|| sha2::Sha256::digest(&data)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
