//! `debug_hub`: the server's debug hub (`server/src/debug/hub.rs`) fed DAP messages from
//! participants and from the adapter, both untrusted: participants are anyone with a link,
//! and the adapter shares its container with the program being debugged.
//!
//! The input is a sequence of records. A record's first byte says who sends the rest (a
//! JSON value): `0xFF` the adapter, otherwise participant `b % 4` with the role `b / 4 % 3`
//! (writer, reader, host); `0xFE` joins participant `b % 4` of the next byte, `0xFD` makes
//! them leave, `0xFC` expires waiting requests. A fresh hub (participant 0 started it) has
//! its `initialize` answered and its `initialized` event sent first, so inputs reach the
//! attached state.
//!
//! Invariants checked beyond "no crash": everything the hub sends the adapter is a request
//! (or its refusal of a reverse request) with a fresh `seq`; a `setBreakpoints` it sends holds at most one breakpoint per line, with
//! only the fields the hub rebuilds and every text within the hub's limit; the same for the
//! merged function breakpoints (one per name) and exception filters.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use mesh_protocol::messages::Role;
use mesh_server::debug::breakpoints::MAX_EXPRESSION_BYTES;
use mesh_server::debug::hub::{Hub, Out, Start};
use serde_json::{json, Value};

use super::{Features, Shape, Target};
use crate::framing::records;

/// The target.
pub const TARGET: Target = Target {
    name: "debug_hub",
    about: "the debug hub (server/src/debug/hub.rs): participants' and the adapter's DAP messages",
    run,
    shape: Shape::Sequence,
    dictionary: &[
        b"\"type\":\"request\"",
        b"\"type\":\"response\"",
        b"\"type\":\"event\"",
        b"\"command\":\"setBreakpoints\"",
        b"\"command\":\"setExceptionBreakpoints\"",
        b"\"command\":\"setFunctionBreakpoints\"",
        b"\"filterOptions\":[{\"filterId\":\"raised\"}]",
        b"\"name\":",
        b"\"command\":\"restart\"",
        b"\"command\":\"configurationDone\"",
        b"\"command\":\"disconnect\"",
        b"\"event\":\"stopped\"",
        b"\"event\":\"terminated\"",
        b"\"event\":\"initialized\"",
        b"\"condition\":",
        b"\"hitCondition\":",
        b"\"logMessage\":",
        b"\"line\":",
        b"\"request_seq\":",
        b"\"source\":{\"path\":\"/work/main.py\"}",
    ],
    max_len: 16 * 1024,
};

/// The kinds of record; see the module docs.
const ADAPTER: u8 = 0xFF;
const JOIN: u8 = 0xFE;
const LEAVE: u8 = 0xFD;
const EXPIRE: u8 = 0xFC;

fn run(input: &[u8], fx: &mut Features) {
    let files = BTreeSet::from(["/work/main.py".to_owned(), "/work/lib.py".to_owned()]);
    let start = Start {
        command: "launch",
        arguments: json!({"program": "/work/main.py"}),
    };
    let (mut hub, first) = Hub::new(0, start, files, "python");
    let mut seen = BTreeSet::new();
    let mut outs = first;
    check(&outs, &mut seen, fx);
    hub.join(0);
    let init = outs.iter().find_map(adapter_request).expect("the hub initializes");
    outs = hub.from_adapter(json!({"type": "response", "seq": 1, "request_seq": init["seq"], "success": true, "command": "initialize", "body": {}}));
    outs.extend(hub.from_adapter(json!({"type": "event", "seq": 2, "event": "initialized"})));
    check(&outs, &mut seen, fx);
    for record in records(input) {
        let Some((&who, rest)) = record.split_first() else {
            continue;
        };
        let outs = match who {
            JOIN => hub.join(u64::from(rest.first().copied().unwrap_or(0) % 4)),
            LEAVE => hub.leave(u64::from(rest.first().copied().unwrap_or(0) % 4)),
            EXPIRE => hub.expire(Instant::now() + Duration::from_secs(60), Duration::from_secs(30)),
            _ => {
                let Ok(msg) = serde_json::from_slice::<Value>(rest) else {
                    fx.hit("not-json");
                    continue;
                };
                if who == ADAPTER {
                    fx.hit("from-adapter");
                    hub.from_adapter(msg)
                } else {
                    let role = [Role::Writer, Role::Reader, Role::Host][usize::from(who / 4 % 3)];
                    fx.hit(&format!("from-client-{role:?}"));
                    hub.from_client(u64::from(who % 4), role, msg)
                }
            }
        };
        if outs.iter().any(|o| matches!(o, Out::Restart)) {
            fx.hit("restart");
            check(&hub.restarted(), &mut seen, fx);
        }
        check(&outs, &mut seen, fx);
    }
}

fn adapter_request(o: &Out) -> Option<&Value> {
    match o {
        Out::Adapter(v) => Some(v),
        _ => None,
    }
}

/// The invariants of what the hub sends the adapter.
fn check(outs: &[Out], seen: &mut BTreeSet<i64>, fx: &mut Features) {
    for o in outs {
        match o {
            Out::Adapter(msg) => {
                // Requests, and answers to the adapter's reverse requests (refusals).
                let kind = msg["type"].as_str();
                assert!(
                    matches!(kind, Some("request" | "response")),
                    "the hub sent the adapter {msg}"
                );
                let seq = msg["seq"].as_i64().expect("an upstream request has an integer seq");
                assert!(seen.insert(seq), "the hub reused upstream seq {seq}");
                let command = msg["command"].as_str().unwrap_or("");
                fx.hit(&format!("upstream-{command}"));
                // A refused reverse request names the adapter's command: only the hub's own
                // requests carry what it rebuilt.
                match command {
                    _ if kind != Some("request") => {}
                    "setBreakpoints" => check_breakpoints(&msg["arguments"]["breakpoints"], fx),
                    "setFunctionBreakpoints" => check_functions(&msg["arguments"]["breakpoints"], fx),
                    "setExceptionBreakpoints" => check_filters(&msg["arguments"], fx),
                    _ => {}
                }
            }
            Out::Client(..) => fx.hit("to-client"),
            Out::Refused(..) => fx.hit("refused"),
            Out::Fatal(_) => fx.hit("fatal"),
            Out::Joined(..) => fx.hit("joined"),
            Out::Breakpoints(..) => fx.hit("breakpoint-lines"),
            Out::Output { .. } => fx.hit("output"),
            Out::Restart => {}
        }
    }
}

fn check_breakpoints(list: &Value, fx: &mut Features) {
    let list = list.as_array().expect("breakpoints upstream are an array");
    let mut lines = BTreeSet::new();
    for b in list {
        let obj = b.as_object().expect("a breakpoint upstream is an object");
        let line = b["line"].as_u64().expect("a breakpoint upstream has a line");
        assert!(line >= 1 && lines.insert(line), "line {line} twice or zero upstream");
        for (key, value) in obj {
            match key.as_str() {
                "line" | "column" => assert!(value.as_u64().is_some_and(|n| n >= 1)),
                "condition" | "hitCondition" | "logMessage" => {
                    let text = value.as_str().expect("a text field is a string");
                    fx.hit(&format!("merged-{key}"));
                    // Joined conditions may add "(", ")" and " or " per participant.
                    assert!(
                        text.len() <= 4 * (MAX_EXPRESSION_BYTES + 8),
                        "{key} of {} bytes",
                        text.len()
                    );
                }
                other => panic!("the hub passed on a field it does not rebuild: {other}"),
            }
        }
    }
    fx.count("breakpoints-upstream", list.len());
}

fn bounded(text: &Value, key: &str) {
    let text = text
        .as_str()
        .unwrap_or_else(|| panic!("{key} upstream is not a string"));
    // Joined conditions may add "(", ")" and " or " per participant.
    assert!(
        text.len() <= 4 * (MAX_EXPRESSION_BYTES + 8),
        "{key} of {} bytes",
        text.len()
    );
}

fn check_functions(list: &Value, fx: &mut Features) {
    let list = list.as_array().expect("function breakpoints upstream are an array");
    let mut names = BTreeSet::new();
    for b in list {
        let obj = b.as_object().expect("a function breakpoint upstream is an object");
        let name = b["name"].as_str().expect("a function breakpoint upstream has a name");
        assert!(names.insert(name.to_owned()), "function {name} twice upstream");
        for (key, value) in obj {
            match key.as_str() {
                "name" | "condition" | "hitCondition" => bounded(value, key),
                other => panic!("the hub passed on a function breakpoint field it does not rebuild: {other}"),
            }
        }
    }
    fx.count("function-breakpoints-upstream", list.len());
}

fn check_filters(args: &Value, fx: &mut Features) {
    let obj = args.as_object().expect("exception filters upstream are an object");
    for (key, value) in obj {
        let list = value.as_array().expect("filters upstream are arrays");
        match key.as_str() {
            "filters" => list.iter().for_each(|f| bounded(f, "filter")),
            "filterOptions" => {
                for o in list {
                    bounded(&o["filterId"], "filterId");
                    if let Some(c) = o.get("condition") {
                        bounded(c, "condition");
                    }
                }
                fx.hit("filter-options-upstream");
            }
            other => panic!("the hub passed on an exception field it does not rebuild: {other}"),
        }
    }
}
