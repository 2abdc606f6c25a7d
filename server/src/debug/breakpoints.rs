//! Shared breakpoints, sans-IO: what one participant asked for in one source, checked and
//! rebuilt from known fields only, and the one breakpoint per line the adapter gets when
//! several participants asked for that line (DAP keeps one breakpoint per line of a source).
//!
//! Merging a line, participants in order:
//! - all alike: that breakpoint;
//! - someone wants the program to stop there (a breakpoint without `logMessage`): it stops.
//!   When every such stop has a `condition` and none a `hitCondition`, the conditions are
//!   joined with the language's "or", so it stops exactly when one of them would;
//!   otherwise it stops every time, which covers every stop asked for. Logpoints on that line
//!   are not logged (their owners are told);
//! - only logpoints: their messages are joined with ` | ` when their conditions and hit
//!   conditions agree; otherwise the first participant's logpoint is set, and the others are
//!   told.

use serde_json::{json, Map, Value};

/// Bytes of a condition, hit condition or log message: an expression or a line of text,
/// not a program; this bounds what one participant can make the adapter evaluate and the
/// hub hold (500 breakpoints per file).
pub const MAX_EXPRESSION_BYTES: usize = 1024;

/// One participant's breakpoint (a DAP `SourceBreakpoint`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceBreakpoint {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, if given.
    pub column: Option<u32>,
    /// Stop (or log) only when this expression is true.
    pub condition: Option<String>,
    /// Stop (or log) only when the hit count satisfies this (adapter-specific, e.g. `3`, `>= 3`).
    pub hit_condition: Option<String>,
    /// Log this (with `{expressions}`) instead of stopping: a logpoint.
    pub log_message: Option<String>,
}

impl SourceBreakpoint {
    /// A plain breakpoint at `line`.
    pub fn at(line: u32) -> SourceBreakpoint {
        SourceBreakpoint {
            line,
            column: None,
            condition: None,
            hit_condition: None,
            log_message: None,
        }
    }

    /// Reads a DAP `SourceBreakpoint`; other fields are dropped. An empty string counts as
    /// absent (VS Code sends `condition: ""` for a cleared condition).
    pub fn parse(v: &Value) -> Result<SourceBreakpoint, String> {
        let number = |key: &str| -> Result<Option<u32>, String> {
            match v.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(n) => n
                    .as_u64()
                    .filter(|n| *n >= 1)
                    .and_then(|n| u32::try_from(n).ok())
                    .map(Some)
                    .ok_or_else(|| format!("`{key}` must be a number ≥ 1")),
            }
        };
        let text = |key: &str| -> Result<Option<String>, String> {
            match v.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.len() > MAX_EXPRESSION_BYTES => Err(format!(
                    "`{key}` is {} bytes, over the limit of {MAX_EXPRESSION_BYTES}",
                    s.len()
                )),
                Some(Value::String(s)) => Ok((!s.trim().is_empty()).then(|| s.clone())),
                Some(_) => Err(format!("`{key}` must be a string")),
            }
        };
        Ok(SourceBreakpoint {
            line: number("line")?.ok_or("each breakpoint needs a `line` ≥ 1")?,
            column: number("column")?,
            condition: text("condition")?,
            hit_condition: text("hitCondition")?,
            log_message: text("logMessage")?,
        })
    }

    /// The DAP `SourceBreakpoint`.
    pub fn to_dap(&self) -> Value {
        let mut m = Map::new();
        m.insert("line".into(), json!(self.line));
        let fields = [
            ("column", self.column.map(|c| json!(c))),
            ("condition", self.condition.as_ref().map(|c| json!(c))),
            ("hitCondition", self.hit_condition.as_ref().map(|c| json!(c))),
            ("logMessage", self.log_message.as_ref().map(|c| json!(c))),
        ];
        for (key, value) in fields {
            if let Some(value) = value {
                m.insert(key.into(), value);
            }
        }
        Value::Object(m)
    }

    fn is_log(&self) -> bool {
        self.log_message.is_some()
    }
}

/// The "or" of a language's expressions, for joining participants' conditions.
pub fn or_operator(language: &str) -> &'static str {
    match language {
        "python" => " or ",
        _ => " || ",
    }
}

/// The breakpoint the adapter gets for one line that `asked` (in participants' order, at
/// least one) want, per the module's rules.
pub fn merge_line(asked: &[&SourceBreakpoint], or: &str) -> SourceBreakpoint {
    let first = asked[0];
    if asked.iter().all(|b| *b == first) {
        return first.clone();
    }
    let stops: Vec<&SourceBreakpoint> = asked.iter().copied().filter(|b| !b.is_log()).collect();
    if let Some(stop) = stops.first() {
        if stops.iter().all(|b| b == stop) {
            return (*stop).clone();
        }
        let mut merged = SourceBreakpoint {
            column: stop.column,
            ..SourceBreakpoint::at(stop.line)
        };
        if stops.iter().all(|b| b.condition.is_some() && b.hit_condition.is_none()) {
            let mut conditions: Vec<&str> = Vec::new();
            for c in stops.iter().filter_map(|b| b.condition.as_deref()) {
                if !conditions.contains(&c) {
                    conditions.push(c);
                }
            }
            merged.condition = Some(if conditions.len() == 1 {
                conditions[0].to_owned()
            } else {
                conditions.iter().map(|c| format!("({c})")).collect::<Vec<_>>().join(or)
            });
        }
        return merged;
    }
    let agree = asked
        .iter()
        .all(|b| b.condition == first.condition && b.hit_condition == first.hit_condition);
    if !agree {
        return first.clone();
    }
    let mut messages: Vec<&str> = Vec::new();
    for m in asked.iter().filter_map(|b| b.log_message.as_deref()) {
        if !messages.contains(&m) {
            messages.push(m);
        }
    }
    SourceBreakpoint {
        log_message: Some(messages.join(" | ")),
        ..first.clone()
    }
}

/// What to tell a participant whose breakpoint `mine` was merged into `set` (none when
/// `set` does what `mine` asked).
pub fn merge_note(mine: &SourceBreakpoint, set: &SourceBreakpoint) -> Option<String> {
    if mine == set {
        return None;
    }
    let note = match (mine.is_log(), set.is_log()) {
        (true, false) => {
            "another participant's breakpoint stops the program on this line, so this logpoint does not log"
        }
        (true, true)
            if set.log_message.as_deref().is_some_and(|m| {
                mine.log_message
                    .as_deref()
                    .is_some_and(|mine| m.split(" | ").any(|part| part == mine))
            }) && set.condition == mine.condition
                && set.hit_condition == mine.hit_condition =>
        {
            "logs together with other participants' logpoints on this line"
        }
        (true, true) => "another participant's logpoint with another condition is set on this line instead",
        (false, _) if set.condition.is_some() => {
            "merged with other participants' conditions on this line: it stops when any of them holds"
        }
        (false, _) => "merged with other participants' breakpoints on this line: it stops every time",
    };
    Some(note.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(line: u32, c: &str) -> SourceBreakpoint {
        SourceBreakpoint {
            condition: Some(c.into()),
            ..SourceBreakpoint::at(line)
        }
    }

    fn log(line: u32, m: &str) -> SourceBreakpoint {
        SourceBreakpoint {
            log_message: Some(m.into()),
            ..SourceBreakpoint::at(line)
        }
    }

    #[test]
    fn only_known_fields_reach_the_adapter_and_empty_strings_are_absent() {
        let b = SourceBreakpoint::parse(&json!({"line": 3, "condition": "", "hitCondition": "2", "x": {"deep": 1}}))
            .unwrap();
        assert_eq!(b.to_dap(), json!({"line": 3, "hitCondition": "2"}));
    }

    #[test]
    fn bad_breakpoints_are_refused_with_the_field_named() {
        for (bp, want) in [
            (json!({"line": 0}), "`line`"),
            (json!({}), "`line`"),
            (json!({"line": 1, "condition": 5}), "`condition` must be a string"),
            (json!({"line": 1, "column": -1}), "`column`"),
            (
                json!({"line": 1, "logMessage": "x".repeat(MAX_EXPRESSION_BYTES + 1)}),
                "over the limit",
            ),
        ] {
            let err = SourceBreakpoint::parse(&bp).unwrap_err();
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn alike_breakpoints_merge_into_one() {
        let a = cond(4, "x > 1");
        assert_eq!(merge_line(&[&a, &a.clone()], " or "), a);
        assert_eq!(merge_note(&a, &a), None);
    }

    #[test]
    fn conditions_are_joined_with_the_languages_or() {
        let (a, b) = (cond(4, "x > 1"), cond(4, "y == 2"));
        let set = merge_line(&[&a, &b], or_operator("python"));
        assert_eq!(set.condition.as_deref(), Some("(x > 1) or (y == 2)"));
        let set = merge_line(&[&a, &b, &a], or_operator("go"));
        assert_eq!(
            set.condition.as_deref(),
            Some("(x > 1) || (y == 2)"),
            "each condition once"
        );
        assert!(merge_note(&a, &set).unwrap().contains("any of them"));
    }

    #[test]
    fn a_plain_stop_covers_every_other_stop_on_its_line() {
        let plain = SourceBreakpoint::at(4);
        let hits = SourceBreakpoint {
            hit_condition: Some("3".into()),
            ..SourceBreakpoint::at(4)
        };
        assert_eq!(merge_line(&[&cond(4, "x"), &plain], " || "), plain);
        assert_eq!(
            merge_line(&[&hits, &cond(4, "x")], " || "),
            plain,
            "a hit count cannot be or-ed"
        );
        assert!(merge_note(&hits, &plain).unwrap().contains("every time"));
    }

    #[test]
    fn a_stop_wins_over_a_logpoint_and_its_owner_is_told() {
        let l = log(7, "x is {x}");
        let set = merge_line(&[&l, &cond(7, "x")], " or ");
        assert_eq!(set, cond(7, "x"));
        assert!(merge_note(&l, &set).unwrap().contains("does not log"));
    }

    #[test]
    fn logpoints_log_together_when_their_conditions_agree() {
        let (a, b) = (log(2, "a={a}"), log(2, "b={b}"));
        let set = merge_line(&[&a, &b], " or ");
        assert_eq!(set.log_message.as_deref(), Some("a={a} | b={b}"));
        assert!(merge_note(&b, &set).unwrap().contains("together"));
        let c = SourceBreakpoint {
            condition: Some("a > 0".into()),
            ..log(2, "c")
        };
        let set = merge_line(&[&a, &c], " or ");
        assert_eq!(set, a, "the first participant's logpoint when conditions differ");
        assert!(merge_note(&c, &set).unwrap().contains("instead"));
    }
}
