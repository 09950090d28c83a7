//! The checker: turns a parsed rules file into a validated [`Policy`], or into every
//! diagnostic it finds (errors and warnings, sorted by position).
//!
//! Decisions worth knowing (the README repeats them):
//! - `timezone` may be left out only when no window relies on it; then the policy's zone is UTC.
//! - A `backoff` block needs exactly one delay line (`exponential` or `constant`). `factor`
//!   defaults to 2 (and must be 1..=10), `max` to the larger of the initial delay and 1 hour,
//!   `jitter` to `none`, `attempts` to 5 (and must be 1..=100).
//! - Actions per phase: `publish` and `skip` belong to `on trigger`; `done`, `recheck` and
//!   `backoff retry_after` to `on response`; `backoff`, `defer` and `fail` to both.
//! - A window line whose range is empty (`09:00..09:00`) or opens at `24:00` is an error;
//!   an end at or before the start crosses midnight.
//! - Windows and backoff profiles that no rule uses are warned about (W203); sources are not,
//!   since they also tell the relay which webhooks to accept.

mod action;
mod condition;
mod declaration;

use crate::ast::{self, Item, PhaseKind};
use crate::backoff::BackoffProfile;
use crate::diagnostic::{Code, Diagnostic, Severity};
use crate::policy::{BackoffId, CompiledRule, PhaseRules, Policy, WindowId};
use crate::shadowing;
use crate::span::{Span, Spanned};
use crate::suggest;
use crate::window::Window;
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
    if let Some(policy) = &policy {
        diagnostics.extend(shadowing_warnings(policy, file));
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
                Item::Window(w) => {
                    match declared.windows.iter().find(|d| d.name.node == w.name.node) {
                        Some(first) => self.duplicate(
                            &format!("window `{}`", w.name.node),
                            w.name.span,
                            first.name.span,
                        ),
                        None => declared.windows.push(w),
                    }
                }
                Item::Backoff(b) => {
                    match declared
                        .backoffs
                        .iter()
                        .find(|d| d.name.node == b.name.node)
                    {
                        Some(first) => self.duplicate(
                            &format!("backoff `{}`", b.name.node),
                            b.name.span,
                            first.name.span,
                        ),
                        None => declared.backoffs.push(b),
                    }
                }
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
/// its condition never holds.
fn shadowing_warnings(policy: &Policy, file: &ast::File) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for item in &file.items {
        let Item::Phase(phase) = item else { continue };
        for finding in shadowing::shadowed_rules(policy, phase.kind.node) {
            let Some(later) = phase.rules.get(finding.rule) else {
                continue;
            };
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
            out.push(diagnostic);
        }
    }
    out
}
