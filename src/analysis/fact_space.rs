//! The fact space of a set of conditions: a finite set of candidate values per fact that
//! meets every region the conditions can tell apart, and the assignments built from them.
//!
//! Two assignments that no condition can tell apart are the same for every question we ask
//! (is this rule shadowed? do two policies decide alike?), so enumerating the candidates
//! answers those questions for all facts. Candidates per type:
//! - enums, booleans, sources: every value; optional facts: absent too;
//! - integers: `c-1`, `c`, `c+1` for every constant and range bound;
//! - strings: every constant and a value equal to none of them;
//! - durations: every constant, the midpoints between them, and one beyond each end;
//! - `now`: the opening and closing minute of every window range in a reference week, in the
//!   window's zone, and one minute either side;
//! - other instants: a distance before `now` for every `since(fact) < 15m` or
//!   `now < fact + 15m` boundary (as durations above), or window boundaries like `now`.
//!
//! Comparisons the candidates cannot cover exactly (two instants neither of which is `now`,
//! an instant both in a window and measured from `now`, durations against `since`) make the
//! space inexact: [`FactSpace::is_exact`] says so, and callers should not draw conclusions.

use crate::language::schema::{FactId, FactType};
use crate::policy::facts::{Facts, NOW, Value};
use crate::policy::window::Window;
use crate::policy::{Cond, CondKind, Policy, Term};
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use std::collections::{BTreeMap, BTreeSet};

/// Enumerations larger than this are not attempted.
pub const MAX_ASSIGNMENTS: usize = 200_000;

/// Monday of the reference week windows are sampled in (no daylight-saving change in it
/// in either hemisphere's usual rules).
const REFERENCE_MONDAY: Date = jiff::civil::date(2026, 1, 5);

/// The candidate values of the facts some conditions mention.
#[derive(Clone, Debug)]
pub struct FactSpace {
    axes: Vec<Axis>,
    exact: bool,
    zone: TimeZone,
    reference_now: Timestamp,
}

/// One fact and its candidate values.
#[derive(Clone, Debug)]
struct Axis {
    fact: FactId,
    candidates: Vec<Candidate>,
    /// Whether the fact had more than one candidate before alike ones were merged (a
    /// description names only facts that vary).
    varies: bool,
}

/// The most candidate values a [`Cursor`] reads ahead (each a few dozen bytes).
const CACHED_VALUES: usize = 65_536;

/// The most window tests spent merging alike instants of one axis.
const MERGE_TESTS: usize = 100_000;

impl Axis {
    /// Keep only the first of the instants every window treats alike (inside the same
    /// windows). In an exact space an instant taken from windows is only ever tested
    /// against them (compared with `now` as well, it would make the space inexact), so the
    /// conditions cannot tell such instants apart, and as the first is kept every "first
    /// combination such that" answer is unchanged. The default policy's `now` goes from
    /// 36 candidates to 2.
    fn merge_alike_instants(&mut self, windows: &[Window]) {
        let absolute = self
            .candidates
            .iter()
            .all(|c| matches!(c, Candidate::Value(Value::Instant(_)) | Candidate::Absent));
        if windows.is_empty()
            || !absolute
            || self.candidates.len().saturating_mul(windows.len()) > MERGE_TESTS
        {
            return;
        }
        let mut seen: BTreeSet<Vec<bool>> = BTreeSet::new();
        self.candidates.retain(|c| match c {
            Candidate::Value(Value::Instant(t)) => {
                seen.insert(windows.iter().map(|w| w.contains(*t)).collect())
            }
            _ => true,
        });
    }
}

/// A candidate value of one fact.
#[derive(Clone, Debug, PartialEq)]
enum Candidate {
    /// The fact has no value.
    Absent,
    /// A value as is.
    Value(Value),
    /// An instant this long before `now` (negative: after).
    BeforeNow(SignedDuration),
}

impl Candidate {
    /// The fact's value as this candidate, `now` placing a relative instant.
    fn value(&self, now: Timestamp) -> Option<Value> {
        match self {
            Candidate::Value(v) => Some(v.clone()),
            Candidate::BeforeNow(d) => Some(Value::Instant(before_now(now, *d))),
            Candidate::Absent => None,
        }
    }
}

/// What the conditions say about one fact, gathered before candidates are chosen.
#[derive(Debug, Default)]
struct Hints {
    ints: BTreeSet<i64>,
    strings: BTreeSet<String>,
    durations: BTreeSet<SignedDuration>,
    deltas: BTreeSet<SignedDuration>,
    windows: Vec<Window>,
    /// The windows in `windows`, by policy (its address) and index: each is sampled once
    /// however many rules test it.
    window_ids: BTreeSet<(usize, usize)>,
    linked: bool,
}

impl FactSpace {
    /// The space of every condition in every phase of the given policies (for comparing
    /// them). Alike instants are not merged here: `diff` reports how many combinations it
    /// compared, as sampled.
    pub fn for_policies(policies: &[&Policy]) -> FactSpace {
        let conditions: Vec<(&Policy, &Cond)> = policies
            .iter()
            .flat_map(|p| {
                [&p.trigger, &p.response]
                    .into_iter()
                    .flat_map(|phase| phase.rules.iter())
                    .map(move |rule| (*p, &rule.condition))
            })
            .collect();
        let zone = policies
            .first()
            .map_or(TimeZone::UTC, |p| p.timezone.clone());
        FactSpace::build(&conditions, zone, policies, false)
    }

    /// The space of some conditions of one policy (windows are the policy's).
    pub fn for_conditions(policy: &Policy, conditions: &[&Cond]) -> FactSpace {
        let pairs: Vec<(&Policy, &Cond)> = conditions.iter().map(|c| (policy, *c)).collect();
        FactSpace::build(&pairs, policy.timezone.clone(), &[policy], true)
    }

    /// The space; with `merge`, instants no condition tells apart merged (see
    /// [`Axis::merge_alike_instants`]).
    fn build(
        conditions: &[(&Policy, &Cond)],
        zone: TimeZone,
        policies: &[&Policy],
        merge: bool,
    ) -> FactSpace {
        let mut gather = Gather::default();
        for (policy, cond) in conditions {
            gather.cond(policy, cond);
        }
        gather.link();
        let reference_now = local_instant(&zone, REFERENCE_MONDAY, 12 * 60);
        let sources: Vec<String> = policies
            .iter()
            .flat_map(|p| p.sources.iter().cloned())
            .fold(Vec::new(), |mut acc, s| {
                if !acc.contains(&s) {
                    acc.push(s);
                }
                acc
            });
        let mut exact = gather.exact;
        let mut axes: Vec<Axis> = gather
            .hints
            .iter()
            .map(|(fact, hints)| {
                let (candidates, ok) = candidates(*fact, hints, &sources, reference_now);
                exact &= ok;
                Axis {
                    fact: *fact,
                    varies: candidates.len() > 1,
                    candidates,
                }
            })
            .collect();
        if exact && merge {
            for (axis, hints) in axes.iter_mut().zip(gather.hints.values()) {
                axis.merge_alike_instants(&hints.windows);
            }
        }
        FactSpace {
            axes,
            exact,
            zone,
            reference_now,
        }
    }

    /// Every candidate's value for [`Cursor`]: per candidate of `now` (or one layer at
    /// the reference `now` when it is not an axis), per axis, per candidate; empty past
    /// [`CACHED_VALUES`].
    fn values(&self) -> Vec<Vec<Vec<Option<Value>>>> {
        let nows: Vec<Timestamp> = match self.axes.iter().find(|a| a.fact == NOW) {
            None => vec![self.reference_now],
            Some(axis) => axis
                .candidates
                .iter()
                .map(|c| match c {
                    Candidate::Value(Value::Instant(t)) => *t,
                    _ => self.reference_now,
                })
                .collect(),
        };
        let per_layer: usize = self.axes.iter().map(|a| a.candidates.len()).sum();
        if nows.len().saturating_mul(per_layer) > CACHED_VALUES {
            return Vec::new();
        }
        nows.into_iter()
            .map(|now| {
                self.axes
                    .iter()
                    .map(|a| a.candidates.iter().map(|c| c.value(now)).collect())
                    .collect()
            })
            .collect()
    }

    /// Whether the candidates meet every region the conditions tell apart.
    pub fn is_exact(&self) -> bool {
        self.exact
    }

    /// How many assignments [`FactSpace::assignments`] yields; `None` beyond `usize`.
    pub fn size(&self) -> Option<usize> {
        self.axes
            .iter()
            .try_fold(1usize, |n, a| n.checked_mul(a.candidates.len()))
    }

    /// Whether the space is exact and small enough to enumerate.
    pub fn is_enumerable(&self) -> bool {
        self.fits(MAX_ASSIGNMENTS)
    }

    /// Whether the space is exact and has at most `limit` assignments.
    pub fn fits(&self, limit: usize) -> bool {
        self.exact && self.size().is_some_and(|n| n <= limit)
    }

    /// Every combination of candidates, as facts (facts not mentioned stay absent).
    pub fn assignments(&self) -> Assignments<'_> {
        Assignments {
            space: self,
            next: (self.size() != Some(0)).then(|| vec![0; self.axes.len()]),
        }
    }

    /// The numbers (in [`FactSpace::assignments`] order) of the assignments in which each
    /// of `pinned` has that value: one in a few of them, found without dividing, one at a
    /// time (held all at once they took 8 bytes per such assignment). `None` when a pinned
    /// fact is not an axis of the space or that value not a candidate.
    pub fn numbers_where(
        &self,
        pinned: &[(FactId, Value)],
    ) -> Option<impl Iterator<Item = usize> + '_> {
        let mut fixed: Vec<Option<usize>> = vec![None; self.axes.len()];
        for (fact, value) in pinned {
            let axis = self.axes.iter().position(|a| a.fact == *fact)?;
            let wanted = Candidate::Value(value.clone());
            let index = self
                .axes
                .get(axis)?
                .candidates
                .iter()
                .position(|c| *c == wanted)?;
            *fixed.get_mut(axis)? = Some(index);
        }
        let mut strides = vec![1usize; self.axes.len()];
        let mut stride = 1usize;
        for (slot, axis) in strides.iter_mut().zip(&self.axes).rev() {
            *slot = stride;
            stride = stride.checked_mul(axis.candidates.len())?;
        }
        // The candidate index per axis of the next number; `None` once past the last.
        let mut digits: Option<Vec<usize>> =
            (stride != 0).then(|| fixed.iter().map(|f| f.unwrap_or(0)).collect());
        Some(std::iter::from_fn(move || {
            let current = digits.as_mut()?;
            let number = current.iter().zip(&strides).map(|(d, s)| d * s).sum();
            // Count up the free axes, the last fastest; carrying out of the first ends it.
            let mut carried = true;
            for (i, axis) in self.axes.iter().enumerate().rev() {
                let (Some(digit), Some(None)) = (current.get_mut(i), fixed.get(i)) else {
                    continue;
                };
                *digit += 1;
                if *digit < axis.candidates.len() {
                    carried = false;
                    break;
                }
                *digit = 0;
            }
            if carried {
                digits = None;
            }
            Some(number)
        }))
    }

    /// An assignment in words, naming only `facts` (and only those that vary):
    /// "schedule.state = draft and trigger.duplicate = true".
    pub fn describe(&self, assignment: &Facts, facts: &BTreeSet<FactId>) -> String {
        let now = assignment.instant(NOW).unwrap_or(self.reference_now);
        let parts: Vec<String> = self
            .axes
            .iter()
            .filter(|a| facts.contains(&a.fact) && a.varies)
            .map(|a| {
                let name = a.fact.name();
                match assignment.get(a.fact) {
                    None => format!("no {name}"),
                    Some(value) => format!("{name} = {}", self.show(a.fact, value, now)),
                }
            })
            .collect();
        match parts.as_slice() {
            [] => "any facts".to_string(),
            [one] => one.clone(),
            [init @ .., last] => format!("{} and {last}", init.join(", ")),
        }
    }

    /// One value in words: as a rules file writes it, but `now` as a local weekday and
    /// time, and other instants relative to `now`.
    fn show(&self, fact: FactId, value: &Value, now: Timestamp) -> String {
        match value {
            Value::Instant(t) if fact == NOW => {
                let local = self.zone.to_datetime(*t);
                let zone = self.zone.iana_name().unwrap_or("UTC");
                format!(
                    "{} {} in {zone}",
                    weekday(local.date()),
                    local.strftime("%H:%M")
                )
            }
            Value::Instant(t) => {
                let since = now.duration_since(*t);
                if since.is_negative() {
                    format!("{:#} after now", -since)
                } else if since.is_zero() {
                    "now".to_string()
                } else {
                    format!("{since:#} before now")
                }
            }
            other => other.render(fact.def().ty),
        }
    }
}

/// The assignments of a [`FactSpace`], in a fixed order (the last fact varies fastest).
#[derive(Debug)]
pub struct Assignments<'s> {
    space: &'s FactSpace,
    next: Option<Vec<usize>>,
}

impl Iterator for Assignments<'_> {
    type Item = Facts;

    fn next(&mut self) -> Option<Facts> {
        let indices = self.next.take()?;
        let mut facts = Facts::new();
        let chosen = |axis: &Axis, i: usize| axis.candidates.get(i).cloned();
        let now = self
            .space
            .axes
            .iter()
            .zip(&indices)
            .find(|(a, _)| a.fact == NOW)
            .and_then(|(a, i)| match chosen(a, *i) {
                Some(Candidate::Value(Value::Instant(t))) => Some(t),
                _ => None,
            })
            .unwrap_or(self.space.reference_now);
        for (axis, i) in self.space.axes.iter().zip(&indices) {
            let value = axis.candidates.get(*i).and_then(|c| c.value(now));
            facts.set(axis.fact, value);
        }
        self.next = advance(indices, &self.space.axes);
        Some(facts)
    }
}

/// A view of any assignment of a [`FactSpace`] by its number in [`FactSpace::assignments`]
/// order, without holding them all: moving to another number sets only the facts whose
/// candidate differs, so walking ascending numbers costs about what the iterator does.
/// (Holding every assignment as [`Facts`] took 640 bytes each.)
#[derive(Debug)]
pub struct Cursor<'s> {
    space: &'s FactSpace,
    facts: Facts,
    /// The number of the assignment `facts` holds; `usize::MAX` before the first.
    number: usize,
    /// The candidate index per axis that `facts` holds; `usize::MAX` before the first.
    indices: Vec<usize>,
    /// Scratch: the candidate index per axis of the assignment asked for.
    wanted: Vec<usize>,
    /// The axis of `now`, if any.
    now_axis: Option<usize>,
    /// Per axis, whether its candidates are instants relative to `now`.
    relative: Vec<bool>,
    /// Each candidate's value, read once rather than at every step: per candidate of
    /// `now` (one layer when `now` cannot move), per axis, per candidate. Empty when that
    /// would hold more than [`CACHED_VALUES`].
    values: Vec<Vec<Vec<Option<Value>>>>,
}

impl<'s> Cursor<'s> {
    /// A cursor on `space`, at no assignment yet.
    pub fn new(space: &'s FactSpace) -> Self {
        Cursor {
            space,
            facts: Facts::new(),
            number: usize::MAX,
            indices: vec![usize::MAX; space.axes.len()],
            wanted: vec![0; space.axes.len()],
            now_axis: space.axes.iter().position(|a| a.fact == NOW),
            relative: space
                .axes
                .iter()
                .map(|a| matches!(a.candidates.first(), Some(Candidate::BeforeNow(_))))
                .collect(),
            values: space.values(),
        }
    }

    /// The facts of assignment `number` (numbers past the last wrap around).
    pub fn at(&mut self, number: usize) -> &Facts {
        if number == self.number {
            return &self.facts;
        }
        let axes = &self.space.axes;
        let mut wanted = std::mem::take(&mut self.wanted);
        if self.number < number {
            // Walking forward (as every analysis does): add the distance to the indices
            // held, carrying from the last axis; most steps touch one or two axes rather
            // than dividing on every one.
            wanted.clone_from(&self.indices);
            let mut carry = number - self.number;
            for (slot, axis) in wanted.iter_mut().zip(axes).rev() {
                if carry == 0 {
                    break;
                }
                let size = axis.candidates.len().max(1);
                let sum = *slot + carry;
                (*slot, carry) = if sum < size {
                    (sum, 0)
                } else {
                    (sum % size, sum / size)
                };
            }
        } else {
            let mut rest = number;
            for (slot, axis) in wanted.iter_mut().zip(axes).rev() {
                let size = axis.candidates.len().max(1);
                *slot = rest % size;
                rest /= size;
            }
        }
        self.number = number;
        let now_axis = self.now_axis;
        let now_moved = now_axis.is_some_and(|i| self.indices.get(i) != wanted.get(i));
        if now_moved {
            let chosen = now_axis.and_then(|i| {
                let candidate = axes.get(i)?.candidates.get(*wanted.get(i)?)?;
                match candidate {
                    Candidate::Value(Value::Instant(t)) => Some(*t),
                    _ => None,
                }
            });
            let now = chosen.unwrap_or(self.space.reference_now);
            self.set(now_axis, &wanted, now);
        }
        let now = self.facts.instant(NOW).unwrap_or(self.space.reference_now);
        for i in 0..axes.len() {
            let relative = self.relative.get(i).copied().unwrap_or(false);
            if self.indices.get(i) != wanted.get(i) || (now_moved && relative) {
                self.set(Some(i), &wanted, now);
            }
        }
        self.wanted = wanted;
        &self.facts
    }

    /// Set axis `axis` to its candidate in `wanted`, `now` placing relative instants.
    fn set(&mut self, axis: Option<usize>, wanted: &[usize], now: Timestamp) {
        let Some(i) = axis else { return };
        let (Some(a), Some(&index)) = (self.space.axes.get(i), wanted.get(i)) else {
            return;
        };
        let layer = match (self.values.len(), self.now_axis) {
            (1, _) | (_, None) => 0,
            (_, Some(now_axis)) => wanted.get(now_axis).copied().unwrap_or(0),
        };
        let cached = self.values.get(layer).and_then(|l| l.get(i)?.get(index));
        let value = match cached {
            Some(value) => value.clone(),
            None => a.candidates.get(index).and_then(|c| c.value(now)),
        };
        self.facts.set(a.fact, value);
        if let Some(slot) = self.indices.get_mut(i) {
            *slot = index;
        }
    }
}

/// The instant `d` before `now`, or the first or last instant there is when that is out
/// of range: `since(x)` can be no larger than from the first instant, so a threshold
/// beyond it (`since(x) < 106751991167d`) is met there rather than by no instant at all
/// (which made such a rule look as if it never held, while it always does).
fn before_now(now: Timestamp, d: SignedDuration) -> Timestamp {
    now.checked_sub(d).unwrap_or(if d.is_positive() {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// The odometer step: the next index vector, or `None` after the last.
fn advance(mut indices: Vec<usize>, axes: &[Axis]) -> Option<Vec<usize>> {
    for (i, axis) in indices.iter_mut().zip(axes).rev() {
        *i += 1;
        if *i < axis.candidates.len() {
            return Some(indices);
        }
        *i = 0;
    }
    None
}

/// The facts a condition mentions (`since(x)` mentions `now` too).
pub fn mentioned(cond: &Cond) -> BTreeSet<FactId> {
    let mut out = BTreeSet::new();
    add_mentioned(cond, &mut out);
    out
}

fn add_mentioned(cond: &Cond, out: &mut BTreeSet<FactId>) {
    match &cond.kind {
        CondKind::And(parts) | CondKind::Or(parts) => {
            parts.iter().for_each(|c| add_mentioned(c, out))
        }
        CondKind::Not(inner) => add_mentioned(inner, out),
        CondKind::Compare { left, right, .. } => {
            term_facts(left, out);
            term_facts(right, out);
        }
        CondKind::InSet { term, .. }
        | CondKind::InRange { term, .. }
        | CondKind::InWindow { term, .. }
        | CondKind::IsTrue(term) => term_facts(term, out),
        CondKind::Exists(fact) => {
            out.insert(*fact);
        }
    }
}

fn term_facts(term: &Term, out: &mut BTreeSet<FactId>) {
    match term {
        Term::Fact(f) | Term::Offset(f, _) => {
            out.insert(*f);
        }
        Term::Since(f) => {
            out.insert(*f);
            out.insert(NOW);
        }
        Term::Const(_) => {}
    }
}

/// Hints gathered from conditions, per fact.
#[derive(Debug)]
struct Gather {
    hints: BTreeMap<FactId, Hints>,
    links: Vec<(FactId, FactId)>,
    exact: bool,
}

impl Default for Gather {
    fn default() -> Self {
        Gather {
            hints: BTreeMap::new(),
            links: Vec::new(),
            exact: true,
        }
    }
}

impl Gather {
    fn hint(&mut self, fact: FactId) -> &mut Hints {
        self.hints.entry(fact).or_default()
    }

    fn cond(&mut self, policy: &Policy, cond: &Cond) {
        for fact in mentioned(cond) {
            self.hint(fact);
        }
        match &cond.kind {
            CondKind::And(parts) | CondKind::Or(parts) => {
                parts.iter().for_each(|c| self.cond(policy, c))
            }
            CondKind::Not(inner) => self.cond(policy, inner),
            CondKind::Compare { left, right, .. } => self.compare(left, right),
            CondKind::InSet { term, values, .. } => {
                for value in values.iter() {
                    self.constant(term, value);
                }
            }
            CondKind::InRange {
                term, low, high, ..
            } => {
                self.constant(term, &Value::Int(*low));
                self.constant(term, &Value::Int(*high));
            }
            CondKind::InWindow { term, window, .. } => match term {
                Term::Fact(f) => {
                    let hints = self.hint(*f);
                    let id = (std::ptr::from_ref(policy) as usize, window.0);
                    if hints.window_ids.insert(id) {
                        hints.windows.push(policy.window(*window).clone());
                    }
                }
                _ => self.exact = false,
            },
            CondKind::Exists(_) | CondKind::IsTrue(_) => {}
        }
    }

    /// A term compared with a constant.
    fn constant(&mut self, term: &Term, value: &Value) {
        match (term, value) {
            (Term::Fact(f), Value::Int(i)) => {
                self.hint(*f).ints.insert(*i);
            }
            (Term::Fact(f), Value::Str(s)) => {
                self.hint(*f).strings.insert(s.clone());
            }
            (Term::Fact(f), Value::Duration(d)) => {
                self.hint(*f).durations.insert(*d);
            }
            (Term::Since(f), Value::Duration(d)) if *f != NOW => {
                self.hint(*f).deltas.insert(*d);
            }
            (Term::Fact(_), Value::Enum(_) | Value::Bool(_)) => {}
            _ => self.exact = false,
        }
    }

    fn compare(&mut self, left: &Term, right: &Term) {
        match (left, right) {
            (Term::Const(_), Term::Const(_)) => {}
            (term, Term::Const(c)) | (Term::Const(c), term) => self.constant(term, c),
            _ => match (instant_parts(left), instant_parts(right)) {
                (Some((a, da)), Some((b, db))) => self.instants(a, da, b, db),
                _ => match (left, right) {
                    (Term::Fact(a), Term::Fact(b)) if a.def().ty == b.def().ty => {
                        self.links.push((*a, *b));
                    }
                    _ => self.exact = false,
                },
            },
        }
    }

    /// `a + da` against `b + db`: exact when one of them is `now`.
    fn instants(&mut self, a: FactId, da: SignedDuration, b: FactId, db: SignedDuration) {
        match (a == NOW, b == NOW) {
            (true, true) => {}
            (false, true) => {
                self.hint(a).deltas.insert(da - db);
            }
            (true, false) => {
                self.hint(b).deltas.insert(db - da);
            }
            (false, false) => self.exact = false,
        }
    }

    /// Facts compared with each other share their constants: each connected group of
    /// linked facts gets the union of the group's constants.
    fn link(&mut self) {
        let mut groups: Vec<BTreeSet<FactId>> = Vec::new();
        for (a, b) in &self.links {
            let mut merged = BTreeSet::from([*a, *b]);
            groups.retain(|g| {
                let touches = g.contains(a) || g.contains(b);
                if touches {
                    merged.extend(g.iter().copied());
                }
                !touches
            });
            groups.push(merged);
        }
        for group in groups {
            let mut shared = Hints::default();
            for fact in &group {
                let h = self.hint(*fact);
                shared.ints.extend(h.ints.iter().copied());
                shared.strings.extend(h.strings.iter().cloned());
                shared.durations.extend(h.durations.iter().copied());
            }
            if shared.ints.is_empty() {
                shared.ints.insert(0);
            }
            if shared.durations.is_empty() {
                shared.durations.insert(SignedDuration::from_hours(1));
            }
            for fact in &group {
                let h = self.hint(*fact);
                h.ints.clone_from(&shared.ints);
                h.strings.clone_from(&shared.strings);
                h.durations.clone_from(&shared.durations);
                h.linked = true;
            }
        }
    }
}

/// An instant term as (fact, offset): a fact, or a fact moved by a duration.
fn instant_parts(term: &Term) -> Option<(FactId, SignedDuration)> {
    match term {
        Term::Fact(f) if f.def().ty == FactType::Instant => Some((*f, SignedDuration::ZERO)),
        Term::Offset(f, d) => Some((*f, *d)),
        _ => None,
    }
}

/// The candidates of one fact, and whether they are exact.
fn candidates(
    fact: FactId,
    hints: &Hints,
    sources: &[String],
    reference_now: Timestamp,
) -> (Vec<Candidate>, bool) {
    let def = fact.def();
    let value = |v| Candidate::Value(v);
    let mut exact = true;
    let mut out: Vec<Candidate> = match def.ty {
        FactType::Enum(values) => (0..values.len())
            .filter_map(|i| u8::try_from(i).ok())
            .map(|i| value(Value::Enum(i)))
            .collect(),
        FactType::Source if sources.is_empty() => vec![value(Value::Str(String::new()))],
        FactType::Source => sources
            .iter()
            .map(|s| value(Value::Str(s.clone())))
            .collect(),
        FactType::Bool => vec![value(Value::Bool(true)), value(Value::Bool(false))],
        FactType::Int => int_candidates(&hints.ints)
            .into_iter()
            .map(|i| value(Value::Int(i)))
            .collect(),
        FactType::String => {
            let fresh = if hints.linked { 2 } else { 1 };
            let mut strings: Vec<String> = hints.strings.iter().cloned().collect();
            strings.extend(fresh_strings(&hints.strings, fresh));
            strings.into_iter().map(|s| value(Value::Str(s))).collect()
        }
        FactType::Duration => duration_candidates(&hints.durations)
            .into_iter()
            .map(|d| value(Value::Duration(d)))
            .collect(),
        FactType::Date => vec![value(Value::Date(REFERENCE_MONDAY))],
        FactType::Instant => {
            let absolute = !hints.windows.is_empty();
            let relative = !hints.deltas.is_empty();
            if absolute && relative {
                exact = false;
            }
            if absolute {
                window_instants(&hints.windows)
                    .into_iter()
                    .map(|t| value(Value::Instant(t)))
                    .collect()
            } else if fact == NOW {
                vec![value(Value::Instant(reference_now))]
            } else {
                duration_candidates(&hints.deltas)
                    .into_iter()
                    .map(Candidate::BeforeNow)
                    .collect()
            }
        }
    };
    if def.optional {
        out.push(Candidate::Absent);
    }
    (out, exact)
}

/// `c-1`, `c`, `c+1` for every constant; `0` when there are none.
fn int_candidates(constants: &BTreeSet<i64>) -> BTreeSet<i64> {
    if constants.is_empty() {
        return BTreeSet::from([0]);
    }
    constants
        .iter()
        .flat_map(|c| [c.checked_sub(1), Some(*c), c.checked_add(1)])
        .flatten()
        .collect()
}

/// Every constant, the midpoints between neighbours, and one step beyond each end
/// (half the smallest below it, twice the largest above it); one hour when there are none.
fn duration_candidates(constants: &BTreeSet<SignedDuration>) -> Vec<SignedDuration> {
    let sorted: Vec<SignedDuration> = constants.iter().copied().collect();
    let (Some(first), Some(last)) = (sorted.first(), sorted.last()) else {
        return vec![SignedDuration::from_hours(1)];
    };
    let step = |d: SignedDuration| d.abs().max(SignedDuration::from_secs(2));
    let mut out = vec![first.saturating_sub(step(*first) / 2)];
    for pair in sorted.windows(2) {
        if let [a, b] = pair {
            out.push(*a);
            out.push(*a + (*b - *a) / 2);
        }
    }
    out.push(*last);
    out.push(last.saturating_add(step(*last)));
    out.dedup();
    out
}

/// `count` strings equal to none of `taken`.
fn fresh_strings(taken: &BTreeSet<String>, count: usize) -> Vec<String> {
    (1..)
        .map(|i| format!("other-{i}"))
        .filter(|s| !taken.contains(s))
        .take(count)
        .collect()
}

/// Every window range's opening and closing instant in the reference week, one minute
/// either side, sorted.
fn window_instants(windows: &[Window]) -> Vec<Timestamp> {
    let mut out = BTreeSet::new();
    for window in windows {
        for range in &window.ranges {
            let day = REFERENCE_MONDAY
                .checked_add(SignedDuration::from_hours(24 * range.day.index() as i64))
                .unwrap_or(REFERENCE_MONDAY);
            let start = i64::from(range.start.0);
            let mut end = i64::from(range.end.0);
            if end <= start {
                end += 24 * 60;
            }
            for minute in [start, end] {
                for shift in [-1, 0, 1] {
                    out.insert(local_instant(&window.timezone, day, minute + shift));
                }
            }
        }
    }
    out.into_iter().collect()
}

/// The instant of local time `minutes` past midnight starting `day`, in `zone`.
fn local_instant(zone: &TimeZone, day: Date, minutes: i64) -> Timestamp {
    let midnight: DateTime = day.at(0, 0, 0, 0);
    midnight
        .checked_add(SignedDuration::from_mins(minutes))
        .ok()
        .and_then(|dt| zone.to_ambiguous_timestamp(dt).compatible().ok())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// `Mon`, `Tue`, ...
fn weekday(date: Date) -> &'static str {
    ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        .get(date.weekday().to_monday_zero_offset() as usize)
        .copied()
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::language::ast::{CmpOp, TimeOfDay, Weekday};
    use crate::language::schema::FACT_COUNT;
    use crate::policy::PhaseRules;
    use crate::policy::window::WeeklyRange;
    use crate::policy::{CompiledAction, WindowId};

    /// Merging instants the windows treat alike changes no "first combination where"
    /// answer: for every condition, the first combination where it holds and where it
    /// does not are described alike with and without merging.
    #[test]
    fn merged_instants_leave_every_first_combination_as_it_was() {
        let source = "policy \"p\"\ntimezone \"Europe/London\"\n\
            window a { mon..fri 07:00..20:00 sat 08:00..14:00 }\n\
            window b timezone \"America/Chicago\" { mon..wed 10:00..02:00 }\n\
            window c { sun 00:00..24:00 }\n\
            on trigger {\n  rule r1 when now in a and schedule.state == draft then publish\n\
              rule r2 when now not in b or since(last_publish.at) < 15m then publish\n\
              rule r3 when now in c and not (now in a) then skip \"s\"\n  otherwise publish\n}\n\
            on response {\n  otherwise done\n}\n";
        let p = match crate::compile(source) {
            Ok(checked) => checked.policy,
            Err(e) => panic!("{e}"),
        };
        let conditions: Vec<&Cond> = p.trigger.rules.iter().map(|r| &r.condition).collect();
        let pairs: Vec<(&Policy, &Cond)> = conditions.iter().map(|c| (&p, *c)).collect();
        let merged = FactSpace::build(&pairs, p.timezone.clone(), &[&p], true);
        let whole = FactSpace::build(&pairs, p.timezone.clone(), &[&p], false);
        assert!(
            merged.size() < whole.size(),
            "{:?} {:?}",
            merged.size(),
            whole.size()
        );
        let every: BTreeSet<FactId> = conditions.iter().flat_map(|c| mentioned(c)).collect();
        let first = |space: &FactSpace, cond: &Cond, wanted: bool| {
            space
                .assignments()
                .find(|f| crate::evaluation::evaluator::holds(&p, cond, f) == wanted)
                .map(|f| space.describe(&f, &every))
        };
        for cond in &conditions {
            for wanted in [true, false] {
                assert_eq!(first(&merged, cond, wanted), first(&whole, cond, wanted));
            }
        }
    }

    fn fact(name: &str) -> FactId {
        FactId::lookup(name).unwrap_or(FactId(u8::try_from(FACT_COUNT).unwrap_or(0)))
    }

    fn cond(kind: CondKind) -> Cond {
        Cond {
            kind,
            span: crate::language::span::Span::default(),
        }
    }

    fn policy(windows: Vec<Window>) -> Policy {
        let phase = || PhaseRules {
            rules: Vec::new(),
            otherwise: CompiledAction::Done,
            otherwise_span: crate::language::span::Span::default(),
        };
        Policy {
            name: "test".into(),
            version: String::new(),
            timezone: TimeZone::UTC,
            timezone_name: "UTC".into(),
            sources: vec!["servicenow".into(), "manual".into()],
            windows,
            backoffs: Vec::new(),
            trigger: phase(),
            response: phase(),
        }
    }

    #[test]
    fn integers_take_each_constant_and_its_neighbours() {
        let c = cond(CondKind::InRange {
            term: Term::Fact(fact("response.status")),
            negated: false,
            low: 200,
            high: 299,
        });
        let p = policy(Vec::new());
        let space = FactSpace::for_conditions(&p, &[&c]);
        let statuses: Vec<i64> = space
            .assignments()
            .filter_map(|f| match f.get(fact("response.status")) {
                Some(Value::Int(i)) => Some(*i),
                _ => None,
            })
            .collect();
        assert_eq!(statuses, vec![199, 200, 201, 298, 299, 300]);
        assert!(space.is_exact());
    }

    #[test]
    fn the_product_covers_every_combination_and_optional_facts_may_be_absent() {
        let state = cond(CondKind::InSet {
            term: Term::Fact(fact("schedule.state")),
            negated: false,
            values: vec![Value::Enum(0)].into(),
        });
        let since = cond(CondKind::Compare {
            left: Term::Since(fact("last_publish.at")),
            op: CmpOp::Lt,
            right: Term::Const(Value::Duration(SignedDuration::from_mins(15))),
        });
        let p = policy(Vec::new());
        let space = FactSpace::for_conditions(&p, &[&state, &since]);
        // 4 states x (3 distances + absent) x 1 reference `now`.
        assert_eq!(space.size(), Some(16));
        assert_eq!(space.assignments().count(), 16);
        let mut cursor = Cursor::new(&space);
        let all: Vec<Facts> = space.assignments().collect();
        for (number, facts) in all.iter().enumerate().rev() {
            assert_eq!(cursor.at(number), facts, "{number}");
        }
        let absent = space
            .assignments()
            .filter(|f| f.get(fact("last_publish.at")).is_none())
            .count();
        assert_eq!(absent, 4);
        let last = space.assignments().nth(1).unwrap_or_default();
        let named = BTreeSet::from([fact("schedule.state"), fact("last_publish.at")]);
        assert_eq!(
            space.describe(&last, &named),
            "schedule.state = draft and last_publish.at = 15m before now"
        );
    }

    #[test]
    fn window_boundaries_are_sampled_a_minute_either_side_in_the_windows_zone() {
        let zone = TimeZone::get("Europe/London").unwrap_or(TimeZone::UTC);
        let window = Window {
            name: "core".into(),
            timezone: zone,
            ranges: vec![WeeklyRange {
                day: Weekday::Mon,
                start: TimeOfDay(9 * 60),
                end: TimeOfDay(17 * 60),
            }],
        };
        let p = policy(vec![window]);
        let c = cond(CondKind::InWindow {
            term: Term::Fact(NOW),
            negated: false,
            window: WindowId(0),
        });
        // As sampled, before instants the window treats alike are merged.
        let space = FactSpace::build(&[(&p, &c)], p.timezone.clone(), &[&p], false);
        let named = BTreeSet::from([NOW]);
        let described: Vec<String> = space
            .assignments()
            .map(|f| space.describe(&f, &named))
            .collect();
        assert_eq!(
            described,
            [
                "now = Mon 08:59 in UTC",
                "now = Mon 09:00 in UTC",
                "now = Mon 09:01 in UTC",
                "now = Mon 16:59 in UTC",
                "now = Mon 17:00 in UTC",
                "now = Mon 17:01 in UTC",
            ]
        );
    }

    #[test]
    fn two_instants_apart_from_now_make_the_space_inexact() {
        let c = cond(CondKind::Compare {
            left: Term::Fact(fact("schedule.modified_at")),
            op: CmpOp::Gt,
            right: Term::Fact(fact("last_publish.at")),
        });
        let p = policy(Vec::new());
        assert!(!FactSpace::for_conditions(&p, &[&c]).is_exact());
    }

    #[test]
    fn durations_take_constants_midpoints_and_one_beyond_each_end() {
        let set = BTreeSet::from([SignedDuration::from_secs(5), SignedDuration::from_mins(2)]);
        let millis: Vec<i128> = duration_candidates(&set)
            .iter()
            .map(|d| d.as_millis())
            .collect();
        assert_eq!(millis, vec![2_500, 5_000, 62_500, 120_000, 240_000]);
    }
}
