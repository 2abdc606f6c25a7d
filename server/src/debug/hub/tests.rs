//! The hub's rules, one test each.

use super::*;

const ADA: ConnId = 1;
const BOB: ConnId = 2;
const RITA: ConnId = 3;

fn launch(arguments: Value) -> Start {
    Start {
        command: "launch",
        arguments,
    }
}

fn adapter_msgs(out: &[Out]) -> Vec<Value> {
    out.iter()
        .filter_map(|o| match o {
            Out::Adapter(v) => Some(v.clone()),
            _ => None,
        })
        .collect()
}

fn to(out: &[Out], conn: ConnId) -> Vec<Value> {
    out.iter()
        .filter_map(|o| match o {
            Out::Client(c, v) if *c == conn => Some(v.clone()),
            _ => None,
        })
        .collect()
}

fn respond_to(req: &Value, body: Value) -> Value {
    json!({"type": "response", "seq": 900, "request_seq": req["seq"], "command": req["command"], "success": true, "body": body})
}

/// A hub through initialize, launch and `initialized`, with Ada (starter) and Bob attached.
fn ready_hub() -> Hub {
    let files = BTreeSet::from(["/work/main.py".to_string(), "/work/lib.py".to_string()]);
    let (mut hub, out) = Hub::new(ADA, launch(json!({"program": "/work/main.py"})), files, "python");
    hub.join(ADA);
    hub.join(BOB);
    let init = &adapter_msgs(&out)[0];
    assert_eq!(init["command"], "initialize");
    let out = hub.from_adapter(respond_to(init, json!({"supportsConfigurationDoneRequest": true})));
    let launch = &adapter_msgs(&out)[0];
    assert_eq!(launch["command"], "launch");
    assert_eq!(launch["arguments"]["program"], "/work/main.py");
    let out = hub.from_adapter(json!({"type": "event", "seq": 5, "event": "initialized"}));
    for c in [ADA, BOB] {
        assert!(out.contains(&Out::Joined(
            c,
            json!({"supportsConfigurationDoneRequest": true, "supportsRestartRequest": true})
        )));
        assert_eq!(to(&out, c)[0]["event"], "initialized");
    }
    hub
}

fn req(seq: i64, command: &str, args: Value) -> Value {
    json!({"type": "request", "seq": seq, "command": command, "arguments": args})
}

#[test]
fn request_seq_is_rewritten_per_participant() {
    let mut hub = ready_hub();
    let a = adapter_msgs(&hub.from_client(ADA, Role::Writer, req(7, "threads", Value::Null)))[0].clone();
    let b = adapter_msgs(&hub.from_client(BOB, Role::Writer, req(7, "threads", json!({}))))[0].clone();
    assert_ne!(a["seq"], b["seq"], "upstream seqs are the hub's own");
    let out = hub.from_adapter(respond_to(&b, json!({"threads": []})));
    let got = to(&out, BOB);
    assert_eq!(got[0]["request_seq"], 7);
    assert!(to(&out, ADA).is_empty(), "a response goes only to who asked");
    // Each participant's messages are numbered in its own sequence.
    let first_bob_seq = got[0]["seq"].as_i64().unwrap();
    let out = hub.from_adapter(json!({"type": "event", "seq": 77, "event": "thread", "body": {}}));
    assert_eq!(to(&out, BOB)[0]["seq"].as_i64().unwrap(), first_bob_seq + 1);
    assert_eq!(to(&out, ADA).len(), 1, "events go to everyone");
}

#[test]
fn breakpoints_are_merged_and_answered_per_participant() {
    let mut hub = ready_hub();
    let src = json!({"path": "/work/main.py"});
    let out = hub.from_client(
        ADA,
        Role::Writer,
        req(
            3,
            "setBreakpoints",
            json!({"source": src, "breakpoints": [{"line": 4}]}),
        ),
    );
    let up = adapter_msgs(&out)[0].clone();
    assert_eq!(up["arguments"]["breakpoints"], json!([{"line": 4}]));
    assert!(out.contains(&Out::Breakpoints("/work/main.py".into(), vec![4])));
    hub.from_adapter(respond_to(
        &up,
        json!({"breakpoints": [{"id": 1, "verified": true, "line": 4}]}),
    ));

    let out = hub.from_client(
        BOB,
        Role::Writer,
        req(
            9,
            "setBreakpoints",
            json!({"source": src, "breakpoints": [{"line": 2}, {"line": 4}]}),
        ),
    );
    let up = adapter_msgs(&out)[0].clone();
    assert_eq!(up["arguments"]["breakpoints"], json!([{"line": 2}, {"line": 4}]));
    let out = hub.from_adapter(respond_to(
        &up,
        json!({"breakpoints": [{"id": 2, "verified": true, "line": 2}, {"id": 1, "verified": true, "line": 4}]}),
    ));
    let resp = &to(&out, BOB)[0];
    assert_eq!(resp["request_seq"], 9);
    assert_eq!(resp["body"]["breakpoints"][0]["id"], 2);
    assert_eq!(resp["body"]["breakpoints"][1]["id"], 1);

    // Bob leaves: only Ada's breakpoint stays upstream.
    let out = hub.leave(BOB);
    assert_eq!(adapter_msgs(&out)[0]["arguments"]["breakpoints"], json!([{"line": 4}]));
}

#[test]
fn a_breakpoint_outside_the_room_is_unverified_and_never_sent() {
    let mut hub = ready_hub();
    let out = hub.from_client(
        ADA,
        Role::Writer,
        req(
            3,
            "setBreakpoints",
            json!({"source": {"path": "/etc/passwd"}, "breakpoints": [{"line": 1}]}),
        ),
    );
    assert!(adapter_msgs(&out).is_empty());
    let bp = &to(&out, ADA)[0]["body"]["breakpoints"][0];
    assert_eq!(bp["verified"], false);
    assert!(bp["message"].as_str().unwrap().contains("not a file of this room"));
}

#[test]
fn readers_inspect_but_do_not_control() {
    let mut hub = ready_hub();
    hub.join(RITA);
    for command in ["continue", "next", "evaluate", "setVariable", "pause"] {
        let out = hub.from_client(RITA, Role::Reader, req(1, command, json!({"threadId": 1})));
        assert!(adapter_msgs(&out).is_empty(), "{command} reached the adapter");
        let resp = &to(&out, RITA)[0];
        assert_eq!(resp["success"], false);
        assert!(resp["message"].as_str().unwrap().contains("readers may inspect"));
    }
    let out = hub.from_client(RITA, Role::Reader, req(2, "stackTrace", json!({"threadId": 1})));
    assert_eq!(adapter_msgs(&out)[0]["command"], "stackTrace");
    let out = hub.from_client(RITA, Role::Reader, req(3, "terminate", json!({})));
    assert!(to(&out, RITA)[0]["message"]
        .as_str()
        .unwrap()
        .contains("only the participant who started"));
    // A reader's disconnect only detaches it.
    let out = hub.from_client(
        RITA,
        Role::Reader,
        req(4, "disconnect", json!({"terminateDebuggee": true})),
    );
    assert!(adapter_msgs(&out).is_empty());
    assert!(!hub.has(RITA));
}

#[test]
fn only_the_starter_or_the_host_ends_the_session() {
    let mut hub = ready_hub();
    let out = hub.from_client(
        BOB,
        Role::Writer,
        req(5, "disconnect", json!({"terminateDebuggee": true})),
    );
    assert!(adapter_msgs(&out).is_empty(), "Bob only detaches");
    assert_eq!(to(&out, BOB)[0]["success"], true);
    let out = hub.from_client(
        ADA,
        Role::Writer,
        req(6, "disconnect", json!({"terminateDebuggee": true})),
    );
    assert_eq!(adapter_msgs(&out)[0]["command"], "disconnect");
}

#[test]
fn a_late_joiner_gets_initialized_and_then_the_current_stop() {
    let mut hub = ready_hub();
    let out = hub.from_client(ADA, Role::Writer, req(1, "configurationDone", Value::Null));
    let up = adapter_msgs(&out)[0].clone();
    hub.from_adapter(respond_to(&up, json!({})));
    let stop = json!({"type": "event", "seq": 40, "event": "stopped", "body": {"reason": "breakpoint", "threadId": 1}});
    hub.from_adapter(stop);

    let out = hub.join(RITA);
    assert!(matches!(out[0], Out::Joined(RITA, _)));
    assert_eq!(to(&out, RITA)[0]["event"], "initialized");
    let out = hub.from_client(RITA, Role::Reader, req(1, "configurationDone", json!({})));
    assert!(adapter_msgs(&out).is_empty(), "configurationDone goes upstream once");
    let got = to(&out, RITA);
    assert_eq!(got[0]["success"], true);
    assert_eq!(got[1]["event"], "stopped");
    assert_eq!(got[1]["body"]["threadId"], 1);

    // Once someone steps, there is no stop to replay.
    let out = hub.from_client(ADA, Role::Writer, req(2, "next", json!({"threadId": 1})));
    let up = adapter_msgs(&out)[0].clone();
    hub.from_adapter(respond_to(&up, json!({})));
    hub.join(4);
    let out = hub.from_client(4, Role::Writer, req(1, "configurationDone", json!({})));
    assert_eq!(to(&out, 4).len(), 1);
}

#[test]
fn bad_messages_and_silent_adapters_get_clear_answers() {
    let mut hub = ready_hub();
    let out = hub.from_client(ADA, Role::Writer, json!({"type": "event", "event": "x"}));
    assert!(matches!(&out[0], Out::Refused(ADA, m) if m.contains("only requests")));
    let out = hub.from_client(
        ADA,
        Role::Writer,
        json!({"type": "request", "seq": "x", "command": "threads"}),
    );
    assert!(matches!(&out[0], Out::Refused(ADA, m) if m.contains("seq")));
    let out = hub.from_client(9, Role::Writer, req(1, "threads", json!({})));
    assert!(matches!(&out[0], Out::Refused(9, m) if m.contains("not attached")));

    hub.from_client(ADA, Role::Writer, req(8, "threads", json!({})));
    let out = hub.expire(Instant::now() + REQUEST_TIMEOUT, REQUEST_TIMEOUT);
    let resp = &to(&out, ADA)[0];
    assert_eq!(
        (resp["request_seq"].as_i64(), resp["success"].as_bool()),
        (Some(8), Some(false))
    );
    assert!(resp["message"].as_str().unwrap().contains("did not answer threads"));
}

#[test]
fn a_failed_launch_is_fatal() {
    let (mut hub, out) = Hub::new(ADA, launch(json!({})), BTreeSet::new(), "python");
    let out = hub.from_adapter(respond_to(&adapter_msgs(&out)[0], json!({})));
    let launch = adapter_msgs(&out)[0].clone();
    let out = hub.from_adapter(
        json!({"type": "response", "request_seq": launch["seq"], "success": false, "message": "no such file"}),
    );
    assert!(matches!(&out[0], Out::Fatal(m) if m.contains("no such file")));
}

#[test]
fn the_hub_disconnects_a_terminated_adapter_itself() {
    let mut hub = ready_hub();
    let out = hub.from_adapter(json!({"type": "event", "seq": 50, "event": "terminated"}));
    assert_eq!(to(&out, BOB)[0]["event"], "terminated");
    assert_eq!(adapter_msgs(&out)[0]["command"], "disconnect");
    assert!(hub.is_terminated());
    let disconnect = adapter_msgs(&out)[0].clone();
    let out = hub.from_client(BOB, Role::Writer, req(3, "disconnect", json!({})));
    assert!(adapter_msgs(&out).is_empty());
    assert_eq!(to(&out, BOB)[0]["success"], true);
    // The session is over once the adapter answered; an exit code told on the way counts.
    assert!(!hub.is_finished());
    hub.from_adapter(json!({"type": "event", "seq": 51, "event": "exited", "body": {"exitCode": 3}}));
    hub.from_adapter(respond_to(&disconnect, json!({})));
    assert!(hub.is_finished());
    assert_eq!(hub.exit_code(), Some(3));
}

#[test]
fn the_program_starts_on_the_starters_configuration_done() {
    let mut hub = ready_hub();
    // Bob joined at once and configured first: answered, but nothing starts yet.
    let out = hub.from_client(BOB, Role::Writer, req(1, "configurationDone", json!({})));
    assert!(adapter_msgs(&out).is_empty(), "the program waits for the starter");
    assert_eq!(to(&out, BOB)[0]["success"], true);
    // Ada's breakpoints go upstream, then her configurationDone starts the program.
    let bp = json!({"source": {"path": "/work/main.py"}, "breakpoints": [{"line": 3}]});
    let out = hub.from_client(ADA, Role::Writer, req(2, "setBreakpoints", bp));
    assert_eq!(adapter_msgs(&out)[0]["command"], "setBreakpoints");
    let out = hub.from_client(ADA, Role::Writer, req(3, "configurationDone", json!({})));
    assert_eq!(adapter_msgs(&out)[0]["command"], "configurationDone");
    // The stop reaches Bob live.
    let out = hub.from_adapter(json!({"type": "event", "seq": 9, "event": "stopped", "body": {"threadId": 1}}));
    assert_eq!(to(&out, BOB)[0]["event"], "stopped");
}

#[test]
fn a_starter_who_leaves_before_configuring_does_not_hold_the_program() {
    let mut hub = ready_hub();
    hub.from_client(BOB, Role::Writer, req(1, "configurationDone", json!({})));
    let out = hub.leave(ADA);
    assert!(adapter_msgs(&out).iter().any(|m| m["command"] == "configurationDone"));
    // Without anyone waiting, the next one to configure starts it.
    let mut hub = ready_hub();
    hub.leave(ADA);
    let out = hub.from_client(BOB, Role::Writer, req(1, "configurationDone", json!({})));
    assert_eq!(adapter_msgs(&out)[0]["command"], "configurationDone");
}

#[test]
fn a_participant_attached_at_the_stop_does_not_get_it_twice() {
    let mut hub = ready_hub();
    let up = adapter_msgs(&hub.from_client(ADA, Role::Writer, req(1, "configurationDone", json!({}))))[0].clone();
    hub.from_adapter(respond_to(&up, json!({})));
    let out = hub.from_adapter(json!({"type": "event", "seq": 9, "event": "stopped", "body": {"threadId": 1}}));
    assert_eq!(to(&out, BOB)[0]["event"], "stopped");
    let out = hub.from_client(BOB, Role::Writer, req(1, "configurationDone", json!({})));
    assert_eq!(to(&out, BOB).len(), 1, "only the response: Bob saw the stop live");
}

fn set_bps(hub: &mut Hub, conn: ConnId, seq: i64, bps: Value) -> (Value, Vec<Out>) {
    let args = json!({"source": {"path": "/work/main.py"}, "breakpoints": bps});
    let out = hub.from_client(conn, Role::Writer, req(seq, "setBreakpoints", args));
    (adapter_msgs(&out)[0].clone(), out)
}

#[test]
fn conditions_hit_counts_and_logpoints_are_kept_per_participant_and_merged() {
    let mut hub = ready_hub();
    let (up, _) = set_bps(
        &mut hub,
        ADA,
        1,
        json!([{"line": 4, "condition": "x > 1"}, {"line": 6, "logMessage": "y={y}"}]),
    );
    assert_eq!(
        up["arguments"]["breakpoints"],
        json!([{"line": 4, "condition": "x > 1"}, {"line": 6, "logMessage": "y={y}"}])
    );
    hub.from_adapter(respond_to(
        &up,
        json!({"breakpoints": [{"verified": true, "line": 4}, {"verified": true, "line": 6}]}),
    ));
    // Bob's condition on line 4 joins Ada's; his hit count on line 9 is his alone.
    let (up, _) = set_bps(
        &mut hub,
        BOB,
        1,
        json!([{"line": 4, "condition": "y == 2"}, {"line": 9, "hitCondition": "3"}]),
    );
    assert_eq!(
        up["arguments"]["breakpoints"],
        json!([
            {"line": 4, "condition": "(x > 1) or (y == 2)"},
            {"line": 6, "logMessage": "y={y}"},
            {"line": 9, "hitCondition": "3"}
        ])
    );
    let out = hub.from_adapter(respond_to(
        &up,
        json!({"breakpoints": [{"verified": true, "line": 4}, {"verified": true, "line": 6}, {"verified": true, "line": 9}]}),
    ));
    let bob = &to(&out, BOB)[0]["body"]["breakpoints"];
    assert_eq!(bob.as_array().unwrap().len(), 2, "Bob hears of his own two only");
    assert!(bob[0]["message"].as_str().unwrap().contains("any of them"));
    assert!(bob[1].get("message").is_none(), "his hit count was set as he asked");
    // Bob leaves: Ada's own condition is what is left on line 4.
    let out = hub.leave(BOB);
    assert_eq!(
        adapter_msgs(&out)[0]["arguments"]["breakpoints"],
        json!([{"line": 4, "condition": "x > 1"}, {"line": 6, "logMessage": "y={y}"}])
    );
}

#[test]
fn malformed_breakpoints_are_refused_whole_and_keep_the_old_set() {
    let mut hub = ready_hub();
    let (up, _) = set_bps(&mut hub, ADA, 1, json!([{"line": 4}]));
    hub.from_adapter(respond_to(&up, json!({"breakpoints": [{"verified": true, "line": 4}]})));
    let args =
        json!({"source": {"path": "/work/main.py"}, "breakpoints": [{"line": 5}, {"line": 6, "condition": ["x"]}]});
    let out = hub.from_client(ADA, Role::Writer, req(2, "setBreakpoints", args));
    assert!(adapter_msgs(&out).is_empty(), "nothing reaches the adapter");
    let resp = &to(&out, ADA)[0];
    assert_eq!(resp["success"], false);
    assert!(resp["message"]
        .as_str()
        .unwrap()
        .contains("`condition` must be a string"));
    // Line 4 is still set: a later merge (Bob's) still carries it.
    let (up, _) = set_bps(&mut hub, BOB, 1, json!([{"line": 7}]));
    assert_eq!(up["arguments"]["breakpoints"], json!([{"line": 4}, {"line": 7}]));
}

#[test]
fn pause_and_watch_evaluation_are_for_writers() {
    let mut hub = ready_hub();
    let out = hub.from_client(BOB, Role::Writer, req(3, "pause", json!({"threadId": 1})));
    assert_eq!(adapter_msgs(&out)[0]["command"], "pause");
    let watch = json!({"expression": "x", "context": "watch", "frameId": 1});
    let out = hub.from_client(BOB, Role::Writer, req(4, "evaluate", watch.clone()));
    assert_eq!(adapter_msgs(&out)[0]["arguments"]["context"], "watch");
    hub.join(RITA);
    let out = hub.from_client(RITA, Role::Reader, req(1, "evaluate", watch));
    assert!(adapter_msgs(&out).is_empty(), "an expression may change the program");
}

#[test]
fn restart_is_the_hubs_own_and_puts_everything_back() {
    let mut hub = ready_hub();
    let (up, _) = set_bps(&mut hub, ADA, 1, json!([{"line": 4, "condition": "x > 1"}]));
    hub.from_adapter(respond_to(&up, json!({"breakpoints": [{"verified": true, "line": 4}]})));
    let filters = json!({"filters": ["raised"]});
    let out = hub.from_client(ADA, Role::Writer, req(2, "setExceptionBreakpoints", filters.clone()));
    let up = adapter_msgs(&out)[0].clone();
    hub.from_adapter(respond_to(&up, json!({})));
    let up = adapter_msgs(&hub.from_client(ADA, Role::Writer, req(3, "configurationDone", json!({}))))[0].clone();
    hub.from_adapter(respond_to(&up, json!({})));
    hub.from_adapter(json!({"type": "event", "seq": 9, "event": "stopped", "body": {"threadId": 1}}));
    // Bob asks for stack frames and sets a breakpoint, then restarts: both are answered, not
    // left hanging.
    hub.from_client(BOB, Role::Writer, req(4, "stackTrace", json!({"threadId": 1})));
    set_bps(&mut hub, BOB, 6, json!([{"line": 6}]));
    let out = hub.from_client(BOB, Role::Writer, req(5, "restart", json!({"arguments": {}})));
    assert!(out.contains(&Out::Restart));
    assert!(adapter_msgs(&out).is_empty(), "the old adapter hears nothing more");
    let bob = to(&out, BOB);
    for seq in [4, 6] {
        let answer = bob.iter().find(|m| m["request_seq"] == seq).unwrap();
        assert_eq!(answer["success"], false, "{answer}");
    }
    assert_eq!(bob.last().unwrap()["event"], "continued");
    assert_eq!(to(&out, ADA)[0]["event"], "continued");
    // Meanwhile requests wait for the new program.
    let out = hub.from_client(ADA, Role::Writer, req(6, "threads", json!({})));
    assert!(to(&out, ADA)[0]["message"].as_str().unwrap().contains("restarting"));

    // The fresh adapter: initialize, launch, initialized, then the replay.
    let init = adapter_msgs(&hub.restarted())[0].clone();
    assert_eq!(init["command"], "initialize");
    let launch = adapter_msgs(&hub.from_adapter(respond_to(&init, json!({}))))[0].clone();
    assert_eq!(launch["command"], "launch");
    let out = hub.from_adapter(json!({"type": "event", "seq": 2, "event": "initialized"}));
    let replay: Vec<Value> = adapter_msgs(&out);
    let commands: Vec<&str> = replay.iter().map(|m| m["command"].as_str().unwrap()).collect();
    assert_eq!(
        commands,
        ["setBreakpoints", "setExceptionBreakpoints", "configurationDone"]
    );
    assert_eq!(
        replay[0]["arguments"]["breakpoints"],
        json!([{"line": 4, "condition": "x > 1"}, {"line": 6}])
    );
    assert_eq!(replay[1]["arguments"], filters);
    assert!(
        !out.iter().any(|o| matches!(o, Out::Joined(..))),
        "nobody attaches twice"
    );
    let bob = to(&out, BOB);
    assert_eq!(
        (bob[0]["request_seq"].as_i64(), bob[0]["success"].as_bool()),
        (Some(5), Some(true))
    );
    // The session goes on as before.
    let out = hub.from_client(ADA, Role::Writer, req(7, "threads", json!({})));
    assert_eq!(adapter_msgs(&out)[0]["command"], "threads");
}

#[test]
fn readers_may_not_restart() {
    let mut hub = ready_hub();
    hub.join(RITA);
    let out = hub.from_client(RITA, Role::Reader, req(1, "restart", json!({})));
    assert!(!out.contains(&Out::Restart));
    assert!(to(&out, RITA)[0]["message"]
        .as_str()
        .unwrap()
        .contains("readers may inspect"));
}

#[test]
fn the_hub_attaches_to_a_prestarted_program_when_told_to() {
    let start = Start {
        command: "attach",
        arguments: json!({"connect": {"host": "127.0.0.1", "port": 5678}}),
    };
    let (mut hub, out) = Hub::new(ADA, start, BTreeSet::new(), "python");
    let out = hub.from_adapter(respond_to(&adapter_msgs(&out)[0], json!({})));
    let attach = &adapter_msgs(&out)[0];
    assert_eq!(attach["command"], "attach");
    assert_eq!(attach["arguments"]["connect"]["port"], 5678);
}

#[test]
fn exception_filters_are_kept_per_participant_and_removing_yours_keeps_others() {
    let mut hub = ready_hub();
    let out = hub.from_client(
        ADA,
        Role::Writer,
        req(1, "setExceptionBreakpoints", json!({"filters": ["raised"]})),
    );
    let up = adapter_msgs(&out)[0].clone();
    assert_eq!(up["arguments"], json!({"filters": ["raised"]}));
    let out = hub.from_adapter(respond_to(&up, json!({"breakpoints": [{"verified": true}]})));
    assert_eq!(
        (
            to(&out, ADA)[0]["request_seq"].as_i64(),
            to(&out, ADA)[0]["success"].as_bool()
        ),
        (Some(1), Some(true))
    );
    // Bob's editor sends its own (none at first, as editors do at configuration): Ada's stay.
    let out = hub.from_client(
        BOB,
        Role::Writer,
        req(1, "setExceptionBreakpoints", json!({"filters": []})),
    );
    assert_eq!(adapter_msgs(&out)[0]["arguments"], json!({"filters": ["raised"]}));
    let out = hub.from_client(
        BOB,
        Role::Writer,
        req(2, "setExceptionBreakpoints", json!({"filters": ["uncaught"]})),
    );
    assert_eq!(
        adapter_msgs(&out)[0]["arguments"],
        json!({"filters": ["raised", "uncaught"]})
    );
    // Ada clears hers: Bob's stays on.
    let out = hub.from_client(
        ADA,
        Role::Writer,
        req(2, "setExceptionBreakpoints", json!({"filters": []})),
    );
    assert_eq!(adapter_msgs(&out)[0]["arguments"], json!({"filters": ["uncaught"]}));
    // Bob leaves: his go with him.
    let out = hub.leave(BOB);
    assert_eq!(adapter_msgs(&out)[0]["arguments"], json!({"filters": []}));
    // A reader's are not set, and malformed ones are refused whole.
    hub.join(RITA);
    let out = hub.from_client(
        RITA,
        Role::Reader,
        req(1, "setExceptionBreakpoints", json!({"filters": ["raised"]})),
    );
    assert!(adapter_msgs(&out).is_empty());
    let out = hub.from_client(
        ADA,
        Role::Writer,
        req(3, "setExceptionBreakpoints", json!({"filters": "raised"})),
    );
    assert!(adapter_msgs(&out).is_empty());
    assert!(to(&out, ADA)[0]["message"]
        .as_str()
        .unwrap()
        .contains("`filters` must be an array"));
}

#[test]
fn function_breakpoints_are_kept_per_participant_merged_and_answered_for_ones_own() {
    let mut hub = ready_hub();
    let ada = json!({"breakpoints": [{"name": "square", "condition": "n > 3"}, {"name": "main"}]});
    let out = hub.from_client(ADA, Role::Writer, req(1, "setFunctionBreakpoints", ada));
    let up = adapter_msgs(&out)[0].clone();
    hub.from_adapter(respond_to(
        &up,
        json!({"breakpoints": [{"verified": true, "id": 1}, {"verified": true, "id": 2}]}),
    ));
    let bob = json!({"breakpoints": [{"name": "square", "condition": "n == 1"}]});
    let out = hub.from_client(BOB, Role::Writer, req(1, "setFunctionBreakpoints", bob));
    let up = adapter_msgs(&out)[0].clone();
    assert_eq!(
        up["arguments"]["breakpoints"],
        json!([{"name": "square", "condition": "(n > 3) or (n == 1)"}, {"name": "main"}]),
        "Python's or"
    );
    let out = hub.from_adapter(respond_to(
        &up,
        json!({"breakpoints": [{"verified": true, "id": 3}, {"verified": true, "id": 4}]}),
    ));
    let answer = &to(&out, BOB)[0];
    assert_eq!(answer["request_seq"], 1);
    let mine = answer["body"]["breakpoints"].as_array().unwrap();
    assert_eq!(mine.len(), 1, "only Bob's own: {answer}");
    assert_eq!(mine[0]["id"], 3);
    assert!(
        mine[0]["message"].as_str().unwrap().contains("any of them holds"),
        "{answer}"
    );
    // Bob removes his: Ada's are whole again.
    let out = hub.from_client(
        BOB,
        Role::Writer,
        req(2, "setFunctionBreakpoints", json!({"breakpoints": []})),
    );
    assert_eq!(
        adapter_msgs(&out)[0]["arguments"]["breakpoints"],
        json!([{"name": "square", "condition": "n > 3"}, {"name": "main"}])
    );
    // Ada leaves: none remain.
    let out = hub.leave(ADA);
    assert_eq!(adapter_msgs(&out)[0]["arguments"]["breakpoints"], json!([]));
}

#[test]
fn a_restart_sets_everyones_filters_and_function_breakpoints_merged() {
    let mut hub = ready_hub();
    hub.from_client(
        ADA,
        Role::Writer,
        req(1, "setExceptionBreakpoints", json!({"filters": ["raised"]})),
    );
    hub.from_client(
        BOB,
        Role::Writer,
        req(1, "setExceptionBreakpoints", json!({"filters": ["uncaught"]})),
    );
    hub.from_client(
        BOB,
        Role::Writer,
        req(2, "setFunctionBreakpoints", json!({"breakpoints": [{"name": "f"}]})),
    );
    hub.from_client(ADA, Role::Writer, req(2, "restart", json!({})));
    let init = adapter_msgs(&hub.restarted())[0].clone();
    let launch = adapter_msgs(&hub.from_adapter(respond_to(&init, json!({}))))[0].clone();
    hub.from_adapter(respond_to(&launch, json!({})));
    let out = hub.from_adapter(json!({"type": "event", "seq": 2, "event": "initialized"}));
    let replay = adapter_msgs(&out);
    let find = |c: &str| replay.iter().find(|m| m["command"] == c).cloned().unwrap();
    assert_eq!(
        find("setExceptionBreakpoints")["arguments"],
        json!({"filters": ["raised", "uncaught"]})
    );
    assert_eq!(
        find("setFunctionBreakpoints")["arguments"]["breakpoints"],
        json!([{"name": "f"}])
    );
    assert_eq!(replay.last().unwrap()["command"], "configurationDone");
}
