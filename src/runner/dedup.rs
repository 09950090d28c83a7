//! Delivery ids seen recently: a repeat within the retention becomes `trigger.duplicate`.

use jiff::{SignedDuration, Timestamp};
use std::collections::{HashMap, VecDeque};

/// The delivery ids seen within the retention, forgotten in arrival order once older.
#[derive(Clone, Debug)]
pub struct DeliveryLog {
    retention: SignedDuration,
    first_seen: HashMap<String, Timestamp>,
    order: VecDeque<(Timestamp, String)>,
}

impl DeliveryLog {
    /// Remember ids for `retention`.
    pub fn new(retention: SignedDuration) -> Self {
        DeliveryLog {
            retention,
            first_seen: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Record `id` seen at `now`; `true` when it was already seen within the retention.
    /// A repeat does not extend the retention: it counts from the first sighting.
    pub fn seen(&mut self, id: &str, now: Timestamp) -> bool {
        self.forget_before(now);
        if self.first_seen.contains_key(id) {
            return true;
        }
        self.first_seen.insert(id.to_owned(), now);
        self.order.push_back((now, id.to_owned()));
        false
    }

    /// Number of ids remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.first_seen.len()
    }

    fn forget_before(&mut self, now: Timestamp) {
        while let Some((at, _)) = self.order.front() {
            if now.duration_since(*at) < self.retention {
                break;
            }
            if let Some((_, id)) = self.order.pop_front() {
                self.first_seen.remove(&id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn repeats_within_the_retention_are_duplicates_and_later_ones_are_not() {
        let mut log = DeliveryLog::new(SignedDuration::from_secs(60));
        assert!(!log.seen("a", at(0)));
        assert!(log.seen("a", at(59)));
        assert!(!log.seen("b", at(30)));
        assert!(!log.seen("a", at(60)));
        assert!(log.seen("b", at(61)));
        assert!(!log.seen("b", at(91)));
    }

    #[test]
    fn old_ids_are_forgotten_so_memory_stays_bounded() {
        let mut log = DeliveryLog::new(SignedDuration::from_secs(10));
        for i in 0..100 {
            log.seen(&format!("id-{i}"), at(i));
        }
        assert_eq!(log.len(), 10);
    }
}
