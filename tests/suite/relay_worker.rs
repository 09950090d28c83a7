//! The relay's worker against the one model of Genesys' API, a SQLite store and an audit log, on a clock
//! the test moves: one schedule's long backoff holds up no other schedule, triggers that
//! arrive while a publish is processing coalesce into it, the decision to publish is on
//! disk before the publish call goes out, a crash between recording a cycle and marking its
//! triggers done re-runs them without losing or repeating a step, a restart while our
//! publish is processing follows it rather than publishing again, a reload leaves a cycle in
//! flight under its policy, and deferred triggers are fed again when due.

use crate::relay_support::{Hooked, OnRecord};
use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use publish_guard::api::model::{Model, ModelConfig};
use publish_guard::api::week::WeekSettings;
use publish_guard::api::{
    Answer, ApiError, ListedSchedule, PublishAccepted, ScheduleApi, ScheduleRef, ScheduleSnapshot,
};
use publish_guard::audit::checkpoint::checkpoints_path;
use publish_guard::audit::log::{AuditLog, AuditOptions};
use publish_guard::audit::verify::verify;
use publish_guard::audit::writer::AuditWriter;
use publish_guard::effects::clock::{Clock, ManualClock};
use publish_guard::effects::random::SeededRandom;
use publish_guard::relay::mapping::ScheduleTarget;
use publish_guard::relay::metrics::Metrics;
use publish_guard::relay::rules::Rules;
use publish_guard::relay::sqlite_store::SqliteStore;
use publish_guard::relay::store::{
    Acceptance, NewTrigger, Progress, StoreError, TriggerStatus, TriggerStore,
};
use publish_guard::relay::worker::{WorkerError, WorkerParts, run_worker};
use publish_guard::runner::driver::Driver;
use publish_guard::runner::event::{Batch, EventKind, EventRecorder};
use publish_guard::runner::{RunnerConfig, Trigger};
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};

const RULES: &str = include_str!("../fixtures/relay/worker.rules");
const FROZEN_RULES: &str = include_str!("../fixtures/relay/frozen.rules");
/// The longest any condition below may take to come true (real time; the clock is the test's).
const PATIENCE: Duration = Duration::from_secs(30);
/// Monday 30 March 2026, 10:00 in London: business hours.
const MONDAY_10: &str = "2026-03-30T09:00:00Z";

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn schedule(id: &str) -> ScheduleRef {
    ScheduleRef {
        business_unit: "bu-1".into(),
        week: Date::constant(2026, 3, 30),
        schedule_id: id.into(),
    }
}

/// Called as each publish call arrives, before it takes effect.
type PublishHook = Box<dyn Fn(&ScheduleRef)>;

/// What the test shares with the API: the one model, and what the test watches.
struct ApiState {
    model: Model,
    /// `read A`, `publish A`, `conflict A`, in order.
    calls: Vec<String>,
    /// Called as each publish call arrives, before it takes effect.
    on_publish: Option<PublishHook>,
    /// Reads wait for this before they answer.
    read_gate: Option<Rc<Notify>>,
    /// Reads say a publish is running, as a REST gateway does; Genesys' read cannot tell.
    shows_publishing: bool,
    /// Publish calls answer this server error, and the model never sees them.
    publish_fails: Option<u16>,
}

/// The one model of Genesys' API (`api::model`), called in process on the test's clock.
#[derive(Clone)]
struct ModelApi {
    state: Rc<RefCell<ApiState>>,
    clock: ManualClock,
}

/// The OAuth client the worker calls the model as.
const CLIENT: &str = "relay";

impl ModelApi {
    fn new(clock: &ManualClock) -> Self {
        let model = Model::new(ModelConfig {
            processing_time: SignedDuration::ZERO,
            ..ModelConfig::default()
        });
        let state = ApiState {
            model,
            calls: Vec::new(),
            on_publish: None,
            read_gate: None,
            shows_publishing: false,
            publish_fails: None,
        };
        Self {
            state: Rc::new(RefCell::new(state)),
            clock: clock.clone(),
        }
    }

    /// An unpublished schedule at `version` (replacing any of that id).
    fn draft(&self, id: &str, version: i64) {
        let now = self.clock.now();
        self.state
            .borrow_mut()
            .model
            .insert(schedule(id), false, version, now, "planner");
    }

    /// A draft at `version` that a planner is publishing, for as long as the test wants;
    /// reads say so from now on.
    fn publishing(&self, id: &str, version: i64) {
        self.draft(id, version);
        let now = self.clock.now();
        let mut state = self.state.borrow_mut();
        state.shows_publishing = true;
        let config = state.model.config().clone();
        state.model.set_config(ModelConfig {
            processing_time: SignedDuration::from_hours(24),
            ..config.clone()
        });
        let started = state.model.person_publish(&schedule(id), now, "planner");
        assert!(started.is_ok(), "{started:?}");
        state.model.set_config(config);
    }

    /// How long our publishes stay Processing.
    fn set_processing(&self, processing: SignedDuration) {
        let mut state = self.state.borrow_mut();
        let config = state.model.config().clone();
        state.model.set_config(ModelConfig {
            processing_time: processing,
            ..config
        });
    }

    fn calls(&self) -> Vec<String> {
        self.state.borrow().calls.clone()
    }

    fn count(&self, call: &str) -> usize {
        self.calls().iter().filter(|c| *c == call).count()
    }
}

impl ScheduleApi for ModelApi {
    async fn read(&self, schedule: &ScheduleRef) -> Result<Answer<ScheduleSnapshot>, ApiError> {
        let gate = {
            let mut state = self.state.borrow_mut();
            state.calls.push(format!("read {}", schedule.schedule_id));
            state.read_gate.clone()
        };
        if let Some(gate) = gate {
            gate.notified().await;
        }
        let now = self.clock.now();
        let mut state = self.state.borrow_mut();
        let shows_publishing = state.shows_publishing;
        let reply = state.model.get(CLIENT, now, schedule);
        Ok(reply.into_answer(|view| ScheduleSnapshot {
            publishing: view.snapshot.publishing && shows_publishing,
            ..view.snapshot
        }))
    }

    async fn publish(
        &self,
        schedule: &ScheduleRef,
        version: i64,
        _idempotency_key: &str,
    ) -> Result<Answer<PublishAccepted>, ApiError> {
        if let Some(hook) = &self.state.borrow().on_publish {
            hook(schedule);
        }
        let now = self.clock.now();
        let mut state = self.state.borrow_mut();
        if let Some(status) = state.publish_fails {
            state.calls.push(format!("failed {}", schedule.schedule_id));
            return Ok(Answer {
                status,
                retry_after: None,
                rate_limit: None,
                body: None,
                waited: SignedDuration::ZERO,
            });
        }
        let answer = state
            .model
            .client_publish(CLIENT, now, schedule, version)
            .map_err(|e| ApiError::Protocol {
                call: "publish",
                reason: e.to_string(),
            })?;
        let call = if answer.status == 409 {
            "conflict"
        } else {
            "publish"
        };
        state.calls.push(format!("{call} {}", schedule.schedule_id));
        Ok(answer)
    }

    async fn list_week(
        &self,
        business_unit: &str,
        week: Date,
    ) -> Result<Answer<Vec<ListedSchedule>>, ApiError> {
        let now = self.clock.now();
        let mut state = self.state.borrow_mut();
        let reply = state.model.list_week(CLIENT, now, business_unit, week);
        Ok(reply.into_answer(|views| views.into_iter().map(|v| v.listed).collect()))
    }

    async fn week_settings(&self, business_unit: &str) -> Result<Answer<WeekSettings>, ApiError> {
        let now = self.clock.now();
        let reply = self
            .state
            .borrow_mut()
            .model
            .business_unit(CLIENT, now, business_unit);
        Ok(reply.into_answer(|settings| settings))
    }
}

/// Whether the publish a mark notes was accepted (`None`: it notes no publish).
fn accepted_write(progress: &Progress) -> Option<bool> {
    let note = progress.note.as_ref()?;
    note.publishing().map(|write| write.accepted)
}

/// Which progress marks a simulated crash falls on.
type Moment = fn(&Progress) -> bool;

/// Keeps every progress mark the SQLite store records, and fails chosen marks as a process
/// that dies at that moment would.
#[derive(Default)]
struct Observed {
    /// Which marks fail, as if the process died as it made them.
    dies_at: Mutex<Option<Moment>>,
    /// Which marks are committed, and then the process dies.
    dies_after: Mutex<Option<Moment>>,
    marks: Mutex<Vec<(String, Progress)>>,
}

/// The process died here (injected).
fn died() -> StoreError {
    StoreError::Database("injected: the process died here".into())
}

impl Observed {
    fn marks(&self) -> Vec<(String, Progress)> {
        self.marks.lock().unwrap().clone()
    }

    /// The last progress recorded for `receipt`.
    fn last_mark(&self, receipt: &str) -> Option<Progress> {
        self.marks()
            .into_iter()
            .rev()
            .find(|(r, _)| r == receipt)
            .map(|(_, p)| p)
    }

    fn is_done(&self, receipt: &str) -> bool {
        self.last_mark(receipt)
            .is_some_and(|p| p.status == TriggerStatus::Done)
    }
}

impl OnRecord for Observed {
    fn before(&self, progress: &Progress) -> Option<StoreError> {
        let dies = *self.dies_at.lock().unwrap();
        dies.is_some_and(|dies| dies(progress)).then(died)
    }

    fn after(&self, receipt: &str, progress: &Progress) -> Option<StoreError> {
        let dies = *self.dies_after.lock().unwrap();
        let died_here = dies.is_some_and(|dies| dies(progress));
        self.marks
            .lock()
            .unwrap()
            .push((receipt.to_owned(), progress.clone()));
        died_here.then(died)
    }
}

struct Rig {
    clock: ManualClock,
    api: ModelApi,
    store: Arc<Hooked<Observed>>,
    audit_path: PathBuf,
    rules: Arc<Rules>,
    rules_path: PathBuf,
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

impl Rig {
    fn new(start: &str) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(at(start));
        let rules_path = dir.path().join("worker.rules");
        std::fs::write(&rules_path, RULES).unwrap();
        let store = Hooked {
            inner: Arc::new(SqliteStore::open(&dir.path().join("relay.db")).unwrap()),
            hook: Observed::default(),
        };
        Rig {
            api: ModelApi::new(&clock),
            clock,
            store: Arc::new(store),
            audit_path: dir.path().join("audit.jsonl"),
            rules: Arc::new(Rules::load(&rules_path).unwrap()),
            rules_path,
            wake: Arc::new(Notify::new()),
            stop: watch::Sender::new(false),
            _dir: dir,
        }
    }

    /// A worker starting now, on the test's API; the audit log is opened afresh, as after a
    /// restart.
    fn worker(&self) -> impl Future<Output = Result<(), WorkerError>> {
        self.stop.send_replace(false);
        let log = AuditLog::open(&self.audit_path, AuditOptions::default()).unwrap();
        let parts = WorkerParts {
            store: Arc::clone(&self.store) as Arc<dyn TriggerStore>,
            rules: Arc::clone(&self.rules),
            metrics: Arc::new(Metrics::default()),
            readiness: Arc::default(),
            clock: Arc::new(self.clock.clone()),
            config: RunnerConfig::default(),
            wake: Arc::clone(&self.wake),
            stop: self.stop.subscribe(),
            hearing: None,
        };
        let audit = Arc::new(AuditWriter::start(log).unwrap());
        run_worker(self.api.clone(), parts, audit)
    }

    /// Store a trigger for `schedule_id` as intake does, and wake the worker; its receipt.
    async fn accept(&self, delivery: &str, schedule_id: &str) -> String {
        let trigger = NewTrigger {
            source: "servicenow".into(),
            delivery_id: delivery.into(),
            body_hash: format!("{:064x}", delivery.len()),
            target: ScheduleTarget {
                business_unit: "bu-1".into(),
                week: "2026-03-30".into(),
                schedule_id: schedule_id.into(),
            },
            event: "case.updated".into(),
            received_at: self.clock.now(),
        };
        let Acceptance::Accepted(receipt) = self.store.accept(trigger).await.unwrap() else {
            panic!("{delivery} was not new");
        };
        self.wake.notify_one();
        receipt.id
    }

    /// The rules that decided about this schedule, in order.
    fn rules_decided(&self, schedule_id: &str) -> Vec<Value> {
        self.events("decision", schedule_id)
            .iter()
            .map(|d| d["event"]["rule"].clone())
            .collect()
    }

    /// Every audit entry on disk now (a line being written is not yet one).
    fn entries(&self) -> Vec<Value> {
        entries(&self.audit_path)
    }

    /// The audit entries of this kind about this schedule.
    fn events(&self, kind: &str, schedule_id: &str) -> Vec<Value> {
        self.entries()
            .into_iter()
            .filter(|e| {
                e["event"]["kind"] == kind && e["event"]["schedule"]["schedule_id"] == schedule_id
            })
            .collect()
    }
}

fn entries(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// Let the worker run until `holds` (bounded in real time; the clock does not move).
async fn until(what: &str, mut holds: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !holds() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::task::yield_now().await;
    }
}

/// The chain verifies and no step id appears twice.
fn log_is_sound(path: &Path) -> Vec<Value> {
    let all = entries(path);
    match verify(path, &checkpoints_path(path), None).unwrap() {
        Ok(verified) => assert_eq!(verified.entries, all.len() as u64),
        Err(broken) => panic!("the audit chain is broken: {broken:?}"),
    }
    let steps: HashSet<&str> = all.iter().filter_map(|e| e["step"].as_str()).collect();
    assert_eq!(steps.len(), all.len(), "a step was written twice");
    all
}

#[tokio::test]
async fn a_schedule_in_a_long_backoff_does_not_hold_up_another() {
    let rig = Rig::new(MONDAY_10);
    rig.api.publishing("A", 4);
    rig.api.draft("B", 1);
    let worker = rig.worker();
    let scenario = async {
        let a = rig.accept("a-1", "A").await;
        until("A backs off for 5 minutes", || {
            rig.events("wait", "A")
                .iter()
                .any(|w| w["event"]["until"] == "2026-03-30T09:05:00Z")
        })
        .await;
        let b = rig.accept("b-1", "B").await;
        until("B's trigger is done", || rig.store.is_done(&b)).await;

        assert_eq!(rig.clock.now(), at(MONDAY_10), "no time passed");
        assert_eq!(rig.api.count("publish B"), 1);
        assert_eq!(rig.store.last_mark(&a), None, "A is still in its backoff");
        // Shutting down mid-backoff stops at once; A stays pending for the next start.
        rig.stop.send_replace(true);
        a
    };
    let (worked, a) = tokio::join!(worker, scenario);
    worked.unwrap();
    let left = rig.store.unfinished().await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].receipt.id, a);
    log_is_sound(&rig.audit_path);
}

#[tokio::test]
async fn triggers_that_arrive_while_a_publish_is_processing_coalesce_into_it() {
    let rig = Rig::new(MONDAY_10);
    rig.api.draft("A", 1);
    rig.api.set_processing(SignedDuration::from_mins(3));
    let worker = rig.worker();
    let scenario = async {
        let first = rig.accept("a-1", "A").await;
        until("the publish is processing", || {
            !rig.events("wait", "A").is_empty()
        })
        .await;
        let later = [rig.accept("a-2", "A").await, rig.accept("a-3", "A").await];
        until("both are coalesced", || {
            rig.events("trigger_coalesced", "A").len() == 2
        })
        .await;
        assert_eq!(rig.clock.now(), at(MONDAY_10), "no time passed");
        // The follow wait (the policy's first backoff, 5 minutes) runs out: published.
        rig.clock.set(at(MONDAY_10) + SignedDuration::from_mins(5));
        until("every trigger is done", || {
            [&first, &later[0], &later[1]]
                .iter()
                .all(|r| rig.store.is_done(r))
        })
        .await;
        rig.stop.send_replace(true);
    };
    let (worked, ()) = tokio::join!(worker, scenario);
    worked.unwrap();
    assert_eq!(rig.api.count("publish A"), 1);
    let outcomes: Vec<(Value, Value)> = rig
        .events("outcome", "A")
        .iter()
        .map(|o| {
            (
                o["event"]["outcome"]["result"].clone(),
                o["event"]["triggers"].clone(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [(json!("published"), json!(1)), (json!("skipped"), json!(2))],
        "the publish, then one evaluation for the two coalesced triggers"
    );
    log_is_sound(&rig.audit_path);
}

#[tokio::test]
async fn the_decision_to_publish_is_on_disk_before_the_publish_call() {
    let rig = Rig::new(MONDAY_10);
    rig.api.draft("A", 1);
    let seen: Rc<RefCell<Vec<bool>>> = Rc::default();
    let (path, record) = (rig.audit_path.clone(), Rc::clone(&seen));
    rig.api.state.borrow_mut().on_publish = Some(Box::new(move |schedule| {
        let decided = entries(&path).iter().any(|e| {
            e["event"]["kind"] == "decision"
                && e["event"]["action"] == "publish"
                && e["event"]["schedule"]["schedule_id"] == schedule.schedule_id.as_str()
        });
        record.borrow_mut().push(decided);
    }));
    let worker = rig.worker();
    let scenario = async {
        let a = rig.accept("a-1", "A").await;
        until("the trigger is done", || rig.store.is_done(&a)).await;
        rig.stop.send_replace(true);
    };
    let (worked, ()) = tokio::join!(worker, scenario);
    worked.unwrap();
    assert_eq!(
        *seen.borrow(),
        [true],
        "one publish call, its decision already on disk"
    );
    log_is_sound(&rig.audit_path);
}

#[tokio::test]
async fn a_crash_between_recording_and_marking_done_reruns_without_losing_or_repeating_a_step() {
    let rig = Rig::new(MONDAY_10);
    rig.api.draft("A", 1);
    *rig.store.dies_at.lock().unwrap() = Some(|p| p.status.is_finished());
    let receipt = rig.accept("a-1", "A").await;
    let crashed = rig.worker().await;
    assert!(
        matches!(crashed, Err(WorkerError::Store(StoreError::Database(_)))),
        "{crashed:?}"
    );
    let first_run = rig.entries();
    let outcome = |entries: &[Value]| {
        entries
            .iter()
            .filter(|e| e["event"]["kind"] == "outcome")
            .map(|e| e["event"]["outcome"]["result"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        outcome(&first_run),
        [json!("published")],
        "recorded, not marked"
    );
    assert_eq!(rig.store.unfinished().await.unwrap().len(), 1);

    // The restart: the same store and log, now able to mark triggers done.
    *rig.store.dies_at.lock().unwrap() = None;
    let worker = rig.worker();
    let scenario = async {
        until("the trigger is done", || rig.store.is_done(&receipt)).await;
        rig.stop.send_replace(true);
    };
    let (worked, ()) = tokio::join!(worker, scenario);
    worked.unwrap();

    let all = log_is_sound(&rig.audit_path);
    assert_eq!(
        all[..first_run.len()],
        first_run[..],
        "the first run's entries stand"
    );
    let rerun = &all[first_run.len()..];
    assert_eq!(
        outcome(rerun),
        [json!("skipped")],
        "the re-run's steps are all written"
    );
    let kinds: Vec<&str> = rerun
        .iter()
        .filter_map(|e| e["event"]["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        ["cycle_started", "state_read", "decision", "outcome"],
        "the arrival was recorded once, by the first run"
    );
    let received = format!("{receipt}/received");
    assert_eq!(
        all.iter()
            .filter(|e| e["step"] == received.as_str())
            .count(),
        1
    );
    assert_eq!(rig.api.count("publish A"), 1, "published once");
}

#[tokio::test]
async fn a_deferred_trigger_is_fed_again_when_due_and_a_later_deferral_waits_for_its_own_instant() {
    // Saturday 4 April 2026, 12:00 in London: no business hours until Monday 07:00.
    let rig = Rig::new("2026-04-04T11:00:00Z");
    rig.api.draft("A", 1);
    let monday_7 = at("2026-04-06T06:00:00Z");
    let tuesday_7 = at("2026-04-07T06:00:00Z");
    let worker = rig.worker();
    let scenario = async {
        let first = rig.accept("a-1", "A").await;
        until("the trigger is deferred", || {
            rig.store.last_mark(&first).is_some()
        })
        .await;
        let deferred = rig.store.last_mark(&first).unwrap();
        assert_eq!(
            (deferred.status, deferred.due_at),
            (TriggerStatus::Pending, Some(monday_7))
        );
        rig.clock.set(monday_7);
        until("Monday's publish", || rig.store.is_done(&first)).await;
        assert_eq!(rig.api.count("publish A"), 1);

        // Monday 21:00: the schedule is edited back to a draft and a trigger comes.
        rig.clock.set(at("2026-04-06T20:00:00Z"));
        rig.api.draft("A", 5);
        let second = rig.accept("a-2", "A").await;
        until("the second trigger is deferred", || {
            rig.store.last_mark(&second).is_some()
        })
        .await;
        let deferred = rig.store.last_mark(&second).unwrap();
        assert_eq!(
            deferred.due_at,
            Some(tuesday_7),
            "not Monday's instant, long past"
        );
        rig.stop.send_replace(true);
    };
    let (worked, ()) = tokio::join!(worker, scenario);
    worked.unwrap();
    let received = rig
        .entries()
        .iter()
        .filter(|e| e["event"]["kind"] == "trigger_received")
        .count();
    assert_eq!(received, 3, "two arrivals and one re-evaluation");
    log_is_sound(&rig.audit_path);
}

/// A recorder whose disk fills up when a decision comes.
struct FullDisk;

impl EventRecorder<()> for FullDisk {
    type Error = &'static str;

    async fn record_batch(&self, batch: Batch<()>) -> Result<(), &'static str> {
        let decides = batch
            .events
            .iter()
            .any(|e| matches!(e.kind, EventKind::Decision { .. }));
        if decides { Err("disk full") } else { Ok(()) }
    }
}

#[tokio::test]
async fn the_driver_stops_when_a_step_cannot_be_recorded_and_acts_on_nothing_unrecorded() {
    let rig = Rig::new(MONDAY_10);
    rig.api.draft("A", 1);
    let policy = publish_guard::compile(RULES).unwrap().policy;
    let trigger = Trigger {
        delivery_id: Some("a-1".into()),
        source: "servicenow".into(),
        event: None,
        received_at: rig.clock.now(),
    };
    let mut driver = Driver::new(
        &rig.api,
        &rig.clock,
        &FullDisk,
        SeededRandom::new(1),
        RunnerConfig::default(),
    );
    let ran = driver
        .run_triggers(&policy, vec![(schedule("A"), trigger)])
        .await;
    assert_eq!(ran, Err("disk full"));
    assert_eq!(
        rig.api.calls(),
        ["read A"],
        "the unrecorded publish was not made"
    );
}

#[tokio::test]
async fn a_cycle_in_flight_finishes_under_the_policy_it_started_with_and_the_next_takes_the_reload()
{
    let rig = Rig::new(MONDAY_10);
    rig.api.publishing("A", 4);
    rig.api.draft("B", 1);
    let started_with = rig.rules.current().version().to_owned();
    let worker = rig.worker();
    let scenario = async {
        let a = rig.accept("a-1", "A").await;
        until("A backs off", || !rig.events("wait", "A").is_empty()).await;
        std::fs::write(&rig.rules_path, FROZEN_RULES).unwrap();
        let frozen = rig.rules.reload().unwrap();
        // The other publish ends; A's cycle reads again under the policy it started with.
        rig.api.draft("A", 4);
        rig.clock.set(at(MONDAY_10) + SignedDuration::from_mins(5));
        until("A is done", || rig.store.is_done(&a)).await;
        let b = rig.accept("b-1", "B").await;
        until("B is done", || rig.store.is_done(&b)).await;
        rig.stop.send_replace(true);
        frozen
    };
    let (worked, frozen) = tokio::join!(worker, scenario);
    worked.unwrap();
    let decided = |id| -> Vec<(Value, Value)> {
        rig.events("decision", id)
            .iter()
            .map(|d| {
                (
                    d["event"]["action"].clone(),
                    d["event"]["policy_version"].clone(),
                )
            })
            .collect()
    };
    let old = json!(started_with);
    assert_eq!(
        decided("A"),
        [
            (json!("backoff"), old.clone()),
            (json!("publish"), old.clone()),
            (json!("done"), old)
        ]
    );
    assert_eq!(decided("B"), [(json!("skip"), json!(frozen))]);
    assert_eq!(rig.api.count("publish A"), 1);
    assert_eq!(rig.api.count("publish B"), 0);
    log_is_sound(&rig.audit_path);
}

#[tokio::test]
async fn a_restart_while_our_publish_is_processing_follows_it_rather_than_publishing_again() {
    let rig = Rig::new(MONDAY_10);
    rig.api.draft("A", 1);
    rig.api.set_processing(SignedDuration::from_mins(3));
    let worker = rig.worker();
    let scenario = async {
        let a = rig.accept("a-1", "A").await;
        until("the trigger notes the accepted write", || {
            rig.store.last_mark(&a).is_some()
        })
        .await;
        rig.stop.send_replace(true);
        a
    };
    let (worked, a) = tokio::join!(worker, scenario);
    worked.unwrap();
    let noted = rig.store.last_mark(&a).unwrap();
    assert_eq!(noted.status, TriggerStatus::Pending);
    assert_eq!(accepted_write(&noted), Some(true));

    // The restart, a minute on: the publish still runs and the read shows a draft.
    rig.clock.set(at(MONDAY_10) + SignedDuration::from_mins(1));
    let worker = rig.worker();
    let scenario = async {
        until("A backs off while our write runs", || {
            rig.events("wait", "A").len() == 2
        })
        .await;
        rig.clock.set(at(MONDAY_10) + SignedDuration::from_mins(6));
        until("the trigger is done", || rig.store.is_done(&a)).await;
        rig.stop.send_replace(true);
    };
    let (worked, ()) = tokio::join!(worker, scenario);
    worked.unwrap();
    assert_eq!(rig.api.count("publish A"), 1);
    assert_eq!(rig.api.count("conflict A"), 0, "no 409");
    let decided: Vec<Value> = rig.rules_decided("A");
    assert_eq!(
        decided,
        [
            json!("ready"),
            json!("ok"),
            json!("in_progress"),
            json!("published")
        ]
    );
    log_is_sound(&rig.audit_path);
}

/// Our publish (10 minutes of processing) goes out, and the process dies as it notes the
/// accepted answer; the relay restarts `after` minutes (and 10 seconds) later. Returns the 409s met and the
/// rules that decided, in order.
async fn crash_before_the_answer_is_noted_then_restart(after: i64) -> (usize, Vec<Value>) {
    let rig = Rig::new(MONDAY_10);
    rig.api.draft("A", 1);
    rig.api.set_processing(SignedDuration::from_mins(10));
    *rig.store.dies_at.lock().unwrap() = Some(|p| accepted_write(p) == Some(true));
    let receipt = rig.accept("a-1", "A").await;
    let crashed = rig.worker().await;
    assert!(matches!(crashed, Err(WorkerError::Store(_))), "{crashed:?}");
    assert_eq!(rig.api.count("publish A"), 1);
    let noted = rig.store.last_mark(&receipt).unwrap();
    assert_eq!(accepted_write(&noted), Some(false), "{noted:?}");

    *rig.store.dies_at.lock().unwrap() = None;
    let restart = SignedDuration::from_mins(after) + SignedDuration::from_secs(10);
    rig.clock.set(at(MONDAY_10) + restart);
    let worker = rig.worker();
    let scenario = async {
        until("A backs off behind the publish that is running", || {
            rig.events("decision", "A")
                .iter()
                .any(|d| d["event"]["rule"] == "in_progress")
        })
        .await;
        rig.clock.set(at(MONDAY_10) + SignedDuration::from_mins(30));
        until("the trigger is done", || rig.store.is_done(&receipt)).await;
        rig.stop.send_replace(true);
    };
    let (worked, ()) = tokio::join!(worker, scenario);
    worked.unwrap();
    assert_eq!(rig.api.count("publish A"), 1, "published once");
    log_is_sound(&rig.audit_path);
    let rules = rig.rules_decided("A");
    (rig.api.count("conflict A"), rules)
}

#[tokio::test]
async fn a_restart_soon_after_a_publish_whose_answer_was_lost_takes_it_for_running() {
    let (conflicts, rules) = crash_before_the_answer_is_noted_then_restart(0).await;
    assert_eq!(conflicts, 0);
    assert_eq!(
        rules,
        [
            json!("ready"),
            json!("ok"),
            json!("in_progress"),
            json!("published")
        ]
    );
}

#[tokio::test]
async fn a_restart_after_the_grace_writes_again_and_one_409_shows_the_publish_running() {
    let (conflicts, rules) = crash_before_the_answer_is_noted_then_restart(3).await;
    assert_eq!(conflicts, 1, "one 409, not a storm of them");
    assert_eq!(
        rules,
        [
            json!("ready"),
            json!("ok"),
            json!("ready"),
            json!("conflict"),
            json!("in_progress"),
            json!("published")
        ]
    );
}

#[tokio::test]
async fn a_publish_decided_but_never_sent_before_a_crash_is_sent_once_its_grace_is_over() {
    let rig = Rig::new(MONDAY_10);
    rig.api.draft("A", 1);
    // The decision's note is committed, then the process dies before the call goes out.
    *rig.store.dies_after.lock().unwrap() = Some(|p| accepted_write(p) == Some(false));
    let receipt = rig.accept("a-1", "A").await;
    let crashed = rig.worker().await;
    assert!(matches!(crashed, Err(WorkerError::Store(_))), "{crashed:?}");
    assert_eq!(rig.api.count("publish A"), 0, "nothing went out");

    *rig.store.dies_after.lock().unwrap() = None;
    rig.clock.set(at(MONDAY_10) + SignedDuration::from_secs(10));
    let worker = rig.worker();
    let scenario = async {
        until("A backs off behind the write that may be running", || {
            rig.events("decision", "A")
                .iter()
                .any(|d| d["event"]["rule"] == "in_progress")
        })
        .await;
        assert_eq!(rig.api.count("publish A"), 0, "not within the grace");
        // The backoff (5 minutes) outlasts the grace: the next read decides afresh.
        rig.clock.set(at(MONDAY_10) + SignedDuration::from_mins(6));
        until("the trigger is done", || rig.store.is_done(&receipt)).await;
        rig.stop.send_replace(true);
    };
    let (worked, ()) = tokio::join!(worker, scenario);
    worked.unwrap();
    assert_eq!(rig.api.count("publish A"), 1);
    assert_eq!(rig.api.count("conflict A"), 0);
    let rules: Vec<Value> = rig.rules_decided("A");
    assert_eq!(
        rules,
        [
            json!("ready"),
            json!("in_progress"),
            json!("ready"),
            json!("ok")
        ]
    );
    log_is_sound(&rig.audit_path);
}

#[tokio::test]
async fn a_restart_after_our_publish_met_a_503_reads_a_draft_rather_than_taking_it_for_publishing()
{
    let rig = Rig::new(MONDAY_10);
    rig.api.draft("A", 1);
    rig.api.state.borrow_mut().publish_fails = Some(503);
    let worker = rig.worker();
    let scenario = async {
        let a = rig.accept("a-1", "A").await;
        until("A backs off after the 503", || {
            rig.rules_decided("A") == [json!("ready"), json!("server")]
        })
        .await;
        rig.stop.send_replace(true);
        a
    };
    let (worked, a) = tokio::join!(worker, scenario);
    worked.unwrap();
    let noted = rig.store.last_mark(&a).unwrap();
    assert_eq!(noted.status, TriggerStatus::Pending, "carried on");
    assert_eq!(
        accepted_write(&noted),
        None,
        "no write of ours noted: {noted:?}"
    );

    // The restart, 10 s after the decision: within the grace a lost answer would get.
    rig.api.state.borrow_mut().publish_fails = None;
    rig.clock.set(at(MONDAY_10) + SignedDuration::from_secs(10));
    let worker = rig.worker();
    let scenario = async {
        until("the trigger is done", || rig.store.is_done(&a)).await;
        rig.stop.send_replace(true);
    };
    let (worked, ()) = tokio::join!(worker, scenario);
    worked.unwrap();
    let states: Vec<Value> = rig
        .events("state_read", "A")
        .iter()
        .map(|e| e["event"]["state"].clone())
        .collect();
    assert_eq!(
        states,
        [json!("draft"), json!("draft"), json!("published")],
        "never shown publishing"
    );
    assert_eq!(
        rig.api.calls(),
        ["read A", "failed A", "read A", "publish A", "read A"]
    );
    assert_eq!(
        rig.rules_decided("A"),
        [json!("ready"), json!("server"), json!("ready"), json!("ok")]
    );
    log_is_sound(&rig.audit_path);
}

#[tokio::test]
async fn a_publish_decided_while_stopping_still_goes_out_and_its_answer_is_noted() {
    let rig = Rig::new(MONDAY_10);
    rig.api.draft("A", 1);
    let gate = Rc::new(Notify::new());
    rig.api.state.borrow_mut().read_gate = Some(Rc::clone(&gate));
    let worker = rig.worker();
    let scenario = async {
        let a = rig.accept("a-1", "A").await;
        until("the read is in flight", || rig.api.count("read A") == 1).await;
        rig.stop.send_replace(true);
        // The read answers once the stop is under way; it decides to publish.
        tokio::task::yield_now().await;
        gate.notify_one();
        a
    };
    let (worked, a) = tokio::join!(worker, scenario);
    worked.unwrap();
    assert_eq!(
        rig.api.count("publish A"),
        1,
        "the decided publish went out"
    );
    assert_eq!(rig.api.count("read A"), 1, "nothing was read after it");
    let noted = rig.store.last_mark(&a).unwrap();
    assert_eq!(
        noted.status,
        TriggerStatus::Pending,
        "carried on at the next start"
    );
    assert_eq!(accepted_write(&noted), Some(true));
    log_is_sound(&rig.audit_path);
}
