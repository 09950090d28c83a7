//! Checking conditions: fact names, operand types, enum values and sources, windows.

use super::Checker;
use crate::language::ast::{CmpOp, Expr, ExprKind, OffsetSign, Operand, OperandKind, PhaseKind};
use crate::language::diagnostic::{Code, Diagnostic};
use crate::language::schema::{FACTS, FactId, FactType};
use crate::language::span::{Span, Spanned};
use crate::language::suggest;
use crate::policy::facts::Value;
use crate::policy::{Cond, CondKind, Term, WindowId};

/// An operand after checking.
enum Typed {
    /// A value of a known type.
    Value(TypedTerm),
    /// A bare word that is not a fact: an enum value or a source, once the other side says which.
    Word(String),
}

/// A term and its type.
struct TypedTerm {
    ty: FactType,
    term: Term,
}

impl Checker<'_> {
    /// Check and compile a condition; `None` once an error is reported.
    pub(super) fn condition(&mut self, expr: &Expr, phase: PhaseKind) -> Option<Cond> {
        let kind = match &expr.node {
            ExprKind::Or(items) => CondKind::Or(self.conditions(items, phase)?.into()),
            ExprKind::And(items) => CondKind::And(self.conditions(items, phase)?.into()),
            ExprKind::Not(inner) => CondKind::Not(Box::new(self.condition(inner, phase)?)),
            ExprKind::Group(inner) => return self.condition(inner, phase),
            ExprKind::Compare { left, op, right } => {
                self.compare(expr.span, left, op, right, phase)?
            }
            ExprKind::InList {
                operand,
                negated,
                items,
            } => {
                let (term, values) = self.in_list(operand, items, phase)?;
                CondKind::InSet {
                    term,
                    negated: *negated,
                    values: values.into(),
                }
            }
            ExprKind::InRange {
                operand,
                negated,
                low,
                high,
            } => {
                let term = self.in_range(operand, low, high, phase)?;
                CondKind::InRange {
                    term,
                    negated: *negated,
                    low: low.node,
                    high: high.node,
                }
            }
            ExprKind::InWindow {
                operand,
                negated,
                window,
            } => {
                let term = self.expect(operand, FactType::Instant, "`in WINDOW`", phase);
                let window = self.window_ref(window);
                CondKind::InWindow {
                    term: term?,
                    negated: *negated,
                    window: window?,
                }
            }
            ExprKind::Exists(path) => {
                CondKind::Exists(self.fact(&path.node.0, path.span, phase)?)
            }
            ExprKind::Truthy(operand) => CondKind::IsTrue(self.truthy(operand, phase)?),
        };
        Some(Cond {
            kind,
            span: expr.span,
        })
    }

    /// Every condition of a list, all checked even when one fails.
    fn conditions(&mut self, items: &[Expr], phase: PhaseKind) -> Option<Vec<Cond>> {
        let checked: Vec<Option<Cond>> = items.iter().map(|e| self.condition(e, phase)).collect();
        checked.into_iter().collect()
    }

    /// A fact by name, usable in `phase`; E101 or E112 otherwise.
    pub(super) fn fact(&mut self, name: &str, span: Span, phase: PhaseKind) -> Option<FactId> {
        let Some(id) = FactId::lookup(name) else {
            self.unknown_fact(name, span);
            return None;
        };
        if !id.def().availability.allows(phase) {
            self.report(
                Diagnostic::new(
                    Code::FactNotInPhase,
                    span,
                    format!(
                        "`{name}` has no value in `on {}`: it is only known once the API has answered a write",
                        phase.keyword()
                    ),
                )
                .with_help("move this rule to `on response`"),
            );
            return None;
        }
        Some(id)
    }

    /// E101 for a name that is not in the schema.
    fn unknown_fact(&mut self, name: &str, span: Span) {
        let help = suggest::did_you_mean(name, FACTS.iter().map(|f| f.name))
            .unwrap_or_else(|| "`publish-guard facts` lists every fact".to_string());
        self.report(
            Diagnostic::new(Code::UnknownFact, span, format!("unknown fact `{name}`"))
                .with_help(help),
        );
    }

    /// Type an operand.
    fn operand(&mut self, operand: &Operand, phase: PhaseKind) -> Option<Typed> {
        let typed = |ty, term| Some(Typed::Value(TypedTerm { ty, term }));
        match &operand.node {
            OperandKind::Fact(path) => {
                let id = self.fact(&path.0, operand.span, phase)?;
                typed(id.def().ty, Term::Fact(id))
            }
            OperandKind::Word(word) => Some(Typed::Word(word.clone())),
            OperandKind::Str(s) => typed(FactType::String, Term::Const(Value::Str(s.clone()))),
            OperandKind::Int(i) => typed(FactType::Int, Term::Const(Value::Int(*i))),
            OperandKind::Bool(b) => typed(FactType::Bool, Term::Const(Value::Bool(*b))),
            OperandKind::Duration(lit) => {
                let d = self.duration(&Spanned::new(*lit, operand.span))?;
                typed(FactType::Duration, Term::Const(Value::Duration(d)))
            }
            OperandKind::Since(path) => {
                let id = self.fact(&path.node.0, path.span, phase)?;
                self.instant_fact(id, path.span, "`since(...)`")?;
                typed(FactType::Duration, Term::Since(id))
            }
            OperandKind::Offset { base, sign, by } => {
                let id = match &base.node {
                    OperandKind::Fact(path) => self.fact(&path.0, base.span, phase)?,
                    OperandKind::Word(word) => {
                        self.unknown_fact(word, base.span);
                        return None;
                    }
                    _ => {
                        self.report(
                            Diagnostic::new(
                                Code::TypeMismatch,
                                base.span,
                                format!(
                                    "only an instant fact can be moved by a duration, not `{}`",
                                    self.text(base.span)
                                ),
                            )
                            .with_help("write a fact and a duration, e.g. `last_publish.at + 15m`"),
                        );
                        return None;
                    }
                };
                self.instant_fact(id, base.span, "`+` and `-`")?;
                let by = self.duration(by)?;
                let by = match sign {
                    OffsetSign::Plus => by,
                    OffsetSign::Minus => -by,
                };
                typed(FactType::Instant, Term::Offset(id, by))
            }
        }
    }

    /// E103 unless `id` is an instant fact.
    fn instant_fact(&mut self, id: FactId, span: Span, what: &str) -> Option<()> {
        let ty = id.def().ty;
        if ty == FactType::Instant {
            return Some(());
        }
        self.report(
            Diagnostic::new(
                Code::TypeMismatch,
                span,
                format!(
                    "{what} needs an instant, but `{}` is {}",
                    id.name(),
                    article(ty)
                ),
            )
            .with_help("use an instant fact such as `last_publish.at` or `schedule.modified_at`"),
        );
        None
    }

    /// An operand that must be a value of type `ty`, for `what`.
    pub(super) fn expect(
        &mut self,
        operand: &Operand,
        ty: FactType,
        what: &str,
        phase: PhaseKind,
    ) -> Option<Term> {
        match self.operand(operand, phase)? {
            Typed::Word(word) => {
                self.unknown_fact(&word, operand.span);
                None
            }
            Typed::Value(v) if v.ty == ty => Some(v.term),
            Typed::Value(v) => {
                self.report(Diagnostic::new(
                    Code::TypeMismatch,
                    operand.span,
                    format!(
                        "{what} needs {}, but `{}` is {}",
                        article(ty),
                        self.text(operand.span),
                        article(v.ty)
                    ),
                ));
                None
            }
        }
    }

    /// A bare word read as a value of `expected`'s type: an enum value or a source.
    fn word_as(
        &mut self,
        word: &str,
        span: Span,
        expected: FactType,
        other: &Operand,
    ) -> Option<Value> {
        let other_text = self.text(other.span);
        match expected {
            FactType::Enum(values) => {
                if let Some(i) = values.iter().position(|v| *v == word) {
                    return u8::try_from(i).ok().map(Value::Enum);
                }
                let help = suggest::did_you_mean(word, values.iter().copied())
                    .unwrap_or_else(|| format!("`{other_text}` is one of: {}", values.join(", ")));
                self.report(
                    Diagnostic::new(
                        Code::UnknownEnumValue,
                        span,
                        format!("`{word}` is not a value of `{other_text}`"),
                    )
                    .with_help(help),
                );
                None
            }
            FactType::Source => {
                if self.sources.iter().any(|s| s == word) {
                    return Some(Value::Str(word.to_string()));
                }
                let help =
                    match suggest::did_you_mean(word, self.sources.iter().map(String::as_str)) {
                        Some(help) => help,
                        None if self.sources.is_empty() => {
                            format!("declare the sources near the top: `sources {word}`")
                        }
                        None => format!(
                            "the declared sources are: {}; add `{word}` to `sources` if it is new",
                            self.sources.join(", ")
                        ),
                    };
                self.report(
                    Diagnostic::new(
                        Code::UnknownSource,
                        span,
                        format!("`{word}` is not a declared trigger source"),
                    )
                    .with_help(help),
                );
                None
            }
            other_ty => {
                let typo = suggest::closest(word, FACTS.iter().map(|f| f.name)).is_some();
                if typo || !is_fact(other) {
                    self.unknown_fact(word, span);
                    return None;
                }
                let example = match other_ty {
                    FactType::Int => format!("write a whole number, e.g. `{other_text} == 3`"),
                    FactType::Bool => format!(
                        "write `true` or `false`, or use `{other_text}` on its own as a condition"
                    ),
                    FactType::Duration => format!("write a duration, e.g. `{other_text} > 15m`"),
                    FactType::String => format!("text is written in quotes: `\"{word}\"`"),
                    _ => format!("compare `{other_text}` with another {}", other_ty.name()),
                };
                self.report(
                    Diagnostic::new(
                        Code::TypeMismatch,
                        span,
                        format!(
                            "`{word}` is neither a fact nor a value `{other_text}` can take ({})",
                            article(other_ty)
                        ),
                    )
                    .with_help(example),
                );
                None
            }
        }
    }

    /// `left OP right`: both sides of one type, and an ordered type for `<`, `<=`, `>`, `>=`.
    fn compare(
        &mut self,
        span: Span,
        left: &Operand,
        op: &Spanned<CmpOp>,
        right: &Operand,
        phase: PhaseKind,
    ) -> Option<CondKind> {
        let l = self.operand(left, phase);
        let r = self.operand(right, phase);
        let (l, r) = match (l?, r?) {
            (Typed::Value(l), Typed::Value(r)) => (l, r),
            (Typed::Value(l), Typed::Word(word)) => {
                let value = self.word_as(&word, right.span, l.ty, left)?;
                let ty = l.ty;
                (
                    l,
                    TypedTerm {
                        ty,
                        term: Term::Const(value),
                    },
                )
            }
            (Typed::Word(word), Typed::Value(r)) => {
                let value = self.word_as(&word, left.span, r.ty, right)?;
                let ty = r.ty;
                (
                    TypedTerm {
                        ty,
                        term: Term::Const(value),
                    },
                    r,
                )
            }
            (Typed::Word(word), Typed::Word(_)) => {
                self.unknown_fact(&word, left.span);
                return None;
            }
        };
        if l.ty != r.ty {
            self.mismatch(span, (left, l.ty), (right, r.ty));
            return None;
        }
        let ordering = !matches!(op.node, CmpOp::Eq | CmpOp::Ne);
        if ordering && !ordered(l.ty) {
            let fact = if is_fact(left) { left } else { right };
            let help = match l.ty {
                FactType::Bool => "use the fact on its own as a condition, or `not` it",
                _ => "use `==`, `!=` or `in [...]`",
            };
            self.report(
                Diagnostic::new(
                    Code::TypeMismatch,
                    span,
                    format!(
                        "`{}` orders numbers, durations, instants and dates, but `{}` is {}",
                        op.node.symbol(),
                        self.text(fact.span),
                        article(l.ty)
                    ),
                )
                .with_help(help),
            );
            return None;
        }
        Some(CondKind::Compare {
            left: l.term,
            op: op.node,
            right: r.term,
        })
    }

    /// E103 for a comparison of two types, phrased from the fact's side.
    fn mismatch(&mut self, span: Span, left: (&Operand, FactType), right: (&Operand, FactType)) {
        let (fact, other) = if is_fact(left.0) || !is_fact(right.0) {
            (left, right)
        } else {
            (right, left)
        };
        let mut diagnostic = Diagnostic::new(
            Code::TypeMismatch,
            span,
            format!(
                "cannot compare `{}` ({}) with `{}` ({})",
                self.text(fact.0.span),
                article(fact.1),
                self.text(other.0.span),
                article(other.1)
            ),
        );
        if let Some(help) = hint(fact.1, other.1) {
            diagnostic = diagnostic.with_help(help);
        }
        self.report(diagnostic);
    }

    /// `operand in [a, b, c]`: every item a value of the operand's type.
    fn in_list(
        &mut self,
        operand: &Operand,
        items: &[Operand],
        phase: PhaseKind,
    ) -> Option<(Term, Vec<Value>)> {
        let tested = match self.operand(operand, phase)? {
            Typed::Value(v) => v,
            Typed::Word(word) => {
                self.unknown_fact(&word, operand.span);
                return None;
            }
        };
        let mut values = Vec::new();
        let mut ok = true;
        for item in items {
            let value = match self.operand(item, phase) {
                None => None,
                Some(Typed::Word(word)) => self.word_as(&word, item.span, tested.ty, operand),
                Some(Typed::Value(TypedTerm {
                    ty,
                    term: Term::Const(value),
                })) if ty == tested.ty => Some(value),
                Some(Typed::Value(TypedTerm {
                    ty,
                    term: Term::Const(_),
                })) => {
                    self.mismatch(item.span, (operand, tested.ty), (item, ty));
                    None
                }
                Some(Typed::Value(_)) => {
                    self.report(
                        Diagnostic::new(
                            Code::TypeMismatch,
                            item.span,
                            format!(
                                "a list holds values, but `{}` is a fact",
                                self.text(item.span)
                            ),
                        )
                        .with_help("compare two facts with `==` instead"),
                    );
                    None
                }
            };
            match value {
                Some(v) => values.push(v),
                None => ok = false,
            }
        }
        ok.then_some((tested.term, values))
    }

    /// `operand in LOW..HIGH`: an integer operand and a range that is not empty.
    fn in_range(
        &mut self,
        operand: &Operand,
        low: &Spanned<i64>,
        high: &Spanned<i64>,
        phase: PhaseKind,
    ) -> Option<Term> {
        let term = match self.operand(operand, phase)? {
            Typed::Word(word) => {
                self.unknown_fact(&word, operand.span);
                None
            }
            Typed::Value(v) if v.ty == FactType::Int => Some(v.term),
            Typed::Value(v) => {
                let help = match v.ty {
                    FactType::Enum(values) => format!(
                        "list the values instead, e.g. `{} in [{}]`",
                        self.text(operand.span),
                        values
                            .iter()
                            .take(2)
                            .copied()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    _ => "a range `LOW..HIGH` holds whole numbers only".to_string(),
                };
                self.report(
                    Diagnostic::new(
                        Code::TypeMismatch,
                        operand.span,
                        format!(
                            "`in {}..{}` needs an integer, but `{}` is {}",
                            low.node,
                            high.node,
                            self.text(operand.span),
                            article(v.ty)
                        ),
                    )
                    .with_help(help),
                );
                None
            }
        };
        if low.node > high.node {
            self.report(
                Diagnostic::new(
                    Code::EmptyRange,
                    low.span.join(high.span),
                    format!(
                        "the range `{}..{}` is empty: its low end is above its high end",
                        low.node, high.node
                    ),
                )
                .with_help(format!(
                    "write the low end first: `{}..{}`",
                    high.node, low.node
                )),
            );
            return None;
        }
        term
    }

    /// A bare operand used as a condition: it must be a boolean.
    fn truthy(&mut self, operand: &Operand, phase: PhaseKind) -> Option<Term> {
        match self.operand(operand, phase)? {
            Typed::Word(word) => {
                self.unknown_fact(&word, operand.span);
                None
            }
            Typed::Value(v) if v.ty == FactType::Bool => Some(v.term),
            Typed::Value(v) => {
                let text = self.text(operand.span);
                let example = match v.ty {
                    FactType::Enum(values) => {
                        format!("`{text} == {}`", values.first().copied().unwrap_or("value"))
                    }
                    FactType::Int => format!("`{text} > 0`"),
                    FactType::Duration => format!("`{text} > 5m`"),
                    FactType::Instant => {
                        format!("`{text} in business_hours` or `since({text}) < 15m`")
                    }
                    FactType::Source => format!("`{text} == servicenow`"),
                    _ => format!("`exists({text})`"),
                };
                self.report(
                    Diagnostic::new(
                        Code::NotACondition,
                        operand.span,
                        format!("`{text}` is {}, not a condition", article(v.ty)),
                    )
                    .with_help(format!("compare it, e.g. {example}")),
                );
                None
            }
        }
    }

    /// A declared window by name; E104 otherwise. Marks it used.
    pub(super) fn window_ref(&mut self, name: &Spanned<String>) -> Option<WindowId> {
        if let Some(id) = self.window_ids.get(&name.node).copied() {
            self.used_windows.insert(id.0);
            return Some(id);
        }
        let known: Vec<String> = self.window_ids.keys().cloned().collect();
        let example = format!("window {} {{ mon..fri 09:00..17:00 }}", name.node);
        self.undefined(Code::UndefinedWindow, "window", name, &known, &example);
        None
    }
}

/// Whether the operand names a fact (rather than a constant).
fn is_fact(operand: &Operand) -> bool {
    matches!(
        operand.node,
        OperandKind::Fact(_) | OperandKind::Since(_) | OperandKind::Offset { .. }
    )
}

/// Whether `<` and friends apply.
fn ordered(ty: FactType) -> bool {
    matches!(
        ty,
        FactType::Int | FactType::Duration | FactType::Instant | FactType::Date
    )
}

/// The type's name with its article: "an integer", "a string".
fn article(ty: FactType) -> String {
    let name = ty.name();
    let a = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{a} {name}")
}

/// What to write instead when a fact of type `fact` meets a value of type `other`.
fn hint(fact: FactType, other: FactType) -> Option<String> {
    let text = match (fact, other) {
        (FactType::Enum(values), FactType::String) => format!(
            "enum values are written without quotes; this one is one of: {}",
            values.join(", ")
        ),
        (FactType::Source, FactType::String) => {
            "sources are written without quotes, e.g. `trigger.source == servicenow`".to_string()
        }
        (FactType::Int, FactType::String) => "write a whole number without quotes".to_string(),
        (FactType::Duration, FactType::Int) => {
            "a duration needs a unit, e.g. `15m`, `30s` or `2h`".to_string()
        }
        (FactType::Int, FactType::Duration) => {
            "an integer has no unit; write a whole number".to_string()
        }
        (FactType::Instant, _) => "compare the time since it (`since(last_publish.at) < 15m`), another instant (`now < last_publish.at + 15m`), or test a window (`now in business_hours`)".to_string(),
        (FactType::Duration, FactType::Instant) => {
            "`since(fact)` is the time since an instant".to_string()
        }
        (FactType::Bool, _) => {
            "compare with `true` or `false`, or use the fact on its own as a condition".to_string()
        }
        _ => return None,
    };
    Some(text)
}
