//! The fact schema: every fact a condition can use, its type, and what it means.
//!
//! This table is the one source the checker, the facts-file loader, `explain` and the
//! README's fact table all read. Adding a fact here is the whole change.

use crate::language::ast::PhaseKind;

/// The type of a fact's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FactType {
    /// One of a fixed set of words.
    Enum(&'static [&'static str]),
    /// A trigger source: one of the names the policy declares with `sources`.
    Source,
    /// Free text.
    String,
    /// A whole number.
    Int,
    /// `true` or `false`.
    Bool,
    /// A point in time (RFC 3339 in facts files).
    Instant,
    /// A length of time (`15m`; in facts files `"15m"` or seconds).
    Duration,
    /// A calendar date (`YYYY-MM-DD`).
    Date,
}

impl FactType {
    /// The type's name as the docs and diagnostics say it.
    pub fn name(self) -> &'static str {
        match self {
            FactType::Enum(_) => "enum",
            FactType::Source => "source",
            FactType::String => "string",
            FactType::Int => "integer",
            FactType::Bool => "boolean",
            FactType::Instant => "instant",
            FactType::Duration => "duration",
            FactType::Date => "date",
        }
    }
}

/// Where a fact has a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Availability {
    /// In both phases.
    Always,
    /// Only in `on response`.
    ResponseOnly,
}

impl Availability {
    /// Whether the fact may be used in `phase`.
    pub fn allows(self, phase: PhaseKind) -> bool {
        match self {
            Availability::Always => true,
            Availability::ResponseOnly => phase == PhaseKind::Response,
        }
    }
}

/// One row of the schema.
#[derive(Clone, Copy, Debug)]
pub struct FactDef {
    /// The dotted name used in rules and facts files.
    pub name: &'static str,
    /// Its type.
    pub ty: FactType,
    /// Whether it may be absent (comparisons on an absent fact are false).
    pub optional: bool,
    /// The phases in which it has a value.
    pub availability: Availability,
    /// One line for the docs and `explain`.
    pub doc: &'static str,
}

/// The values of `schedule.state`.
pub const SCHEDULE_STATES: &[&str] = &["draft", "publishing", "published", "unknown"];
/// The values of `operation.status`.
pub const OPERATION_STATUSES: &[&str] = &["processing", "complete", "canceled", "error"];

/// Every fact, in the order the docs list them. A [`FactId`] indexes this table.
pub const FACTS: &[FactDef] = &[
    fact(
        "schedule.id",
        FactType::String,
        false,
        Availability::Always,
        "The schedule's id.",
    ),
    fact(
        "schedule.state",
        FactType::Enum(SCHEDULE_STATES),
        false,
        Availability::Always,
        "Derived publish state: `published` from the API's flag, `publishing` while an update operation is Processing, `draft` otherwise, `unknown` when it could not be read.",
    ),
    fact(
        "schedule.published",
        FactType::Bool,
        false,
        Availability::Always,
        "The API's `published` flag.",
    ),
    fact(
        "schedule.version",
        FactType::Int,
        false,
        Availability::Always,
        "The schedule's `metadata.version` (optimistic concurrency).",
    ),
    fact(
        "schedule.week",
        FactType::Date,
        false,
        Availability::Always,
        "The first day of the schedule's week.",
    ),
    fact(
        "schedule.modified_at",
        FactType::Instant,
        true,
        Availability::Always,
        "When the schedule last changed (`metadata.dateModified`).",
    ),
    fact(
        "schedule.modified_by",
        FactType::String,
        true,
        Availability::Always,
        "Who last changed it (`metadata.modifiedBy`).",
    ),
    fact(
        "schedule.other_published",
        FactType::Bool,
        true,
        Availability::Always,
        "Another schedule covering this schedule's week is published (from the week's list); publishing this one would un-publish it. Absent when the backend cannot say.",
    ),
    fact(
        "trigger.source",
        FactType::Source,
        false,
        Availability::Always,
        "Where the trigger came from: one of the policy's `sources`.",
    ),
    fact(
        "trigger.event",
        FactType::String,
        true,
        Availability::Always,
        "The sender's event name, e.g. `case.created`.",
    ),
    fact(
        "trigger.received_at",
        FactType::Instant,
        false,
        Availability::Always,
        "When the trigger arrived.",
    ),
    fact(
        "trigger.duplicate",
        FactType::Bool,
        false,
        Availability::Always,
        "The same delivery id was already seen within the retention.",
    ),
    fact(
        "trigger.coalesced",
        FactType::Int,
        false,
        Availability::Always,
        "How many further triggers were folded into this evaluation.",
    ),
    fact(
        "now",
        FactType::Instant,
        false,
        Availability::Always,
        "The instant of the evaluation (the runner's clock).",
    ),
    fact(
        "last_publish.at",
        FactType::Instant,
        true,
        Availability::Always,
        "When this process last saw the schedule published; absent before the first.",
    ),
    fact(
        "last_publish.version",
        FactType::Int,
        true,
        Availability::Always,
        "The version it was published at; absent before the first.",
    ),
    fact(
        "response.status",
        FactType::Int,
        false,
        Availability::ResponseOnly,
        "The HTTP status of the API's answer to a write; 0 when no answer came (timeout, dropped connection).",
    ),
    fact(
        "response.retry_after",
        FactType::Duration,
        true,
        Availability::ResponseOnly,
        "The answer's `Retry-After`, when it gave one.",
    ),
    fact(
        "operation.status",
        FactType::Enum(OPERATION_STATUSES),
        true,
        Availability::Always,
        "The status of our latest update operation; absent when there is none.",
    ),
    fact(
        "attempt",
        FactType::Int,
        false,
        Availability::Always,
        "Attempts made so far in this cycle (0 before the first write).",
    ),
    fact(
        "rechecks",
        FactType::Int,
        false,
        Availability::Always,
        "Rechecks made so far in this cycle.",
    ),
];

const fn fact(
    name: &'static str,
    ty: FactType,
    optional: bool,
    availability: Availability,
    doc: &'static str,
) -> FactDef {
    FactDef {
        name,
        ty,
        optional,
        availability,
        doc,
    }
}

/// An index into [`FACTS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FactId(pub u8);

impl FactId {
    /// Look a fact up by its dotted name.
    pub fn lookup(name: &str) -> Option<FactId> {
        FACTS
            .iter()
            .position(|f| f.name == name)
            .map(|i| FactId(i as u8))
    }

    /// The schema row for this fact.
    pub fn def(self) -> &'static FactDef {
        &FACTS[self.0 as usize]
    }

    /// The fact's dotted name.
    pub fn name(self) -> &'static str {
        self.def().name
    }

    /// The slot of this fact in a set of facts (`policy::facts::Facts`).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Number of facts in the schema.
pub const FACT_COUNT: usize = FACTS.len();

/// The README's fact table, generated from [`FACTS`]; a test keeps the README in step.
pub fn markdown_table() -> String {
    let mut out =
        String::from("| fact | type | may be absent | phases | meaning |\n|---|---|---|---|---|\n");
    for f in FACTS {
        let ty = match f.ty {
            FactType::Enum(values) => format!("enum: {}", values.join(", ")),
            other => other.name().to_string(),
        };
        let phases = match f.availability {
            Availability::Always => "both",
            Availability::ResponseOnly => "response",
        };
        let optional = if f.optional { "yes" } else { "no" };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            f.name, ty, optional, phases, f.doc
        ));
    }
    out
}
