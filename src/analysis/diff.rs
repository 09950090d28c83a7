//! What changes if one policy replaces another: every region of the fact space where the
//! two decide differently, each with one witness set of facts, both decisions and both
//! deciding rules.

use crate::analysis::fact_space::{FactSpace, MAX_ASSIGNMENTS, mentioned};
use crate::evaluation::evaluator::evaluate;
use crate::language::ast::PhaseKind;
use crate::language::schema::FactId;
use crate::language::span::{LineCol, Span};
use crate::policy::Policy;
use crate::policy::decision::Decision;
use std::collections::BTreeSet;
use std::fmt::Write as _;

/// One side of a difference: what a policy decided and which rule decided it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Side {
    /// The decision in words, e.g. `skip "already published"`.
    pub decision: String,
    /// The deciding rule, or `otherwise`.
    pub rule: String,
    /// The rule's line in its file.
    pub line: usize,
}

/// A region where the two policies decide differently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// Which phase.
    pub phase: PhaseKind,
    /// One set of facts in the region, in words.
    pub witness: String,
    /// What the old policy decides there.
    pub old: Side,
    /// What the new policy decides there.
    pub new: Side,
}

/// Why the fact space could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// The conditions make more combinations than can be enumerated.
    #[error(
        "the two policies' conditions make {size} combinations of facts, more than the {MAX_ASSIGNMENTS} that can be compared"
    )]
    TooLarge {
        /// How many combinations (or `usize::MAX` when it overflows).
        size: usize,
    },
}

/// The outcome of comparing two policies over their fact space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyDiff {
    /// Each region that differs, with one witness, in phase and enumeration order.
    pub differences: Vec<Difference>,
    /// How many combinations of facts were compared (per phase).
    pub compared: usize,
    /// Whether the candidates cover every region exactly; when not, a region may be missed.
    pub exact: bool,
}

/// Compare `old` and `new` over the fact space of both; `*_source` give line numbers.
pub fn compare(
    old: &Policy,
    old_source: &str,
    new: &Policy,
    new_source: &str,
) -> Result<PolicyDiff, DiffError> {
    let space = FactSpace::for_policies(&[old, new]);
    let size = space.size().unwrap_or(usize::MAX);
    if size > MAX_ASSIGNMENTS {
        return Err(DiffError::TooLarge { size });
    }
    let mut differences = Vec::new();
    for phase in [PhaseKind::Trigger, PhaseKind::Response] {
        let facts = phase_facts(old, new, phase);
        // A region is a pair of deciding rules with differing decisions; its first
        // assignment is the witness (a deferral's instant varies with `now` inside one).
        let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
        for assignment in space.assignments() {
            let a = side(&evaluate(old, phase, &assignment), old_source);
            let b = side(&evaluate(new, phase, &assignment), new_source);
            if a.decision == b.decision || !seen.insert((a.rule.clone(), b.rule.clone())) {
                continue;
            }
            differences.push(Difference {
                phase,
                witness: space.describe(&assignment, &facts),
                old: a,
                new: b,
            });
        }
    }
    Ok(PolicyDiff {
        differences,
        compared: size,
        exact: space.is_exact(),
    })
}

/// The facts the rules of `phase` mention in either policy.
fn phase_facts(old: &Policy, new: &Policy, phase: PhaseKind) -> BTreeSet<FactId> {
    [old, new]
        .iter()
        .flat_map(|p| p.phase(phase).rules.iter())
        .flat_map(|r| mentioned(&r.condition))
        .collect()
}

fn side(decision: &Decision<'_>, source: &str) -> Side {
    Side {
        decision: decision.verdict.to_string(),
        rule: decision.rule.to_string(),
        line: line_of(decision.span, source),
    }
}

fn line_of(span: Span, source: &str) -> usize {
    LineCol::of(source, span.start).line
}

impl PolicyDiff {
    /// Whether the two policies decide alike everywhere.
    pub fn is_equivalent(&self) -> bool {
        self.differences.is_empty()
    }

    /// The differences as text, naming the two files.
    pub fn render(&self, old_name: &str, new_name: &str) -> String {
        let mut out = String::new();
        if !self.exact {
            out.push_str(
                "note: some conditions compare instants the fact space cannot cover exactly; \
                 a difference there may be missed\n",
            );
        }
        if self.is_equivalent() {
            let _ = writeln!(
                out,
                "equivalent: {old_name} and {new_name} decide alike on all {} combinations of facts",
                self.compared
            );
            return out;
        }
        let _ = writeln!(
            out,
            "{} region(s) where {new_name} decides differently from {old_name}:",
            self.differences.len()
        );
        for d in &self.differences {
            let _ = writeln!(out, "\non {}, when {}", d.phase.keyword(), d.witness);
            let _ = writeln!(
                out,
                "  - {old_name}:{}  {}  (rule {})",
                d.old.line, d.old.decision, d.old.rule
            );
            let _ = writeln!(
                out,
                "  + {new_name}:{}  {}  (rule {})",
                d.new.line, d.new.decision, d.new.rule
            );
        }
        out
    }
}
