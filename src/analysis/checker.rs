//! The checker: turns a parsed rules file into a validated [`Policy`], or into every
//! diagnostic it finds (errors and warnings, sorted by position).
//!
//! Decisions worth knowing (the README repeats them):
//! - `timezone` may be left out only when no window relies on it; then the policy's zone is UTC.
//! - A `backoff` block needs exactly one delay line (`exponential` or `constant`). `factor`
//!   defaults to 2 (and must be 1..=10), `max` to the larger of the initial delay and 1 hour,
//!   `jitter` to `full` (it spreads the retries of many schedules apart), `attempts` to 5
//!   (and must be 1..=100).
//! - Actions per phase: `publish` and `skip` belong to `on trigger`; `done`, `recheck` and
//!   `backoff retry_after` to `on response`; `backoff`, `defer` and `fail` to both.
//! - A window line whose range is empty (`09:00..09:00`) or opens at `24:00` is an error;
//!   an end at or before the start crosses midnight.
//! - Windows and backoff profiles that no rule uses are warned about (W203); sources are not,
//!   since they also tell the relay which webhooks to accept.
//! - `defer until FACT + d` on a fact that may be absent (`last_publish.at`) warns (W204)
//!   when the rule can decide without it: the deferral would fail at run time.
//! - A trigger phase that can skip while `schedule.state == unknown` warns (W205): a failed
//!   read would drop the change.

mod action;
mod condition;
mod declaration;
mod deferral;
mod timezone;
mod unknown_state;

use crate::analysis::shadowing;
use crate::language::ast::{self, Item, PhaseKind};
use crate::language::diagnostic::{Code, Diagnostic, Severity};
use crate::language::span::{Span, Spanned};
use crate::language::suggest;
use crate::policy::backoff::BackoffProfile;
use crate::policy::window::Window;
use crate::policy::{BackoffId, CompiledRule, PhaseRules, Policy, WindowId};
use jiff::tz::TimeZone;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};

/// A policy that checked, with the warnings found on the way.
#[derive(Clone, Debug)]
pub struct Checked {
    /// The validated policy.
    pub policy: Policy,
    /// Warnings (never errors), sorted by position.
    pub warnings: Vec<Diagnostic>,
    /// Steps the shadowing and deferral analyses took: bounded, whatever the file (see
    /// [`shadowing::STEP_BUDGET`]); for tests and benchmarks. A rule whose test would pass
    /// the budget is not tested at all, so a file stopped (W206) at its first rule took 0.
    pub analysis_steps: u64,
}

/// Check a parsed rules file. On any error, every error and warning found is returned,
/// sorted by position; otherwise the policy and its warnings.
pub fn check(file: &ast::File, source: &str) -> Result<Checked, Vec<Diagnostic>> {
    let mut checker = Checker::new(source);
    let declared = checker.declarations(file);
    let zone = checker.policy_zone(declared.timezone);
    let windows: Vec<Window> = declared
        .windows
        .iter()
        .map(|w| checker.window(w, &zone))
        .collect();
    let backoffs: Vec<BackoffProfile> = declared
        .backoffs
        .iter()
        .map(|b| checker.backoff(b))
        .collect();
    checker.window_ids = names(declared.windows.iter().map(|w| &w.name));
    checker.backoff_ids = names(declared.backoffs.iter().map(|b| &b.name));
    checker.sources = declared.sources.iter().map(|s| s.node.clone()).collect();
    let trigger = declared.trigger.map(|p| checker.phase(p));
    let response = declared.response.map(|p| checker.phase(p));
    checker.unused(&declared);
    let has_errors = checker
        .diagnostics
        .iter()
        .any(|d| d.severity() == Severity::Error);
    let policy = match (declared.policy, zone, trigger, response) {
        (
            Some(name),
            PolicyZone::Valid(tz, tz_name) | PolicyZone::Utc(tz, tz_name),
            Some(Some(trigger)),
            Some(Some(response)),
        ) if !has_errors => Some(Policy {
            name: name.node.clone(),
            version: version_of(source),
            timezone: tz,
            timezone_name: tz_name,
            sources: checker.sources.clone(),
            windows,
            backoffs,
            trigger,
            response,
        }),
        _ => None,
    };
    let mut diagnostics = checker.diagnostics;
    let mut analysis_steps = 0;
    if let Some(policy) = &policy {
        let (shadowing, known, steps, trigger) = shadowing_warnings(policy, file);
        diagnostics.extend(shadowing);
        let (deferral, steps_too) = deferral::deferral_warnings(policy, file, &known);
        diagnostics.extend(deferral);
        diagnostics.extend(unknown_state::unknown_state_warnings(
            policy,
            file,
            trigger.as_ref(),
        ));
        analysis_steps = steps + steps_too;
    }
    diagnostics.sort_by(|a, b| {
        (a.span.start, a.span.end, a.code.as_str()).cmp(&(
            b.span.start,
            b.span.end,
            b.code.as_str(),
        ))
    });
    match policy {
        Some(policy) => Ok(Checked {
            policy,
            warnings: diagnostics,
            analysis_steps,
        }),
        None => Err(diagnostics),
    }
}

/// Hex SHA-256 of the source text: the policy version audit entries name.
pub fn version_of(source: &str) -> String {
    Sha256::digest(source.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The first declaration of each kind, duplicates already reported.
struct Declared<'f> {
    policy: Option<&'f Spanned<String>>,
    timezone: Option<&'f Spanned<String>>,
    sources: Vec<&'f ast::Ident>,
    windows: Vec<&'f ast::Window>,
    backoffs: Vec<&'f ast::Backoff>,
    trigger: Option<&'f ast::Phase>,
    response: Option<&'f ast::Phase>,
}

/// What the policy-level `timezone` came to.
enum PolicyZone {
    /// Declared and known: the zone and its name as written.
    Valid(TimeZone, String),
    /// Declared but not a zone (already reported).
    Invalid,
    /// Not declared: UTC, unless a window needs a zone.
    Utc(TimeZone, String),
}

/// The checker's working state: what is declared, and the diagnostics so far.
struct Checker<'s> {
    source: &'s str,
    diagnostics: Vec<Diagnostic>,
    window_ids: HashMap<String, WindowId>,
    backoff_ids: HashMap<String, BackoffId>,
    sources: Vec<String>,
    used_windows: HashSet<usize>,
    used_backoffs: HashSet<usize>,
}

/// A name-to-index map over declarations (first one wins; duplicates are reported elsewhere).
fn names<'f, T: From<usize>>(idents: impl Iterator<Item = &'f ast::Ident>) -> HashMap<String, T> {
    let mut map = HashMap::new();
    for (i, ident) in idents.enumerate() {
        map.entry(ident.node.clone()).or_insert_with(|| T::from(i));
    }
    map
}

impl From<usize> for WindowId {
    fn from(i: usize) -> Self {
        WindowId(i)
    }
}

impl From<usize> for BackoffId {
    fn from(i: usize) -> Self {
        BackoffId(i)
    }
}

impl<'s> Checker<'s> {
    fn new(source: &'s str) -> Self {
        Checker {
            source,
            diagnostics: Vec::new(),
            window_ids: HashMap::new(),
            backoff_ids: HashMap::new(),
            sources: Vec::new(),
            used_windows: HashSet::new(),
            used_backoffs: HashSet::new(),
        }
    }

    /// Record a diagnostic.
    fn report(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// The source text under `span`.
    fn text(&self, span: Span) -> &'s str {
        span.text(self.source)
    }

    /// Sort the items into declarations, reporting duplicates and missing required ones.
    fn declarations<'f>(&mut self, file: &'f ast::File) -> Declared<'f> {
        let mut declared = Declared {
            policy: None,
            timezone: None,
            sources: Vec::new(),
            windows: Vec::new(),
            backoffs: Vec::new(),
            trigger: None,
            response: None,
        };
        let mut sources_span: Option<Span> = None;
        // By name, where each was first declared: one look-up per declaration, so a file
        // of 100,000 windows is not checked in quadratic time.
        let mut window_names: HashMap<&str, Span> = HashMap::new();
        let mut backoff_names: HashMap<&str, Span> = HashMap::new();
        for item in &file.items {
            match item {
                Item::Policy(name) => match declared.policy {
                    Some(first) => self.duplicate("`policy`", name.span, first.span),
                    None => declared.policy = Some(name),
                },
                Item::Timezone(tz) => match declared.timezone {
                    Some(first) => self.duplicate("`timezone`", tz.span, first.span),
                    None => declared.timezone = Some(tz),
                },
                Item::Sources(list) => {
                    let span = list_span(list);
                    match sources_span {
                        Some(first) => self.duplicate("`sources`", span, first),
                        None => {
                            sources_span = Some(span);
                            self.sources_list(list, &mut declared.sources);
                        }
                    }
                }
                Item::Window(w) => match window_names.get(w.name.node.as_str()) {
                    Some(&first) => {
                        self.duplicate(&format!("window `{}`", w.name.node), w.name.span, first)
                    }
                    None => {
                        window_names.insert(&w.name.node, w.name.span);
                        declared.windows.push(w);
                    }
                },
                Item::Backoff(b) => match backoff_names.get(b.name.node.as_str()) {
                    Some(&first) => {
                        self.duplicate(&format!("backoff `{}`", b.name.node), b.name.span, first)
                    }
                    None => {
                        backoff_names.insert(&b.name.node, b.name.span);
                        declared.backoffs.push(b);
                    }
                },
                Item::Phase(p) => {
                    let slot = match p.kind.node {
                        PhaseKind::Trigger => &mut declared.trigger,
                        PhaseKind::Response => &mut declared.response,
                    };
                    match slot {
                        Some(first) => {
                            let what = format!("`on {}`", p.kind.node.keyword());
                            let first_span = first.kind.span;
                            self.duplicate(&what, p.kind.span, first_span);
                        }
                        None => *slot = Some(p),
                    }
                }
            }
        }
        self.missing(file, &declared);
        declared
    }

    /// The declared sources, each name once.
    fn sources_list<'f>(&mut self, list: &'f [ast::Ident], into: &mut Vec<&'f ast::Ident>) {
        for source in list {
            match into.iter().find(|s| s.node == source.node) {
                Some(first) => self.duplicate(
                    &format!("source `{}`", source.node),
                    source.span,
                    first.span,
                ),
                None => into.push(source),
            }
        }
    }

    /// E110 for a second declaration of `what`.
    fn duplicate(&mut self, what: &str, span: Span, first: Span) {
        self.report(
            Diagnostic::new(
                Code::DuplicateDeclaration,
                span,
                format!("{what} is declared twice"),
            )
            .with_help("keep one declaration and delete the other")
            .with_note(first, "first declared here"),
        );
    }

    /// E111 for `policy`, `on trigger` and `on response` when absent.
    fn missing(&mut self, file: &ast::File, declared: &Declared<'_>) {
        let end = file.items.iter().map(item_span).max_by_key(|s| s.end);
        let at_end = end.map_or(Span::new(0, 0), |s| Span::new(s.end, s.end));
        if declared.policy.is_none() {
            self.report(
                Diagnostic::new(
                    Code::MissingDeclaration,
                    Span::new(0, 0),
                    "the file does not name its policy",
                )
                .with_help("start the file with a name for audit entries, e.g. `policy \"servicenow-autopublish\"`"),
            );
        }
        if declared.trigger.is_none() {
            self.report(
                Diagnostic::new(
                    Code::MissingDeclaration,
                    at_end,
                    "the file has no `on trigger` block, so no trigger could ever be decided",
                )
                .with_help("add `on trigger { ... otherwise skip \"no rule matched\" }`"),
            );
        }
        if declared.response.is_none() {
            self.report(
                Diagnostic::new(
                    Code::MissingDeclaration,
                    at_end,
                    "the file has no `on response` block, so no API answer could ever be decided",
                )
                .with_help("add `on response { ... otherwise fail \"unexpected response\" }`"),
            );
        }
    }

    /// The policy's zone, reporting an invalid name.
    fn policy_zone(&mut self, timezone: Option<&Spanned<String>>) -> PolicyZone {
        match timezone {
            None => PolicyZone::Utc(TimeZone::UTC, "UTC".to_string()),
            Some(name) => match self.zone(name) {
                Some(tz) => PolicyZone::Valid(tz, name.node.clone()),
                None => PolicyZone::Invalid,
            },
        }
    }

    /// Check one phase: rule names, conditions, actions, the `otherwise`.
    fn phase(&mut self, phase: &ast::Phase) -> Option<PhaseRules> {
        let kind = phase.kind.node;
        let mut rules = Vec::new();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        let mut complete = true;
        for rule in &phase.rules {
            if let Some(first) = seen.get(rule.name.node.as_str()) {
                self.report(
                    Diagnostic::new(
                        Code::DuplicateRule,
                        rule.name.span,
                        format!(
                            "two rules in `on {}` are named `{}`",
                            kind.keyword(),
                            rule.name.node
                        ),
                    )
                    .with_help("give each rule its own name: decisions and the audit log name the rule that made them")
                    .with_note(*first, "the first one is here"),
                );
            } else {
                seen.insert(&rule.name.node, rule.name.span);
            }
            let condition = self.condition(&rule.condition, kind);
            let action = self.action(&rule.action, kind);
            match (condition, action) {
                (Some(condition), Some(action)) => rules.push(CompiledRule {
                    name: rule.name.node.clone(),
                    span: rule.span,
                    condition,
                    action,
                }),
                _ => complete = false,
            }
        }
        let otherwise = match &phase.otherwise {
            Some(action) => self.action(action, kind).map(|a| (a, action.span)),
            None => {
                let close = Span::new(phase.span.end.saturating_sub(1), phase.span.end);
                let example = match kind {
                    PhaseKind::Trigger => "otherwise skip \"no rule matched\"",
                    PhaseKind::Response => "otherwise fail \"unexpected response\"",
                };
                self.report(
                    Diagnostic::new(
                        Code::MissingOtherwise,
                        close,
                        format!(
                            "`on {}` has no `otherwise`, so some facts would match no rule",
                            kind.keyword()
                        ),
                    )
                    .with_help(format!("end the block with `{example}`")),
                );
                None
            }
        };
        let (otherwise, otherwise_span) = otherwise?;
        complete.then_some(PhaseRules {
            rules,
            otherwise,
            otherwise_span,
        })
    }

    /// E104 or E105: `name` is not declared; "did you mean" among the `known` names, else
    /// an `example` declaration.
    fn undefined(
        &mut self,
        code: Code,
        kind: &str,
        name: &Spanned<String>,
        known: &[String],
        example: &str,
    ) {
        let mut known: Vec<&str> = known.iter().map(String::as_str).collect();
        known.sort_unstable();
        let help = suggest::did_you_mean(&name.node, known)
            .unwrap_or_else(|| format!("declare it: `{example}`"));
        self.report(
            Diagnostic::new(
                code,
                name.span,
                format!("there is no {kind} named `{}`", name.node),
            )
            .with_help(help),
        );
    }

    /// W203 for windows and backoff profiles no rule uses.
    fn unused(&mut self, declared: &Declared<'_>) {
        for (i, w) in declared.windows.iter().enumerate() {
            if !self.used_windows.contains(&i) {
                self.report(
                    Diagnostic::new(
                        Code::Unused,
                        w.name.span,
                        format!("window `{}` is declared but no rule uses it", w.name.node),
                    )
                    .with_help("use it (`now in NAME`, `defer until NAME`) or delete it"),
                );
            }
        }
        for (i, b) in declared.backoffs.iter().enumerate() {
            if !self.used_backoffs.contains(&i) {
                self.report(
                    Diagnostic::new(
                        Code::Unused,
                        b.name.span,
                        format!("backoff `{}` is declared but no rule uses it", b.name.node),
                    )
                    .with_help("use it (`then backoff NAME`) or delete it"),
                );
            }
        }
    }
}

/// The span covering a `sources` list.
fn list_span(list: &[ast::Ident]) -> Span {
    match (list.first(), list.last()) {
        (Some(first), Some(last)) => first.span.join(last.span),
        _ => Span::default(),
    }
}

/// Where a top-level item stands.
fn item_span(item: &Item) -> Span {
    match item {
        Item::Policy(s) | Item::Timezone(s) => s.span,
        Item::Sources(list) => list_span(list),
        Item::Window(w) => w.span,
        Item::Backoff(b) => b.span,
        Item::Phase(p) => p.span,
    }
}

/// W201 for every rule that can never decide: an earlier rule always decides first, or
/// its condition never holds; W206 where the analysis stopped short. Also what the same
/// pass found for W204, per phase, the steps taken, and which rule decides where in the
/// trigger phase when it was analysed whole (for W205).
fn shadowing_warnings(
    policy: &Policy,
    file: &ast::File,
) -> (
    Vec<Diagnostic>,
    KnownDeferrals,
    u64,
    Option<shadowing::Decided>,
) {
    let mut out = Vec::new();
    let mut known = Vec::new();
    let mut steps = 0;
    let mut trigger = None;
    for item in &file.items {
        let Item::Phase(phase) = item else { continue };
        let kind = phase.kind.node;
        let deferrals = deferral::deferrals(policy.phase(kind));
        let mut analysis = shadowing::shadowed_rules(policy, kind, &deferrals);
        if kind == PhaseKind::Trigger {
            trigger = analysis.decided.take();
        }
        steps += analysis.steps;
        known.push((kind, analysis.deferrals.clone()));
        for finding in &analysis.shadowed {
            if let Some(later) = phase.rules.get(finding.rule) {
                out.push(shadowed_warning(phase, later, finding));
            }
        }
        if let Some(cut) = analysis.cut
            && let Some(rule) = phase.rules.get(cut.rule)
        {
            out.push(cut_short(rule, cut.reason));
        }
    }
    (out, known, steps, trigger)
}

/// Per phase, the W204 answers the shadowing pass found (see [`shadowing::Deferral`]).
type KnownDeferrals = Vec<(PhaseKind, Vec<(shadowing::Deferral, Option<String>)>)>;

/// W201 for one rule that never decides.
fn shadowed_warning(
    phase: &ast::Phase,
    later: &ast::Rule,
    finding: &shadowing::Shadowed,
) -> Diagnostic {
    let (message, help) = if finding.deciders.is_empty() {
        (
            format!(
                "rule `{}` can never decide: no facts make its condition hold",
                later.name.node
            ),
            "check the condition for a contradiction, or delete the rule",
        )
    } else {
        (
            format!(
                "rule `{}` can never decide: whenever its condition holds, an earlier rule has already decided",
                later.name.node
            ),
            "move it above the rule that decides first, narrow that rule, or delete this one",
        )
    };
    let mut diagnostic =
        Diagnostic::new(Code::ShadowedRule, later.name.span, message).with_help(help);
    for decider in &finding.deciders {
        if let Some(earlier) = phase.rules.get(decider.rule) {
            let note = if decider.covers {
                format!(
                    "rule `{}` matches whenever this one does, e.g. with {}",
                    earlier.name.node, decider.witness
                )
            } else {
                format!(
                    "with {}, rule `{}` decides first",
                    decider.witness, earlier.name.node
                )
            };
            diagnostic = diagnostic.with_note(earlier.name.span, note);
        }
    }
    diagnostic
}

/// W206 at the first rule an analysis did not reach, saying what was not checked and why.
fn cut_short(rule: &ast::Rule, reason: shadowing::CutReason) -> Diagnostic {
    let (checks, why) = match reason {
        shadowing::CutReason::Combinations => (
            "shadowing (W201)",
            format!(
                "with it, the facts the rules tell apart come to more than {} combinations",
                thousands(shadowing::SHADOWING_BUDGET as u64)
            ),
        ),
        shadowing::CutReason::Steps => ("shadowing (W201)", steps_why()),
        shadowing::CutReason::DeferralSteps => ("deferrals that may fail (W204)", steps_why()),
    };
    Diagnostic::new(
        Code::AnalysisCutShort,
        rule.name.span,
        format!(
            "rules from `{}` on are not checked for {checks}: {why}",
            rule.name.node
        ),
    )
    .with_help("this is a limit of the checker, not a fault in the file: a warning may be missing for those rules; a shorter phase is analysed whole")
}

/// Why W206 stops at a rule for its steps: testing it would pass the budget, which is
/// why none of its steps are taken (so a file stopped at its first rule took 0).
fn steps_why() -> String {
    format!(
        "checking them would take more than the {} steps the analysis is allowed, so that `check` stays fast",
        thousands(shadowing::STEP_BUDGET)
    )
}

/// `32,768`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::language::ast::{Jitter, TimeOfDay, Weekday};
    use crate::language::schema::FactId;
    use crate::policy::window::WeeklyRange;
    use crate::policy::{CompiledAction, TermAction};
    use jiff::SignedDuration;

    const RESPONSE: &str = "on response {\n  otherwise done\n}\n";

    /// Two chains of 445 comparisons make about 200,000 combinations, and testing the
    /// first on each would take 89 million steps: no step is taken, and W206 says the
    /// budget would be passed, not that it was spent.
    #[test]
    fn a_rule_too_costly_to_test_takes_no_steps_and_w206_says_why() {
        let chain = |term: &str, join: &str| {
            (0..445)
                .map(|i| format!("{term} {i}"))
                .collect::<Vec<_>>()
                .join(join)
        };
        let source = format!(
            "policy \"p\"\non trigger {{\n  rule any_of when {} then skip \"any\"\n  \
             rule all_of when {} then skip \"all\"\n  otherwise publish\n}}\n{RESPONSE}",
            chain("schedule.version ==", " or "),
            chain("attempt !=", " and ")
        );
        let checked = compile(&source).expect("checks");
        assert_eq!(checked.analysis_steps, 0);
        let cut: Vec<String> = checked
            .warnings
            .iter()
            .filter(|d| d.code == Code::AnalysisCutShort)
            .map(|d| d.message.clone())
            .collect();
        insta::assert_snapshot!(cut.join("\n"));
    }

    fn compile(source: &str) -> Result<Checked, Vec<Diagnostic>> {
        crate::compile(source).map_err(crate::CompileError::into_diagnostics)
    }

    fn codes(source: &str) -> Vec<&'static str> {
        match compile(source) {
            Ok(checked) => checked.warnings.iter().map(|d| d.code.as_str()).collect(),
            Err(diagnostics) => diagnostics.iter().map(|d| d.code.as_str()).collect(),
        }
    }

    fn policy(source: &str) -> Policy {
        match compile(source) {
            Ok(checked) => checked.policy,
            Err(d) => panic!("{d:?}"),
        }
    }

    #[test]
    fn the_version_is_the_sha256_of_the_text() {
        let source = format!("policy \"p\"\non trigger {{\n  otherwise skip \"x\"\n}}\n{RESPONSE}");
        let p = policy(&source);
        assert_eq!(p.version.len(), 64);
        assert_eq!(p.version, version_of(&source));
        assert_ne!(p.version, policy(&format!("{source}\n")).version);
        assert_eq!(
            version_of(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn backoff_defaults_fill_what_the_profile_leaves_out() {
        let source = format!(
            "policy \"p\"\nbackoff quick {{\n  exponential 5s\n}}\nbackoff flat {{\n  constant 30s jitter equal attempts 3\n}}\n\
             on trigger {{\n  rule a when attempt > 1 then backoff quick\n  otherwise backoff flat\n}}\n{RESPONSE}"
        );
        let p = policy(&source);
        let quick = &p.backoffs[0];
        assert_eq!(quick.initial, SignedDuration::from_secs(5));
        assert_eq!(quick.factor, 2.0);
        assert_eq!(quick.max, SignedDuration::from_hours(1));
        assert_eq!(quick.jitter, Jitter::Full);
        assert_eq!(quick.attempts, 5);
        let flat = &p.backoffs[1];
        assert_eq!(
            (flat.factor, flat.max),
            (1.0, SignedDuration::from_secs(30))
        );
        assert_eq!((flat.jitter, flat.attempts), (Jitter::Equal, 3));
    }

    #[test]
    fn window_lines_become_one_range_per_day_in_the_policy_zone() {
        let source = format!(
            "policy \"p\"\ntimezone \"Europe/London\"\nwindow w {{\n  fri..mon 22:00..02:00\n}}\n\
             on trigger {{\n  rule a when now in w then defer until w\n  otherwise publish\n}}\n{RESPONSE}"
        );
        let p = policy(&source);
        let days: Vec<Weekday> = p.windows[0].ranges.iter().map(|r| r.day).collect();
        assert_eq!(
            days,
            [Weekday::Fri, Weekday::Sat, Weekday::Sun, Weekday::Mon]
        );
        assert_eq!(
            p.windows[0].ranges[0],
            WeeklyRange {
                day: Weekday::Fri,
                start: TimeOfDay(22 * 60),
                end: TimeOfDay(2 * 60)
            }
        );
        assert_eq!(p.windows[0].timezone.iana_name(), Some("Europe/London"));
    }

    #[test]
    fn a_window_without_any_zone_is_an_error_but_a_policy_without_windows_runs_in_utc() {
        let windowless =
            format!("policy \"p\"\non trigger {{\n  otherwise publish\n}}\n{RESPONSE}");
        assert_eq!(policy(&windowless).timezone_name, "UTC");
        let zoneless = format!(
            "policy \"p\"\nwindow w {{\n  mon 09:00..17:00\n}}\n\
             on trigger {{\n  rule a when now in w then publish\n  otherwise skip \"x\"\n}}\n{RESPONSE}"
        );
        assert_eq!(codes(&zoneless), ["E111"]);
    }

    #[test]
    fn defer_until_an_instant_keeps_the_fact_and_the_offset() {
        let source = format!(
            "policy \"p\"\non trigger {{\n  rule a when since(last_publish.at) < 15m then defer until last_publish.at + 15m\n  otherwise publish\n}}\n{RESPONSE}"
        );
        let p = policy(&source);
        let last = FactId::lookup("last_publish.at");
        assert_eq!(
            Some(&p.trigger.rules[0].action),
            last.map(|fact| CompiledAction::DeferUntilInstant(TermAction {
                fact,
                offset: SignedDuration::from_mins(15)
            }))
            .as_ref()
        );
    }

    #[test]
    fn several_errors_are_all_reported_in_source_order() {
        let source = "policy \"p\"\non trigger {\n  rule a when schedule.stat == draft then done\n  rule a when attempt > \"2\" then publish\n}\n";
        assert_eq!(
            codes(source),
            ["E101", "E113", "E106", "E103", "E109", "E111"]
        );
    }

    #[test]
    fn enum_values_and_sources_compare_by_value_in_either_order() {
        let source = format!(
            "policy \"p\"\nsources servicenow\non trigger {{\n  rule a when draft == schedule.state and servicenow == trigger.source then publish\n  otherwise publish\n}}\n{RESPONSE}"
        );
        assert!(codes(&source).is_empty());
    }

    #[test]
    fn a_skip_while_the_state_is_unknown_warns_with_a_witness() {
        let with = |rules: &str| format!("policy \"p\"\non trigger {{\n  {rules}\n}}\n{RESPONSE}");
        let drops =
            with("rule a when schedule.state == draft then publish\n  otherwise skip \"x\"");
        assert_eq!(codes(&drops), ["W205"]);
        let named =
            with("rule a when schedule.state != draft then skip \"y\"\n  otherwise publish");
        assert_eq!(codes(&named), ["W205"]);
        let duplicate_only = with(
            "rule d when trigger.duplicate then skip \"dup\"\n  rule a when schedule.state == unknown then publish\n  otherwise skip \"x\"",
        );
        assert!(
            codes(&duplicate_only).is_empty(),
            "a duplicate's skip drops nothing"
        );
    }

    #[test]
    fn deferring_until_an_optional_instant_warns_only_when_the_rule_does_not_guarantee_it() {
        let with = |rule: &str| {
            format!("policy \"p\"\non trigger {{\n  {rule}\n  otherwise publish\n}}\n{RESPONSE}")
        };
        let guarded = [
            "rule a when since(last_publish.at) < 15m then defer until last_publish.at + 15m",
            "rule a when exists(last_publish.at) then defer until last_publish.at + 15m",
            "rule a when attempt > 0 then defer until now + 5m",
        ];
        for rule in guarded {
            assert!(codes(&with(rule)).is_empty(), "{rule}");
        }
        let unguarded = "rule a when attempt > 0 then defer until last_publish.at + 15m";
        assert_eq!(codes(&with(unguarded)), ["W204"]);
        let otherwise = format!(
            "policy \"p\"\non trigger {{\n  rule a when exists(last_publish.at) then publish\n  otherwise defer until last_publish.at + 1h\n}}\n{RESPONSE}"
        );
        assert!(codes(&otherwise).contains(&"W204"));
    }
}
