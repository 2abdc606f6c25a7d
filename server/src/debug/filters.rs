//! Exception filters and function breakpoints, kept per participant and merged, sans-IO.
//! DAP keeps one set of each per session, so the adapter gets the union of everyone's:
//!
//! - Exception filters: a filter anyone turned on plainly is on; a filter turned on only with
//!   conditions (`filterOptions`) is on with those conditions joined by the language's "or",
//!   so it stops when any of them holds. `exceptionOptions` (the older, tree-shaped form) is
//!   not passed on: every adapter mesh runs takes filters.
//! - Function breakpoints: one per function name, merged like breakpoints on one line
//!   ([`super::breakpoints::merge_line`]): alike → that one; conditions alone → or-ed;
//!   any other mix → a plain stop.
//!
//! Removing yours (an empty set) never removes anyone else's; leaving removes yours.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::breakpoints::{merge_line, merge_note, SourceBreakpoint, MAX_EXPRESSION_BYTES};

/// Exception filters one participant may turn on: adapters offer a handful (debugpy 3,
/// lldb 6), so this only bounds what a hostile client can make the hub hold.
pub const MAX_EXCEPTION_FILTERS: usize = 64;
/// Function breakpoints one participant may set, as many as breakpoints in one file.
pub const MAX_FUNCTION_BREAKPOINTS: usize = 500;

/// One participant's exception filters (a DAP `setExceptionBreakpoints`, checked).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExceptionFilters {
    /// Filters turned on plainly.
    pub filters: Vec<String>,
    /// Filters turned on with a condition: (filter id, condition).
    pub options: Vec<(String, Option<String>)>,
}

impl ExceptionFilters {
    /// Reads `setExceptionBreakpoints` arguments; other fields are dropped.
    pub fn parse(args: &Value) -> Result<ExceptionFilters, String> {
        let list = |key: &str| -> Result<Vec<Value>, String> {
            match args.get(key) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(a)) if a.len() > MAX_EXCEPTION_FILTERS => Err(format!(
                    "`{key}` has {} entries, over the limit of {MAX_EXCEPTION_FILTERS}",
                    a.len()
                )),
                Some(Value::Array(a)) => Ok(a.clone()),
                Some(_) => Err(format!("`{key}` must be an array")),
            }
        };
        let mut out = ExceptionFilters::default();
        for f in list("filters")? {
            let id = bounded_text(Some(&f), "filters[]")?.ok_or("`filters` must hold non-empty strings")?;
            if !out.filters.contains(&id) {
                out.filters.push(id);
            }
        }
        for o in list("filterOptions")? {
            let id = bounded_text(o.get("filterId"), "filterOptions[].filterId")?
                .ok_or("each of `filterOptions` needs a `filterId`")?;
            let condition = bounded_text(o.get("condition"), "filterOptions[].condition")?;
            if !out.options.contains(&(id.clone(), condition.clone())) {
                out.options.push((id, condition));
            }
        }
        Ok(out)
    }

    /// Whether it turns nothing on.
    pub fn is_empty(&self) -> bool {
        self.filters.is_empty() && self.options.is_empty()
    }
}

/// The `setExceptionBreakpoints` arguments for everyone's filters (in participants' order).
pub fn merge_exception_filters<'a>(all: impl IntoIterator<Item = &'a ExceptionFilters>, or: &str) -> Value {
    let all: Vec<&ExceptionFilters> = all.into_iter().collect();
    let mut filters: Vec<&str> = Vec::new();
    for f in all.iter().flat_map(|e| e.filters.iter()) {
        if !filters.contains(&f.as_str()) {
            filters.push(f);
        }
    }
    // Conditions per filter id, in order; `None` (an option without a condition) is plain.
    let mut conditioned: Vec<(&str, Vec<Option<&str>>)> = Vec::new();
    for (id, condition) in all.iter().flat_map(|e| e.options.iter()) {
        if filters.contains(&id.as_str()) {
            continue;
        }
        match conditioned.iter_mut().find(|(i, _)| i == id) {
            Some((_, cs)) => {
                if !cs.contains(&condition.as_deref()) {
                    cs.push(condition.as_deref());
                }
            }
            None => conditioned.push((id, vec![condition.as_deref()])),
        }
    }
    let options: Vec<Value> = conditioned
        .into_iter()
        .map(|(id, conditions)| {
            let mut m = Map::new();
            m.insert("filterId".into(), json!(id));
            if !conditions.contains(&None) {
                let cs: Vec<&str> = conditions.into_iter().flatten().collect();
                let joined = if cs.len() == 1 {
                    cs[0].to_owned()
                } else {
                    cs.iter().map(|c| format!("({c})")).collect::<Vec<_>>().join(or)
                };
                m.insert("condition".into(), json!(joined));
            }
            Value::Object(m)
        })
        .collect();
    let mut args = json!({ "filters": filters });
    if !options.is_empty() {
        args["filterOptions"] = json!(options);
    }
    args
}

/// One participant's function breakpoint (a DAP `FunctionBreakpoint`, checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionBreakpoint {
    /// The function's name.
    pub name: String,
    /// Stop only when this expression is true.
    pub condition: Option<String>,
    /// Stop only when the hit count satisfies this.
    pub hit_condition: Option<String>,
}

impl FunctionBreakpoint {
    /// Reads `setFunctionBreakpoints` arguments' `breakpoints`; other fields are dropped.
    pub fn parse_all(args: &Value) -> Result<Vec<FunctionBreakpoint>, String> {
        let raw = match args.get("breakpoints") {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(a)) if a.len() > MAX_FUNCTION_BREAKPOINTS => {
                return Err(format!(
                    "{} function breakpoints, over the limit of {MAX_FUNCTION_BREAKPOINTS}",
                    a.len()
                ))
            }
            Some(Value::Array(a)) => a,
            Some(_) => return Err("`breakpoints` must be an array".into()),
        };
        raw.iter()
            .map(|b| {
                Ok(FunctionBreakpoint {
                    name: bounded_text(b.get("name"), "name")?.ok_or("each function breakpoint needs a `name`")?,
                    condition: bounded_text(b.get("condition"), "condition")?,
                    hit_condition: bounded_text(b.get("hitCondition"), "hitCondition")?,
                })
            })
            .collect()
    }

    /// The DAP `FunctionBreakpoint`.
    pub fn to_dap(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        if let Some(c) = &self.condition {
            m.insert("condition".into(), json!(c));
        }
        if let Some(h) = &self.hit_condition {
            m.insert("hitCondition".into(), json!(h));
        }
        Value::Object(m)
    }

    /// As a breakpoint on a line, to merge by the same rules.
    fn as_line(&self) -> SourceBreakpoint {
        SourceBreakpoint {
            condition: self.condition.clone(),
            hit_condition: self.hit_condition.clone(),
            ..SourceBreakpoint::at(1)
        }
    }

    fn with_line(&self, b: SourceBreakpoint) -> FunctionBreakpoint {
        FunctionBreakpoint {
            name: self.name.clone(),
            condition: b.condition,
            hit_condition: b.hit_condition,
        }
    }
}

/// Everyone's function breakpoints (in participants' order) merged: one per name, in order
/// of first appearance.
pub fn merge_function_breakpoints<'a>(
    all: impl IntoIterator<Item = &'a Vec<FunctionBreakpoint>>,
    or: &str,
) -> Vec<FunctionBreakpoint> {
    let mut by_name: BTreeMap<&str, (usize, Vec<SourceBreakpoint>)> = BTreeMap::new();
    let mut firsts: Vec<&FunctionBreakpoint> = Vec::new();
    for b in all.into_iter().flatten() {
        let n = by_name.len();
        let entry = by_name.entry(&b.name).or_insert_with(|| (n, Vec::new()));
        if entry.1.is_empty() {
            firsts.push(b);
        }
        entry.1.push(b.as_line());
    }
    firsts
        .into_iter()
        .map(|first| {
            let asked: Vec<&SourceBreakpoint> = by_name[first.name.as_str()].1.iter().collect();
            first.with_line(merge_line(&asked, or))
        })
        .collect()
}

/// What to tell a participant whose function breakpoint was merged into `set`.
pub fn function_note(mine: &FunctionBreakpoint, set: &FunctionBreakpoint) -> Option<String> {
    merge_note(&mine.as_line(), &set.as_line()).map(|n| n.replace("on this line", "for this function"))
}

/// A text field: absent, or a string of at most [`MAX_EXPRESSION_BYTES`] (empty is absent).
fn bounded_text(v: Option<&Value>, key: &str) -> Result<Option<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() > MAX_EXPRESSION_BYTES => Err(format!(
            "`{key}` is {} bytes, over the limit of {MAX_EXPRESSION_BYTES}",
            s.len()
        )),
        Some(Value::String(s)) => Ok((!s.trim().is_empty()).then(|| s.clone())),
        Some(_) => Err(format!("`{key}` must be a string")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filters(args: Value) -> ExceptionFilters {
        ExceptionFilters::parse(&args).unwrap()
    }

    #[test]
    fn exception_filters_are_the_union_of_everyones() {
        let ada = filters(json!({"filters": ["raised"]}));
        let bob = filters(json!({"filters": ["uncaught", "raised"]}));
        assert_eq!(
            merge_exception_filters([&ada, &bob], " or "),
            json!({"filters": ["raised", "uncaught"]})
        );
    }

    #[test]
    fn conditioned_filters_are_or_ed_and_a_plain_one_wins() {
        let ada = filters(json!({"filterOptions": [{"filterId": "raised", "condition": "ValueError"}]}));
        let bob = filters(json!({"filterOptions": [{"filterId": "raised", "condition": "KeyError"}]}));
        assert_eq!(
            merge_exception_filters([&ada, &bob], " or "),
            json!({"filters": [], "filterOptions": [{"filterId": "raised", "condition": "(ValueError) or (KeyError)"}]})
        );
        let rita = filters(json!({"filters": ["raised"]}));
        assert_eq!(
            merge_exception_filters([&ada, &rita], " or "),
            json!({"filters": ["raised"]})
        );
        let plain_option = filters(json!({"filterOptions": [{"filterId": "raised"}]}));
        assert_eq!(
            merge_exception_filters([&ada, &plain_option], " or "),
            json!({"filters": [], "filterOptions": [{"filterId": "raised"}]})
        );
    }

    #[test]
    fn malformed_filters_are_refused_with_the_field_named() {
        for (args, want) in [
            (json!({"filters": "raised"}), "`filters` must be an array"),
            (json!({"filters": [3]}), "must be a string"),
            (json!({"filterOptions": [{"condition": "x"}]}), "needs a `filterId`"),
            (
                json!({"filters": vec!["x"; MAX_EXCEPTION_FILTERS + 1]}),
                "over the limit",
            ),
            (
                json!({"filterOptions": [{"filterId": "raised", "condition": "x".repeat(MAX_EXPRESSION_BYTES + 1)}]}),
                "over the limit",
            ),
        ] {
            let err = ExceptionFilters::parse(&args).unwrap_err();
            assert!(err.contains(want), "{args}: {err}");
        }
        // Unknown fields and the tree-shaped `exceptionOptions` are dropped.
        let f = filters(json!({"filters": ["raised"], "exceptionOptions": [{"breakMode": "always"}], "x": 1}));
        assert_eq!(merge_exception_filters([&f], " || "), json!({"filters": ["raised"]}));
    }

    fn function(name: &str, condition: Option<&str>) -> FunctionBreakpoint {
        FunctionBreakpoint {
            name: name.into(),
            condition: condition.map(str::to_owned),
            hit_condition: None,
        }
    }

    #[test]
    fn function_breakpoints_merge_per_name_like_lines() {
        let ada = vec![function("square", Some("n > 3")), function("main", None)];
        let bob = vec![function("square", Some("n == 1")), function("helper", None)];
        let merged = merge_function_breakpoints([&ada, &bob], " || ");
        assert_eq!(
            merged,
            vec![
                function("square", Some("(n > 3) || (n == 1)")),
                function("main", None),
                function("helper", None)
            ]
        );
        assert_eq!(
            function_note(&ada[0], &merged[0]).as_deref(),
            Some("merged with other participants' conditions for this function: it stops when any of them holds")
        );
        assert_eq!(function_note(&ada[1], &merged[1]), None);
        // A plain stop and a condition: it stops every time.
        let rita = vec![function("square", None)];
        assert_eq!(
            merge_function_breakpoints([&ada, &rita], " || ")[0],
            function("square", None)
        );
    }

    #[test]
    fn malformed_function_breakpoints_are_refused_with_the_field_named() {
        for (args, want) in [
            (json!({"breakpoints": [{}]}), "needs a `name`"),
            (json!({"breakpoints": [{"name": 1}]}), "`name` must be a string"),
            (json!({"breakpoints": {}}), "must be an array"),
            (
                json!({"breakpoints": vec![json!({"name": "f"}); MAX_FUNCTION_BREAKPOINTS + 1]}),
                "over the limit",
            ),
        ] {
            let err = FunctionBreakpoint::parse_all(&args).unwrap_err();
            assert!(err.contains(want), "{args}: {err}");
        }
    }
}
