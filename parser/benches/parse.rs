//! Parse throughput on a generated 10,000-instruction Dockerfile.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rbuild_parser::{ast, Dockerfile, Graph};

/// A realistic mix: several stages, continuations, JSON and shell forms, ENV/LABEL, COPY.
pub fn generated(n: usize) -> String {
    let mut s = String::from("# syntax=docker/dockerfile:1\nARG BASE=busybox\n");
    let mut i = 0;
    let mut stage = 0;
    while i < n {
        if i % 500 == 0 {
            s.push_str(&format!("FROM $BASE AS s{stage}\n"));
            stage += 1;
            i += 1;
            continue;
        }
        let line = match i % 10 {
            0 => format!("RUN echo step {i} && \\\n    mkdir -p /opt/d{i} && \\\n    touch /opt/d{i}/f\n"),
            1 => format!("ENV K{i}=v{i} PATH=/opt/d{i}:$PATH NAME=\"a value {i}\"\n"),
            2 => format!("COPY --chown=1000:1000 src/f{i}.txt /app/f{i}.txt\n"),
            3 => format!("LABEL org.example.l{i}=\"label {i}\" version=1.{i}\n"),
            4 => format!("RUN [\"/bin/sh\", \"-c\", \"echo exec {i}\"]\n"),
            5 => format!("WORKDIR /work/{i}\n"),
            6 => "# a comment between instructions\nUSER app\n".to_string(),
            7 => format!("ARG A{i}=default{i}\n"),
            8 if stage > 1 => format!("COPY --from=s0 /opt /opt{i}\n"),
            8 => format!("COPY ctx/{i} /opt{i}\n"),
            _ => format!("EXPOSE {}/tcp\n", 1000 + i % 60000),
        };
        s.push_str(&line);
        i += 1;
    }
    s.push_str("CMD [\"sh\"]\n");
    s
}

fn bench(c: &mut Criterion) {
    let src = generated(10_000);
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Bytes(src.len() as u64));
    g.bench_function("ast_10k", |b| b.iter(|| ast::parse(&src).unwrap()));
    g.bench_function("typed_10k", |b| b.iter(|| Dockerfile::parse(&src).unwrap()));
    g.bench_function("graph_10k", |b| {
        b.iter(|| {
            let df = Dockerfile::parse(&src).unwrap();
            Graph::build(&df, &Default::default(), None).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
