//! Rules files of one shape and any size, for the checker's benchmark and its cost tests:
//! the shapes that once made checking slow or large (issue 12).

use std::fmt::Write;

/// The rule shapes.
pub const SHAPES: [Shape; 7] = [
    Shape::Ladder,
    Shape::Windows,
    Shape::Durations,
    Shape::Mixed,
    Shape::Identical,
    Shape::Chains,
    Shape::Errors,
];

/// A kind of rules file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `schedule.version == i`: one integer axis, one constant per rule.
    Ladder,
    /// Each rule tests a window of its own.
    Windows,
    /// `since(last_publish.at) < i m`: one more duration threshold per rule.
    Durations,
    /// Enum, boolean and integer conditions combined.
    Mixed,
    /// The same condition in every rule: every rule after the first is shadowed.
    Identical,
    /// Two rules whose conditions are `or` and `and` chains of `rules / 2` comparisons.
    Chains,
    /// Every rule names an unknown fact: one error per rule.
    Errors,
}

impl Shape {
    /// The shape's name in benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Ladder => "equality ladder",
            Shape::Windows => "windows",
            Shape::Durations => "durations",
            Shape::Mixed => "mixed enum/boolean/integer",
            Shape::Identical => "identical rules",
            Shape::Chains => "long chains",
            Shape::Errors => "many errors",
        }
    }

    /// A rules file of this shape with `rules` rules (chains: `rules` comparisons).
    pub fn file(self, rules: usize) -> String {
        let mut s = String::from(
            "policy \"shape\"\ntimezone \"Europe/London\"\nsources servicenow, manual, timer\n\n",
        );
        if self == Shape::Windows {
            for i in 0..rules {
                let (start, end) = (i % 1380, i % 1380 + 60);
                let _ = writeln!(
                    s,
                    "window w{i} {{\n  mon..fri {:02}:{:02}..{:02}:{:02}\n}}",
                    start / 60,
                    start % 60,
                    end / 60,
                    end % 60
                );
            }
        }
        s.push_str("on trigger {\n");
        match self {
            Shape::Chains => {
                let half = (rules / 2).max(1);
                let or: Vec<String> = (0..half)
                    .map(|i| format!("schedule.version == {i}"))
                    .collect();
                let and: Vec<String> = (0..half).map(|i| format!("attempt != {i}")).collect();
                let _ = writeln!(
                    s,
                    "  rule any_of when {} then skip \"any\"",
                    or.join(" or ")
                );
                let _ = writeln!(
                    s,
                    "  rule all_of when {} then skip \"all\"",
                    and.join(" and ")
                );
            }
            _ => {
                for i in 0..rules {
                    let _ = writeln!(
                        s,
                        "  rule r{i} when {} then skip \"r{i}\"",
                        self.condition(i)
                    );
                }
            }
        }
        s.push_str("  otherwise publish\n}\n\non response {\n  otherwise done\n}\n");
        s
    }

    /// The condition of rule `i`.
    fn condition(self, i: usize) -> String {
        const STATES: [&str; 4] = ["draft", "publishing", "published", "unknown"];
        match self {
            Shape::Ladder => format!("schedule.version == {i}"),
            Shape::Windows => format!("now in w{i}"),
            Shape::Durations => format!("since(last_publish.at) < {}m", i + 1),
            Shape::Mixed => format!(
                "schedule.state == {} and trigger.duplicate == {} and attempt > {}",
                STATES[i % 4],
                i.is_multiple_of(2),
                i % 7
            ),
            Shape::Identical => "schedule.state == draft and not trigger.duplicate".to_string(),
            Shape::Chains => String::new(),
            Shape::Errors => format!("schedule.stat == draft and attempt > {i}"),
        }
    }
}
