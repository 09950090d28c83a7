//! Fact values and the set of facts one evaluation sees.

use crate::schema::{FACT_COUNT, FactId};
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
