//! Parse and check a generated 1,000-rule file (and parse alone, to tell the two apart).

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

#[path = "support/generated.rs"]
mod generated;

fn bench(c: &mut Criterion) {
    let source = generated::rules_file(1000);
    assert!(publish_guard::compile(&source).is_ok());
    let mut group = c.benchmark_group("check");
    group.sample_size(20);
    group.bench_function("parse a 1,000-rule file", |b| {
        b.iter(|| publish_guard::language::parser::parse(black_box(&source)))
    });
    group.bench_function("parse + check a 1,000-rule file", |b| {
        b.iter(|| publish_guard::compile(black_box(&source)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
