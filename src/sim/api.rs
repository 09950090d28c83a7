//! The simulated API: the one Genesys model (`api::model`), called directly at virtual
//! instants, behind the faults a scenario switches on (outages, a rate of server errors).
//! The answers take the shape the live clients give the runner.

use crate::api::model::{Model, ModelConfig};
use crate::api::{Answer, OperationStatus, PublishAccepted, ScheduleRef, ScheduleSnapshot};
use crate::runner::{CallFailure, CallResult};
use crate::sim::scenario::{ApiBehaviour, Scenario};
use jiff::{SignedDuration, Timestamp};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The OAuth client the simulated runner calls as (the rate limit is per client).
const CLIENT: &str = "publish-guard";

/// The model plus the scenario's faults.
#[derive(Debug)]
pub struct SimApi {
    model: Model,
    behaviour: ApiBehaviour,
    rng: ChaCha8Rng,
}

impl SimApi {
    /// The API as the scenario starts it: its schedules created at the start instant.
    pub fn new(scenario: &Scenario, refs: &[ScheduleRef]) -> Self {
        let mut model = Model::new(ModelConfig {
            processing_time: scenario.api.processing,
            requests_per_minute: scenario.api.rate_limit,
            list_seed: scenario.seed,
            ..ModelConfig::default()
        });
        for unit in &scenario.business_units {
            model.set_week_settings(&unit.id, unit.week.clone());
        }
        for (spec, schedule) in scenario.schedules.iter().zip(refs) {
            model.insert(
                schedule.clone(),
                spec.published,
                spec.version,
                spec.created.unwrap_or(scenario.start),
                "planner",
            );
            if spec.weeks > 1 {
                // The schedule was just inserted: it is there to span more weeks.
                let _ = model.set_week_count(schedule, spec.weeks);
            }
            if let Some(end) = spec.first_update_ends {
                // Likewise: it is there to arm.
                let _ = model.fail_next_operation(schedule, end, scenario.start);
            }
        }
        SimApi {
            model,
            behaviour: scenario.api.clone(),
            // Faults draw from their own stream so turning them on does not move jitter.
            rng: ChaCha8Rng::seed_from_u64(scenario.seed ^ 0x5EED_FA17),
        }
    }

    /// The model, for a person's actions and for looking without calling.
    pub fn model(&mut self) -> &mut Model {
        &mut self.model
    }

    /// How long an accepted update stays `Processing`.
    pub fn processing(&self) -> SignedDuration {
        self.behaviour.processing
    }

    /// A server error this call meets, if any: an outage in force, or a random one.
    fn fault(&mut self, now: Timestamp) -> Option<u16> {
        if let Some(o) = self
            .behaviour
            .outages
            .iter()
            .find(|o| o.from <= now && now < o.until)
        {
            return Some(o.status);
        }
        (self.behaviour.error_rate > 0.0 && self.rng.random_bool(self.behaviour.error_rate))
            .then_some(self.behaviour.error_status)
    }

    /// `GET` the schedule at `now`.
    pub fn read(&mut self, now: Timestamp, schedule: &ScheduleRef) -> CallResult<ScheduleSnapshot> {
        if let Some(status) = self.fault(now) {
            return Ok(error_answer(status));
        }
        let reply = self.model.get(CLIENT, now, schedule);
        Ok(reply.into_answer(|view| view.snapshot))
    }

    /// Publish the schedule at `version` at `now`: uploadurl, the upload, update.
    pub fn publish(
        &mut self,
        now: Timestamp,
        schedule: &ScheduleRef,
        version: i64,
    ) -> CallResult<PublishAccepted> {
        if let Some(status) = self.fault(now) {
            return Ok(error_answer(status));
        }
        self.model
            .client_publish(CLIENT, now, schedule, version)
            .map_err(|e| CallFailure::no_answer(e.to_string()))
    }
}

fn error_answer<U>(status: u16) -> Answer<U> {
    Answer {
        status,
        retry_after: None,
        rate_limit: None,
        body: None,
        waited: SignedDuration::ZERO,
    }
}

/// Whether an accepted update is still running (its end is worth marking on the timeline).
pub fn is_processing(accepted: &PublishAccepted) -> bool {
    accepted.status == OperationStatus::Processing
}
