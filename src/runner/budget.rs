//! The retry budget: a token bucket over retries, so an outage cannot become a retry storm.
//!
//! Modelled on tower's `TpsBudget`: every successful request deposits a fraction of a
//! token, every retry withdraws a whole one, and a reserve of `min_per_sec` retries a
//! second is always available. Deposits and withdrawals expire after `ttl`, so the budget
//! follows recent traffic. Time comes in as a parameter: the budget reads no clock.

use jiff::{SignedDuration, Timestamp};

/// Settings of a [`RetryBudget`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// How long a deposit or withdrawal counts.
    pub ttl: SignedDuration,
    /// Retries a second allowed even with no successful traffic.
    pub min_per_sec: u32,
    /// Retries allowed per successful request, on top of the reserve (0.2 = 20 %).
    pub retry_ratio: f64,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        BudgetConfig {
            ttl: SignedDuration::from_secs(10),
            min_per_sec: 10,
            retry_ratio: 0.2,
        }
    }
}

/// Slots the ttl is divided into; older slots expire as a whole.
const SLOTS: usize = 10;
/// Fixed-point scale: one retry costs this many units.
const UNIT: i64 = 1000;

/// A sliding-window token bucket over retries.
#[derive(Clone, Debug)]
pub struct RetryBudget {
    /// Units a successful request deposits.
    deposit: i64,
    /// Units always available.
    reserve: i64,
    /// Length of one slot in nanoseconds.
    slot_nanos: i128,
    /// Net units per slot, indexed by slot number modulo `SLOTS`.
    slots: [i64; SLOTS],
    /// The absolute slot number `slots` was last rolled to.
    current: i128,
}

impl RetryBudget {
    /// An empty budget (only the reserve) with these settings.
    pub fn new(config: BudgetConfig) -> Self {
        let ttl_nanos = config.ttl.as_nanos().max(SLOTS as i128);
        let ttl_secs = config.ttl.as_secs_f64().max(0.0);
        let ratio = config.retry_ratio.clamp(0.0, 1000.0);
        RetryBudget {
            deposit: (ratio * UNIT as f64).round() as i64,
            reserve: (f64::from(config.min_per_sec) * ttl_secs * UNIT as f64).round() as i64,
            slot_nanos: ttl_nanos / SLOTS as i128,
            slots: [0; SLOTS],
            current: i128::MIN,
        }
    }

    /// Record a successful request.
    pub fn deposit(&mut self, now: Timestamp) {
        let slot = self.roll(now);
        self.slots[slot] = self.slots[slot].saturating_add(self.deposit);
    }

    /// Take one retry from the budget; `false` (and nothing taken) when it is spent.
    pub fn withdraw(&mut self, now: Timestamp) -> bool {
        let slot = self.roll(now);
        let balance = self.reserve.saturating_add(self.slots.iter().sum::<i64>());
        if balance < UNIT {
            return false;
        }
        self.slots[slot] = self.slots[slot].saturating_sub(UNIT);
        true
    }

    /// Expire slots older than the ttl and return the index of `now`'s slot.
    fn roll(&mut self, now: Timestamp) -> usize {
        let number = now.as_nanosecond() / self.slot_nanos;
        if self.current == i128::MIN || number - self.current >= SLOTS as i128 {
            self.slots = [0; SLOTS];
        } else {
            // Clear every slot passed over since the last call (time never runs back here:
            // an earlier `now` lands in the current slot).
            for passed in (self.current + 1)..=number {
                self.slots[passed.rem_euclid(SLOTS as i128) as usize] = 0;
            }
        }
        if number > self.current {
            self.current = number;
        }
        self.current.rem_euclid(SLOTS as i128) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn budget(min_per_sec: u32, ratio: f64) -> RetryBudget {
        RetryBudget::new(BudgetConfig {
            ttl: SignedDuration::from_secs(10),
            min_per_sec,
            retry_ratio: ratio,
        })
    }

    fn withdrawals(b: &mut RetryBudget, now: Timestamp) -> usize {
        (0..10_000).take_while(|_| b.withdraw(now)).count()
    }

    #[test]
    fn the_reserve_allows_min_per_sec_times_ttl_retries() {
        let mut b = budget(1, 0.0);
        assert_eq!(withdrawals(&mut b, at(0)), 10);
        assert!(!b.withdraw(at(1)));
    }

    #[test]
    fn successful_requests_buy_retries_in_proportion() {
        let mut b = budget(0, 0.5);
        assert!(!b.withdraw(at(0)));
        for _ in 0..10 {
            b.deposit(at(0));
        }
        assert_eq!(withdrawals(&mut b, at(0)), 5);
    }

    #[test]
    fn spending_expires_after_the_ttl() {
        let mut b = budget(1, 0.0);
        assert_eq!(withdrawals(&mut b, at(0)), 10);
        assert!(!b.withdraw(at(5)));
        assert_eq!(withdrawals(&mut b, at(11)), 10);
    }

    #[test]
    fn deposits_expire_too() {
        let mut b = budget(0, 1.0);
        b.deposit(at(0));
        assert!(!b.withdraw(at(20)));
    }
}
