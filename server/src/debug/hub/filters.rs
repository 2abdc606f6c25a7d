//! The hub's side of per-participant exception filters and function breakpoints: keep each
//! writer's set, send the adapter everyone's merged ([`crate::debug::filters`]), and answer
//! each participant for their own.

use serde_json::{json, Value};

use super::{message_of, ConnId, Hub, Out, Pending};
use crate::debug::filters::{
    function_note, merge_exception_filters, merge_function_breakpoints, ExceptionFilters, FunctionBreakpoint,
};

impl Hub {
    /// A writer's `setExceptionBreakpoints`: theirs replaces their earlier set.
    pub(super) fn set_exception_filters(&mut self, conn: ConnId, seq: i64, args: &Value) -> Vec<Out> {
        let mine = match ExceptionFilters::parse(args) {
            Ok(f) => f,
            Err(problem) => {
                let message = format!("exception filters not set: {problem}");
                return vec![self.respond(conn, seq, "setExceptionBreakpoints", Err(&message))];
            }
        };
        if mine.is_empty() {
            self.exception_filters.remove(&conn);
        } else {
            self.exception_filters.insert(conn, mine);
        }
        vec![self.merge_exception_filters(Some((conn, seq)))]
    }

    /// Sends everyone's exception filters upstream, merged.
    pub(super) fn merge_exception_filters(&mut self, reply: Option<(ConnId, i64)>) -> Out {
        let args = merge_exception_filters(self.exception_filters.values(), self.or);
        self.upstream("setExceptionBreakpoints", args, Pending::Exceptions { reply })
    }

    /// The adapter's answer goes to whoever asked, without the per-filter results (they
    /// describe the merged set, not theirs; DAP makes them optional).
    pub(super) fn answer_exception_filters(&mut self, reply: Option<(ConnId, i64)>, msg: &Value) -> Vec<Out> {
        let Some((conn, seq)) = reply.filter(|(conn, _)| self.clients.contains_key(conn)) else {
            return Vec::new();
        };
        let failure = message_of(msg);
        let result = if msg.get("success").and_then(Value::as_bool).unwrap_or(false) {
            Ok(json!({}))
        } else {
            Err(failure.as_str())
        };
        vec![self.respond(conn, seq, "setExceptionBreakpoints", result)]
    }

    /// A writer's `setFunctionBreakpoints`: theirs replaces their earlier set.
    pub(super) fn set_function_breakpoints(&mut self, conn: ConnId, seq: i64, args: &Value) -> Vec<Out> {
        let mine = match FunctionBreakpoint::parse_all(args) {
            Ok(b) => b,
            Err(problem) => {
                let message = format!("function breakpoints not set: {problem}");
                return vec![self.respond(conn, seq, "setFunctionBreakpoints", Err(&message))];
            }
        };
        if mine.is_empty() {
            self.function_breakpoints.remove(&conn);
        } else {
            self.function_breakpoints.insert(conn, mine.clone());
        }
        vec![self.merge_function_breakpoints(Some((conn, seq, mine)))]
    }

    /// Sends everyone's function breakpoints upstream, one per function.
    pub(super) fn merge_function_breakpoints(&mut self, reply: Option<(ConnId, i64, Vec<FunctionBreakpoint>)>) -> Out {
        let sent = merge_function_breakpoints(self.function_breakpoints.values(), self.or);
        let args = json!({ "breakpoints": sent.iter().map(FunctionBreakpoint::to_dap).collect::<Vec<_>>() });
        self.upstream("setFunctionBreakpoints", args, Pending::Functions { sent, reply })
    }

    /// Whoever asked gets the adapter's result for each of their own function breakpoints,
    /// with a note where theirs was merged.
    pub(super) fn answer_function_breakpoints(
        &mut self,
        sent: Vec<FunctionBreakpoint>,
        reply: Option<(ConnId, i64, Vec<FunctionBreakpoint>)>,
        msg: &Value,
    ) -> Vec<Out> {
        let Some((conn, seq, mine)) = reply.filter(|(conn, ..)| self.clients.contains_key(conn)) else {
            return Vec::new();
        };
        let failure = message_of(msg);
        if !msg.get("success").and_then(Value::as_bool).unwrap_or(false) {
            return vec![self.respond(conn, seq, "setFunctionBreakpoints", Err(failure.as_str()))];
        }
        let results = msg.pointer("/body/breakpoints").and_then(Value::as_array);
        let answers: Vec<Value> = mine
            .iter()
            .map(|b| {
                let i = sent.iter().position(|s| s.name == b.name);
                let mut result = i
                    .and_then(|i| results.and_then(|r| r.get(i)).cloned())
                    .unwrap_or_else(|| json!({ "verified": false, "message": failure }));
                if let (Some(note), Some(r)) = (i.and_then(|i| function_note(b, &sent[i])), result.as_object_mut()) {
                    r.insert("message".into(), json!(note));
                }
                result
            })
            .collect();
        vec![self.respond(
            conn,
            seq,
            "setFunctionBreakpoints",
            Ok(json!({ "breakpoints": answers })),
        )]
    }
}
