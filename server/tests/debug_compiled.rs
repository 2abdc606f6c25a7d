//! Debugging compiled languages through the room socket, against real Docker and the local
//! images: C, C++ and Rust under lldb, Go under Delve, and the same checks for Python, whose
//! debugger is prestarted (attached to, not launched). Each program reads a line, stops at a
//! breakpoint, reads a line typed while it was stopped, then one typed after it went on (the
//! last with end-of-file), and exits with a code it computed.

mod support;

use mesh_protocol::{ClientMessage, ServerMessage};
use mesh_testkit::{TestServer, YClient};
use serde_json::json;
use support::{daps, ended, event, joined, request, top_frame};

/// Line 12 is `b = square(a)`, with `a` = 7; `square` is on lines 4-5; the exit code is 9.
const C: &str = r#"#include <stdio.h>
#include <string.h>

int square(int n) {
    return n * n;
}

int main(void) {
    char first[64] = "", second[64] = "", third[64] = "";
    fgets(first, sizeof first, stdin);
    int a = 7;
    int b = square(a);
    printf("first=%s b=%d\n", strtok(first, "\n"), b);
    fflush(stdout);
    fgets(second, sizeof second, stdin);
    printf("second=%s\n", strtok(second, "\n"));
    fflush(stdout);
    if (!fgets(third, sizeof third, stdin)) strcpy(third, "(eof)");
    printf("third=%s|\n", third);
    return b - 40;
}
"#;

/// The same shape in Rust: line 12 is `let b = square(a);`.
const RUST: &str = r#"use std::io::{self, BufRead, Read};

fn square(n: i32) -> i32 {
    n * n
}

fn main() {
    let stdin = io::stdin();
    let mut first = String::new();
    stdin.lock().read_line(&mut first).unwrap();
    let a = 7;
    let b = square(a);
    println!("first={} b={}", first.trim(), b);
    let mut second = String::new();
    stdin.lock().read_line(&mut second).unwrap();
    println!("second={}", second.trim());
    let mut third = String::new();
    stdin.lock().read_to_string(&mut third).unwrap();
    println!("third={}|", third);
    std::process::exit(b - 40);
}
"#;

/// And in Go: line 18 is `b := square(a)`, `square` on lines 10-11.
const GO: &str = r#"package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
)

func square(n int) int {
	return n * n
}

func main() {
	in := bufio.NewReader(os.Stdin)
	first, _ := in.ReadString('\n')
	a := 7
	b := square(a)
	fmt.Printf("first=%s b=%d\n", first[:len(first)-1], b)
	second, _ := in.ReadString('\n')
	fmt.Printf("second=%s\n", second[:len(second)-1])
	third, _ := io.ReadAll(in)
	fmt.Printf("third=%s|\n", third)
	os.Exit(b - 40)
}
"#;

/// And in Python, which is not compiled but runs prestarted: line 10 is `b = square(a)`.
const PYTHON: &str = r#"import sys


def square(n):
    return n * n


first = sys.stdin.readline()
a = 7
b = square(a)
print("first=%s b=%d" % (first.strip(), b))
second = sys.stdin.readline()
print("second=%s" % second.strip())
third = sys.stdin.read()
print("third=%s|" % third)
sys.exit(b - 40)
"#;

/// What differs between the languages in [`debug_compiled`].
struct Case {
    file: &'static str,
    source: &'static str,
    /// The line of `b = square(a)`.
    line: i64,
    /// What `threads` must name (Go's goroutines are its threads).
    thread_name: &'static str,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_c_program_reads_its_stdin_under_lldb() {
    debug_compiled(Case {
        file: "prog.c",
        source: C,
        line: 12,
        thread_name: "main",
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpp_program_reads_its_stdin_under_lldb() {
    // The C program is valid C++ too: built with g++ -g -O0 and run as /work/main.cpp.
    debug_compiled(Case {
        file: "prog.cpp",
        source: C,
        line: 12,
        thread_name: "main",
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_program_under_lldb() {
    debug_compiled(Case {
        file: "src/main.rs",
        source: RUST,
        line: 12,
        thread_name: "main",
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_go_program_under_delve() {
    debug_compiled(Case {
        file: "cmd/hello.go",
        source: GO,
        line: 18,
        thread_name: "main.main",
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prestarted_python_program_reads_its_stdin() {
    debug_compiled(Case {
        file: "tools/read.py",
        source: PYTHON,
        line: 10,
        thread_name: "MainThread",
    })
    .await;
}

/// The room's run view of the session: everything the program printed so far.
fn printed(c: &YClient, id: &str) -> String {
    c.mesh_messages()
        .into_iter()
        .filter_map(|m| match m {
            ServerMessage::RunOutput { run_id, data, .. } if run_id == id => Some(data),
            _ => None,
        })
        .collect()
}

fn input(c: &YClient, id: &str, data: &str, eof: bool) {
    c.send_mesh(&ClientMessage::Input {
        run_id: id.into(),
        data: data.into(),
        eof,
    });
}

/// Breakpoint, threads, variables, evaluate, steps in and out, stdin before, while and after
/// the stop, output and exit code, for one program.
async fn debug_compiled(case: Case) {
    let server = TestServer::start_with(&["--run-images", "local"]).unwrap();
    let session = server.create_session("debug-compiled").await.unwrap();
    let ada = YClient::connect_mesh(&server.ws_url(&session, &session.created.writer_token), "ada")
        .await
        .unwrap();
    ada.wait_synced().await.unwrap();
    ada.insert(case.file, 0, case.source);
    ada.send_mesh(&ClientMessage::DebugStart {
        path: case.file.into(),
        language: None,
    });
    let id = joined(&ada).await;
    event(&ada, "initialized", 1).await;
    // The entry file runs as the language's main file, whatever its room path.
    let main = ada
        .mesh_messages()
        .into_iter()
        .find_map(|m| match m {
            ServerMessage::DebugJoined { aliases, .. } => {
                aliases.into_iter().find(|(_, room)| room == case.file).map(|(c, _)| c)
            }
            _ => None,
        })
        .expect("the entry file has an alias");
    let bp = request(
        &ada,
        &id,
        1,
        "setBreakpoints",
        json!({"source": {"path": main}, "breakpoints": [{"line": case.line}]}),
    )
    .await;
    assert_eq!(bp["body"]["breakpoints"][0]["verified"], true, "{bp}");
    request(&ada, &id, 2, "configurationDone", json!({})).await;

    // The program waits for its first line; typed now, it reaches the breakpoint.
    input(&ada, &id, "one\n", false);
    let stop = event(&ada, "stopped", 1).await;
    assert_eq!(stop["body"]["reason"], "breakpoint", "{stop}");
    let thread = stop["body"]["threadId"].clone();
    let threads = request(&ada, &id, 3, "threads", json!({})).await;
    assert!(
        threads["body"]["threads"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"].as_str().unwrap_or("").contains(case.thread_name)),
        "{threads}"
    );
    let frame = top_frame(&ada, &id, 4).await;
    assert_eq!(
        (frame["line"].as_i64(), frame["source"]["path"].as_str()),
        (Some(case.line), Some(main.as_str())),
        "{frame}"
    );
    // Typed while it is stopped: read once it goes on.
    input(&ada, &id, "two\n", false);
    let scopes = request(&ada, &id, 6, "scopes", json!({"frameId": frame["id"]})).await;
    let vars = request(
        &ada,
        &id,
        7,
        "variables",
        json!({"variablesReference": scopes["body"]["scopes"][0]["variablesReference"]}),
    )
    .await;
    let a = vars["body"]["variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "a")
        .cloned();
    assert_eq!(a.map(|v| v["value"].clone()), Some(json!("7")), "{vars}");
    let eval = request(
        &ada,
        &id,
        8,
        "evaluate",
        json!({"expression": "a * 6", "frameId": frame["id"], "context": "watch"}),
    )
    .await;
    assert_eq!(eval["body"]["result"], "42", "{eval}");

    request(&ada, &id, 9, "stepIn", json!({"threadId": thread})).await;
    event(&ada, "stopped", 2).await;
    let inner = top_frame(&ada, &id, 10).await;
    assert!(inner["name"].as_str().unwrap_or("").contains("square"), "{inner}");
    request(&ada, &id, 12, "stepOut", json!({"threadId": thread})).await;
    event(&ada, "stopped", 3).await;
    assert_eq!(top_frame(&ada, &id, 13).await["line"].as_i64(), Some(case.line));
    request(&ada, &id, 15, "next", json!({"threadId": thread})).await;
    event(&ada, "stopped", 4).await;
    assert_eq!(top_frame(&ada, &id, 16).await["line"].as_i64(), Some(case.line + 1));

    // It goes on: both lines typed so far were read, then it waits for the third, typed now.
    request(&ada, &id, 18, "continue", json!({"threadId": thread})).await;
    ada.wait_for("the second line read", |c| printed(c, &id).contains("second=two"))
        .await
        .unwrap_or_else(|e| panic!("{e}: {:?}", printed(&ada, &id)));
    input(&ada, &id, "three", true);
    let end = ended(&ada).await;
    assert_eq!(
        end,
        (Some(9), None),
        "{:#?}",
        daps(&ada).iter().rev().take(8).collect::<Vec<_>>()
    );
    let out = printed(&ada, &id);
    assert!(
        out.contains("first=one b=49") && out.contains("third=three|"),
        "{out:?}"
    );
    // The program's output reached the debug console of the participant too.
    let console: String = daps(&ada)
        .into_iter()
        .filter(|m| m["event"] == "output" && m["body"]["category"] == "stdout")
        .filter_map(|m| m["body"]["output"].as_str().map(str::to_owned))
        .collect();
    assert!(console.contains("second=two"), "{console:?}");
}

/// A prestarted Python program's output through every way it can write: `print`,
/// `sys.stderr`, `os.write` to descriptors 1 and 2, a child process, with a breakpoint on
/// line 9 after them and more output after it.
const PYTHON_DESCRIPTORS: &str = r#"import os
import subprocess
import sys

print("printed")
sys.stderr.write("stderr-text\n")
os.write(1, b"fd-one\n")
os.write(2, b"fd-two\n")
subprocess.run(["echo", "child-echo"])
os.write(1, b"after-stop\n")
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prestarted_python_program_shows_what_it_writes_to_its_descriptors() {
    let server = TestServer::start_with(&["--run-images", "local"]).unwrap();
    let session = server.create_session("debug-descriptors").await.unwrap();
    let ada = YClient::connect_mesh(&server.ws_url(&session, &session.created.writer_token), "ada")
        .await
        .unwrap();
    ada.wait_synced().await.unwrap();
    ada.insert("main.py", 0, PYTHON_DESCRIPTORS);
    ada.send_mesh(&ClientMessage::DebugStart {
        path: "main.py".into(),
        language: None,
    });
    let id = joined(&ada).await;
    event(&ada, "initialized", 1).await;
    let bp = request(
        &ada,
        &id,
        1,
        "setBreakpoints",
        json!({"source": {"path": "/work/main.py"}, "breakpoints": [{"line": 10}]}),
    )
    .await;
    assert_eq!(bp["body"]["breakpoints"][0]["verified"], true, "{bp}");
    request(&ada, &id, 2, "configurationDone", json!({})).await;
    let stop = event(&ada, "stopped", 1).await;
    // Everything written before the stop is shown by then, each once, on its stream.
    let console = |category: &str| -> String {
        daps(&ada)
            .into_iter()
            .filter(|m| m["event"] == "output" && m["body"]["category"] == category)
            .filter_map(|m| m["body"]["output"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(console("stdout"), "printed\nfd-one\nchild-echo\n");
    assert_eq!(console("stderr"), "stderr-text\nfd-two\n");
    request(&ada, &id, 3, "continue", json!({"threadId": stop["body"]["threadId"]})).await;
    assert_eq!(ended(&ada).await, (Some(0), None));
    assert_eq!(console("stdout"), "printed\nfd-one\nchild-echo\nafter-stop\n");
    // The room's run view shows the same, once, each on its stream (the two streams may
    // interleave within a line: `print` writes the text and the newline separately).
    let stream = |which: mesh_protocol::messages::RunStream| -> String {
        ada.mesh_messages()
            .into_iter()
            .filter_map(|m| match m {
                ServerMessage::RunOutput { run_id, stream, data } if run_id == id && stream == which => Some(data),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        stream(mesh_protocol::messages::RunStream::Stdout),
        "printed\nfd-one\nchild-echo\nafter-stop\n"
    );
    assert_eq!(
        stream(mesh_protocol::messages::RunStream::Stderr),
        "stderr-text\nfd-two\n"
    );
}
