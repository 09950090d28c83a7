//! Fact values and the set of facts one evaluation sees.

use crate::language::schema::{FACT_COUNT, FACTS, FactId, FactType};
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

/// A value for [`Facts::set_by_name`], as an embedder writes it: a word for enums, sources
/// and strings (`"draft"`, `"servicenow"`), or a typed Rust value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FactInput<'a> {
    /// An enum value, a trigger source or a string.
    Word(&'a str),
    /// A whole number.
    Int(i64),
    /// `true` or `false`.
    Bool(bool),
    /// A point in time.
    Instant(Timestamp),
    /// A length of time.
    Duration(SignedDuration),
    /// A calendar date.
    Date(Date),
}

impl<'a> From<&'a str> for FactInput<'a> {
    fn from(word: &'a str) -> Self {
        FactInput::Word(word)
    }
}

impl From<i64> for FactInput<'_> {
    fn from(n: i64) -> Self {
        FactInput::Int(n)
    }
}

impl From<bool> for FactInput<'_> {
    fn from(b: bool) -> Self {
        FactInput::Bool(b)
    }
}

impl From<Timestamp> for FactInput<'_> {
    fn from(t: Timestamp) -> Self {
        FactInput::Instant(t)
    }
}

impl From<SignedDuration> for FactInput<'_> {
    fn from(d: SignedDuration) -> Self {
        FactInput::Duration(d)
    }
}

impl From<Date> for FactInput<'_> {
    fn from(d: Date) -> Self {
        FactInput::Date(d)
    }
}

impl FactInput<'_> {
    /// The kind of value, as an error message says it.
    fn kind(self) -> &'static str {
        match self {
            FactInput::Word(_) => "a word",
            FactInput::Int(_) => "an integer",
            FactInput::Bool(_) => "a boolean",
            FactInput::Instant(_) => "an instant",
            FactInput::Duration(_) => "a duration",
            FactInput::Date(_) => "a date",
        }
    }
}

/// Why [`Facts::set_by_name`] refused a fact.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FactError {
    /// No fact of that name in the schema.
    #[error("`{name}` is not a fact{}", suggestion.map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    Unknown {
        /// The name given.
        name: String,
        /// The closest fact name, when one is close.
        suggestion: Option<&'static str>,
    },
    /// The value is not of the fact's type.
    #[error("`{fact}` is {expected}, not {given}")]
    WrongType {
        /// The fact.
        fact: &'static str,
        /// Its type's name.
        expected: &'static str,
        /// What was given.
        given: &'static str,
    },
    /// A word that is not one of the enum's values.
    #[error("`{value}` is not a value of `{fact}` (one of: {allowed})")]
    NotAValue {
        /// The fact.
        fact: &'static str,
        /// The word given.
        value: String,
        /// The values it takes, comma separated.
        allowed: String,
    },
}

impl Facts {
    /// Set a fact by its dotted name, checked against the schema: the name must exist and the
    /// value must be of its type (an enum value by its word, never by an index).
    pub fn set_by_name<'a>(
        &mut self,
        name: &str,
        value: impl Into<FactInput<'a>>,
    ) -> Result<&mut Self, FactError> {
        let Some(fact) = FactId::lookup(name) else {
            return Err(FactError::Unknown {
                name: name.to_owned(),
                suggestion: crate::language::suggest::closest(name, FACTS.iter().map(|f| f.name)),
            });
        };
        let def = fact.def();
        let value = value.into();
        let typed =
            match (def.ty, value) {
                (FactType::Enum(names), FactInput::Word(word)) => {
                    let index = names.iter().position(|n| *n == word).ok_or_else(|| {
                        FactError::NotAValue {
                            fact: def.name,
                            value: word.to_owned(),
                            allowed: names.join(", "),
                        }
                    })?;
                    Value::Enum(index as u8)
                }
                (FactType::Source | FactType::String, FactInput::Word(word)) => {
                    Value::Str(word.to_owned())
                }
                (FactType::Int, FactInput::Int(n)) => Value::Int(n),
                (FactType::Bool, FactInput::Bool(b)) => Value::Bool(b),
                (FactType::Instant, FactInput::Instant(t)) => Value::Instant(t),
                (FactType::Duration, FactInput::Duration(d)) => Value::Duration(d),
                (FactType::Date, FactInput::Date(d)) => Value::Date(d),
                (ty, given) => {
                    return Err(FactError::WrongType {
                        fact: def.name,
                        expected: ty.name(),
                        given: given.kind(),
                    });
                }
            };
        self.set(fact, Some(typed));
        Ok(self)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_set_by_name_are_checked_against_the_schema() {
        let mut facts = Facts::new();
        facts
            .set_by_name("schedule.state", "publishing")
            .and_then(|f| f.set_by_name("attempt", 2))
            .and_then(|f| f.set_by_name("trigger.duplicate", true))
            .and_then(|f| f.set_by_name("trigger.source", "servicenow"))
            .expect("all valid");
        assert_eq!(facts.render(fact_id("schedule.state")), "publishing");
        assert_eq!(facts.render(fact_id("attempt")), "2");
        assert_eq!(facts.render(fact_id("trigger.source")), "servicenow");

        let errors = [
            facts.set_by_name("schedule.stat", "draft").unwrap_err(),
            facts.set_by_name("schedule.state", "drafted").unwrap_err(),
            facts.set_by_name("attempt", "two").unwrap_err(),
        ]
        .map(|e| e.to_string());
        assert_eq!(
            errors,
            [
                "`schedule.stat` is not a fact; did you mean `schedule.state`?",
                "`drafted` is not a value of `schedule.state` (one of: draft, publishing, published, unknown)",
                "`attempt` is integer, not a word",
            ]
        );
        // A refused value leaves the fact as it was.
        assert_eq!(facts.render(fact_id("schedule.state")), "publishing");
    }
}
