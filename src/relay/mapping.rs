//! How a source's JSON maps to a trigger: JSON pointers (RFC 6901) naming the fields that
//! carry the schedule, the event and the delivery id, or fixed values where the payload knows
//! nothing of schedules (a ServiceNow case, say).

use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where one value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Field {
    /// The string (or number) at this JSON pointer, e.g. `/schedule/id`.
    Pointer(String),
    /// This value, whatever the payload says (e.g. a business unit, or `current` for the
    /// week containing now, resolved by the runner).
    Fixed(String),
}

impl Field {
    /// A setting as a configuration gives it: a JSON pointer when it starts with `/`, else
    /// a fixed value.
    pub fn from_setting(text: &str) -> Field {
        if text.starts_with('/') {
            Field::Pointer(text.to_owned())
        } else {
            Field::Fixed(text.to_owned())
        }
    }
}

/// A source's mapping from payload to trigger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// The business unit id.
    pub business_unit: Field,
    /// The schedule's week (`yyyy-MM-dd` when read from the payload).
    pub week: Field,
    /// The schedule id.
    pub schedule_id: Field,
    /// The event name.
    pub event: Field,
    /// The delivery id, for senders that do not sign (signed ones carry `webhook-id`).
    pub delivery_id: Option<String>,
}

/// The schedule a trigger is about, as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ScheduleTarget {
    /// The business unit id.
    pub business_unit: String,
    /// The week, a date or a fixed keyword.
    pub week: String,
    /// The schedule id, or a fixed keyword.
    pub schedule_id: String,
}

/// What the mapping read from a payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapped {
    /// The schedule.
    pub target: ScheduleTarget,
    /// The event name.
    pub event: String,
    /// The delivery id, when the mapping names one and the payload has it.
    pub delivery_id: Option<String>,
}

/// Why a payload does not fit the mapping (answered with 422).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// The body is JSON, but not an object.
    #[error("the payload must be a JSON object")]
    NotObject,
    /// A mapped field is absent (or null).
    #[error("`{pointer}` ({field}) is missing")]
    Missing {
        /// What the field is for.
        field: &'static str,
        /// Where it was looked for.
        pointer: String,
    },
    /// A mapped field is not a non-empty string or a number.
    #[error("`{pointer}` ({field}) must be a non-empty string or a number")]
    NotScalar {
        /// What the field is for.
        field: &'static str,
        /// Where it was found.
        pointer: String,
    },
    /// The week is not a date.
    #[error("`{pointer}` (week) must be a date like 2026-03-30, got {value:?}")]
    BadWeek {
        /// Where it was found.
        pointer: String,
        /// What was there.
        value: String,
    },
}

fn read(payload: &Value, field: &'static str, pointer: &str) -> Result<String, MappingError> {
    let missing = || MappingError::Missing {
        field,
        pointer: pointer.to_owned(),
    };
    match payload.pointer(pointer).ok_or_else(missing)? {
        Value::Null => Err(missing()),
        Value::String(text) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
        Value::Number(number) => Ok(number.to_string()),
        _ => Err(MappingError::NotScalar {
            field,
            pointer: pointer.to_owned(),
        }),
    }
}

fn resolve(payload: &Value, name: &'static str, field: &Field) -> Result<String, MappingError> {
    match field {
        Field::Pointer(pointer) => read(payload, name, pointer),
        Field::Fixed(value) => Ok(value.clone()),
    }
}

impl Mapping {
    /// Read the trigger's fields from a parsed payload.
    pub fn apply(&self, payload: &Value) -> Result<Mapped, MappingError> {
        if !payload.is_object() {
            return Err(MappingError::NotObject);
        }
        let week = resolve(payload, "week", &self.week)?;
        if let Field::Pointer(pointer) = &self.week
            && week.parse::<Date>().is_err()
        {
            return Err(MappingError::BadWeek {
                pointer: pointer.clone(),
                value: week,
            });
        }
        Ok(Mapped {
            target: ScheduleTarget {
                business_unit: resolve(payload, "business unit", &self.business_unit)?,
                week,
                schedule_id: resolve(payload, "schedule id", &self.schedule_id)?,
            },
            event: resolve(payload, "event", &self.event)?,
            delivery_id: self
                .delivery_id
                .as_deref()
                .map(|pointer| read(payload, "delivery id", pointer))
                .transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapping() -> Mapping {
        Mapping {
            business_unit: Field::Fixed("bu-1".into()),
            week: Field::Pointer("/week".into()),
            schedule_id: Field::Pointer("/schedule/id".into()),
            event: Field::Pointer("/event".into()),
            delivery_id: Some("/sys_id".into()),
        }
    }

    #[test]
    fn reads_pointers_and_fixed_values() {
        let payload = json!({"week": "2026-03-30", "schedule": {"id": 42}, "event": "case.created", "sys_id": "abc"});
        let mapped = mapping().apply(&payload).unwrap();
        assert_eq!(
            mapped,
            Mapped {
                target: ScheduleTarget {
                    business_unit: "bu-1".into(),
                    week: "2026-03-30".into(),
                    schedule_id: "42".into()
                },
                event: "case.created".into(),
                delivery_id: Some("abc".into()),
            }
        );
    }

    #[test]
    fn names_what_is_wrong() {
        let good =
            json!({"week": "2026-03-30", "schedule": {"id": "s"}, "event": "e", "sys_id": "d"});
        let with = |pointer: &str, value: Value| {
            let mut payload = good.clone();
            *payload.pointer_mut(pointer).unwrap() = value;
            mapping().apply(&payload).unwrap_err().to_string()
        };
        assert_eq!(
            with("/schedule/id", Value::Null),
            "`/schedule/id` (schedule id) is missing"
        );
        assert_eq!(
            with("/event", json!(["x"])),
            "`/event` (event) must be a non-empty string or a number"
        );
        assert_eq!(
            with("/week", json!("next week")),
            "`/week` (week) must be a date like 2026-03-30, got \"next week\""
        );
        assert_eq!(
            with("/sys_id", json!("  ")),
            "`/sys_id` (delivery id) must be a non-empty string or a number"
        );
        assert_eq!(
            mapping().apply(&json!([1])).unwrap_err(),
            MappingError::NotObject
        );
    }
}
