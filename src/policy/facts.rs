//! Fact values and the set of facts one evaluation sees.

use crate::policy::schema::{FACT_COUNT, FACTS, FactId, FactType};
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};

/// A typed fact value. Enum values are indices into the schema's value list.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// An enum fact's value: the index into its schema value list.
    Enum(u8),
    /// Text (also trigger sources).
    Str(String),
    /// A whole number.
    Int(i64),
    /// `true`/`false`.
    Bool(bool),
    /// A point in time.
    Instant(Timestamp),
    /// A length of time.
    Duration(SignedDuration),
    /// A calendar date.
    Date(Date),
}

/// The facts one evaluation sees: one optional value per schema row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Facts {
    values: [Option<Value>; FACT_COUNT],
}

impl Facts {
    /// No facts set.
    pub fn new() -> Self {
        Facts::default()
    }

    /// The value of `fact`, or `None` when absent.
    pub fn get(&self, fact: FactId) -> Option<&Value> {
        self.values[fact.index()].as_ref()
    }

    /// Set (or, with `None`, clear) a fact.
    pub fn set(&mut self, fact: FactId, value: Option<Value>) {
        self.values[fact.index()] = value;
    }
}

impl Value {
    /// The value as a rules file writes it (`draft`, `"text"`, `15m`); `ty` names enum values.
    pub fn render(&self, ty: FactType) -> String {
        match (self, ty) {
            (Value::Enum(i), FactType::Enum(names)) => names
                .get(usize::from(*i))
                .map_or_else(|| format!("#{i}"), |n| n.to_string()),
            (Value::Enum(i), _) => format!("#{i}"),
            (Value::Str(s), FactType::Source) => s.clone(),
            (Value::Str(s), _) => format!("{s:?}"),
            (Value::Int(n), _) => n.to_string(),
            (Value::Bool(b), _) => b.to_string(),
            (Value::Instant(t), _) => t.to_string(),
            (Value::Duration(d), _) => format!("{d:#}"),
            (Value::Date(d), _) => d.to_string(),
        }
    }
}

impl Facts {
    /// The value of `fact` as a rules file writes it, or `absent`.
    pub fn render(&self, fact: FactId) -> String {
        self.get(fact)
            .map_or_else(|| "absent".to_string(), |v| v.render(fact.def().ty))
    }

    /// The instant value of `fact`, or `None` when absent or not an instant.
    pub fn instant(&self, fact: FactId) -> Option<Timestamp> {
        match self.get(fact) {
            Some(Value::Instant(t)) => Some(*t),
            _ => None,
        }
    }

    /// The duration value of `fact`, or `None` when absent or not a duration.
    pub fn duration(&self, fact: FactId) -> Option<SignedDuration> {
        match self.get(fact) {
            Some(Value::Duration(d)) => Some(*d),
            _ => None,
        }
    }
}

/// The schema id of `name`, resolved at compile time (a misspelt name fails the build).
pub const fn fact_id(name: &str) -> FactId {
    let mut i = 0;
    while i < FACTS.len() {
        if str_eq(FACTS[i].name, name) {
            return FactId(i as u8);
        }
        i += 1;
    }
    panic!("not a fact in the schema")
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// `now`: the instant of the evaluation.
pub const NOW: FactId = fact_id("now");
/// `response.retry_after`: the server's `Retry-After`.
pub const RETRY_AFTER: FactId = fact_id("response.retry_after");
