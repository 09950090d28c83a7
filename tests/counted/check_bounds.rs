//! The checker's cost is bounded whatever the file: a proptest over very long lines, many
//! identical rules, long `and`/`or` chains and every rule shape of the checker's benchmark,
//! asserting counted bounds (analysis steps, allocations, peak live bytes), never a time
//! on the clock, and that what parses formats and parses back.

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use publish_guard::language::diagnostic::render_all;
use publish_guard::language::format::format;
use publish_guard::language::parser::parse;

use crate::{peak, shapes};

/// Issue 12's memory target for a 1,000-rule file, for any file this test makes.
const MAX_PEAK_BYTES: usize = 64 << 20;

/// Peak live bytes per byte of source, beyond [`FIXED_BYTES`]: what linear memory means
/// here (the files below take at most about 45; 1,000 identical rules once took 12,000).
const PEAK_BYTES_PER_BYTE: usize = 100;

/// Live bytes any check may take (time-zone data, the fact space of a small file).
const FIXED_BYTES: usize = 1 << 20;

/// Allocations per byte of source, beyond [`FIXED_ALLOCATIONS`]: work in proportion to the
/// file (the files below make at most about 3).
const ALLOCATIONS_PER_BYTE: usize = 5;

/// Allocations any check may make.
const FIXED_ALLOCATIONS: usize = 10_000;

/// A file of `identical` identical rules (the first with `pad` blanks before its condition,
/// `slip` misspelling the fact), then rules whose conditions are chains of `chain` terms.
fn adversarial(pad: usize, identical: usize, chain: usize, slip: bool) -> String {
    let condition = if slip {
        "schedule.stat == draft"
    } else {
        "schedule.state == draft"
    };
    let rules: String = (0..identical)
        .map(|i| {
            let blanks = " ".repeat(if i == 0 { pad } else { 1 });
            format!("  rule r{i} when{blanks}{condition} then skip \"r{i}\"\n")
        })
        .collect();
    let and: Vec<String> = (0..chain).map(|i| format!("attempt != {i}")).collect();
    let or: Vec<String> = (0..chain)
        .map(|i| format!("schedule.version == {i}"))
        .collect();
    format!(
        "policy \"p\"\non trigger {{\n{rules}  rule all_of when {} then publish\n  rule any_of when {} then publish\n  otherwise skip \"x\"\n}}\non response {{\n  otherwise done\n}}\n",
        and.join(" and "),
        or.join(" or ")
    )
}

/// Parse, check and render `source` as `check` does; the analysis steps and the output.
fn check(source: &str) -> (u64, String) {
    match publish_guard::compile(source) {
        Ok(checked) => (
            checked.analysis_steps,
            render_all(&checked.warnings, "p.rules", source),
        ),
        Err(e) => (0, render_all(e.diagnostics(), "p.rules", source)),
    }
}

/// The bounds every file must check within; `what` names the file in a failure.
fn assert_bounded(what: &str, source: &str) -> Result<(), TestCaseError> {
    let ((steps, text), cost) = peak::measure(|| check(source));
    if std::env::var_os("CHECK_BOUNDS_SHOW").is_some() {
        eprintln!(
            "{what}: {} bytes, {} peak bytes ({}/byte), {} allocations ({:.2}/byte), {steps} steps",
            source.len(),
            cost.peak_bytes,
            cost.peak_bytes / source.len().max(1),
            cost.allocations,
            cost.allocations as f64 / source.len().max(1) as f64
        );
    }
    prop_assert!(
        steps <= publish_guard::analysis::STEP_BUDGET,
        "{steps} steps"
    );
    prop_assert!(
        cost.peak_bytes <= MAX_PEAK_BYTES.min(FIXED_BYTES + PEAK_BYTES_PER_BYTE * source.len()),
        "{what}: {} bytes live at the peak for {} bytes of source",
        cost.peak_bytes,
        source.len()
    );
    prop_assert!(
        cost.allocations <= FIXED_ALLOCATIONS + ALLOCATIONS_PER_BYTE * source.len(),
        "{what}: {} allocations for {} bytes of source",
        cost.allocations,
        source.len()
    );
    prop_assert!(text.lines().all(|l| l.len() < 1_000), "long lines elided");
    // And what parses formats to a file that parses to the same tree.
    if let Ok(file) = parse(source) {
        let formatted = format(&file);
        prop_assert_eq!(parse(&formatted).ok(), Some(file));
    }
    Ok(())
}

/// Two chains whose facts make about the largest space the checker enumerates (200,000
/// combinations for 889 comparisons): holding 16 bytes per combination before asking
/// whether the steps allowed testing any took 3.5 MB for 20 KB of source, above the bound,
/// and the proptest below found it in half its runs.
#[test]
fn chains_at_the_largest_space_check_within_counted_bounds() {
    for rules in [802, 850, 889] {
        let shape = shapes::Shape::Chains;
        if let Err(e) = assert_bounded(shape.name(), &shape.file(rules)) {
            panic!("{rules} rules: {e}");
        }
    }
}

/// A cheap first rule, then conditions whose facts make about the largest space the
/// checker enumerates from a small file: what the pass holds per combination must fit
/// in [`FIXED_BYTES`] (16 bytes per combination took 3.2 MB here).
#[test]
fn a_small_file_with_the_largest_space_checks_within_counted_bounds() {
    let chain = |fact: &str| -> String {
        (0..47)
            .map(|i| format!("{fact} == {}", i * 10))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    let source = format!(
        "policy \"p\"\non trigger {{\n  rule dup when trigger.duplicate then skip \"dup\"\n  \
         rule state when schedule.state == draft then publish\n  \
         rule tried when {} then publish\n  rule version when {} then publish\n  \
         otherwise skip \"x\"\n}}\non response {{\n  otherwise done\n}}\n",
        chain("attempt"),
        chain("schedule.version")
    );
    if let Err(e) = assert_bounded("largest space", &source) {
        panic!("{e}");
    }
}

/// Cases from a fixed seed, the same in every run: a case that fails, fails every time.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 12,
        rng_seed: RngSeed::Fixed(12),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Very long lines, many identical rules and long chains, valid or not.
    #[test]
    fn adversarial_files_check_within_counted_bounds(
        pad in 0usize..90_000,
        identical in 0usize..1_500,
        chain in 1usize..1_500,
        slip in any::<bool>(),
    ) {
        assert_bounded("adversarial", &adversarial(pad, identical, chain, slip))?;
    }

    /// Every shape of the checker's benchmark, at any size up to 1,500 rules.
    #[test]
    fn every_benchmark_shape_checks_within_counted_bounds(
        shape in proptest::sample::select(&shapes::SHAPES[..]),
        rules in 1usize..1_500,
    ) {
        assert_bounded(shape.name(), &shape.file(rules))?;
    }
}
