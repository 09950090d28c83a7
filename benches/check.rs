//! The checker's cost: parse + check of the shipped policy, a generated 1,000-rule file
//! (and parse alone, to tell the two apart), and every rule shape of `support/shapes.rs`
//! at 1,000 rules (errors rendered too, as `check` prints them). The 10,000 and 100,000
//! rule sizes, and peak memory, are `cargo bench --bench check_sizes`: criterion's samples
//! of a file that takes a second would take minutes.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use publish_guard::language::diagnostic::render_all;
use std::hint::black_box;

#[path = "support/generated.rs"]
mod generated;
#[path = "support/shapes.rs"]
mod shapes;

/// Parse, check and render what `check` would print.
fn check(source: &str) -> usize {
    match publish_guard::compile(source) {
        Ok(checked) => render_all(&checked.warnings, "shape.rules", source).len(),
        Err(e) => render_all(e.diagnostics(), "shape.rules", source).len(),
    }
}

fn bench(c: &mut Criterion) {
    let shipped = include_str!("../rules/default.rules");
    let source = generated::rules_file(1000);
    assert!(publish_guard::compile(&source).is_ok());
    let mut group = c.benchmark_group("check");
    group.sample_size(20);
    group.bench_function("parse rules/default.rules", |b| {
        b.iter(|| publish_guard::language::parser::parse(black_box(shipped)))
    });
    group.bench_function("parse + check rules/default.rules", |b| {
        b.iter(|| publish_guard::compile(black_box(shipped)))
    });
    group.bench_function("parse a 1,000-rule file", |b| {
        b.iter(|| publish_guard::language::parser::parse(black_box(&source)))
    });
    group.bench_function("parse + check a 1,000-rule file", |b| {
        b.iter(|| publish_guard::compile(black_box(&source)))
    });
    group.finish();

    let mut group = c.benchmark_group("shape");
    group.sample_size(10);
    for shape in shapes::SHAPES {
        let file = shape.file(1_000);
        group.bench_with_input(BenchmarkId::new(shape.name(), 1_000), &file, |b, file| {
            b.iter(|| check(black_box(file)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
