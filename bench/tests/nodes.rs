//! `mesh-bench --nodes` end to end, at a small load: real `mesh-server` nodes on the real
//! Postgres and Redis the bench starts. Speed is not asserted (benchmarks print, tests do
//! not time); what is: every scenario runs, every node appears in its tables, and nothing
//! typed through one node is missing at the clients of any node.

use std::process::Command;

/// The cells of the Markdown table whose title starts with `title`: its header, then rows.
fn table(out: &str, title: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut lines = out
        .lines()
        .skip_while(|l| !l.starts_with(&format!("### {title}")))
        .skip(1)
        .skip_while(|l| l.trim().is_empty());
    let cells = |l: &str| -> Vec<String> {
        l.trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect()
    };
    let header = cells(lines.next().unwrap_or_else(|| panic!("no table {title:?} in:\n{out}")));
    let rows = lines.skip(1).take_while(|l| l.starts_with('|')).map(cells).collect();
    (header, rows)
}

fn column(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name:?} in {header:?}"))
}

#[test]
fn every_update_typed_through_one_node_reaches_the_clients_of_every_node() {
    let out = Command::new(env!("CARGO_BIN_EXE_mesh-bench"))
        .arg("--mesh-server")
        .arg(mesh_testkit::server::server_bin())
        .args(["--nodes", "1,2", "--node-clients", "6", "--node-writers", "2"])
        .args(["--rate", "20", "--duration", "1", "--hop-observers", "2"])
        .args(["--join-storm", "6", "--room-mib", "1", "--markdown"])
        .output()
        .expect("running mesh-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "mesh-bench failed:\n{stdout}\n{stderr}");

    let (header, rows) = table(&stdout, "Fan-out through nodes");
    let (nodes, node, expected, received, lost) = (
        column(&header, "nodes"),
        column(&header, "node"),
        column(&header, "expected"),
        column(&header, "received"),
        column(&header, "lost"),
    );
    let named: Vec<(&str, &str)> = rows.iter().map(|r| (r[nodes].as_str(), r[node].as_str())).collect();
    assert_eq!(
        named,
        [
            ("1", "A"),
            ("1", "all nodes"),
            ("2", "A"),
            ("2", "B"),
            ("2", "all nodes")
        ]
    );
    for r in &rows {
        // 2 writers x 20/s x 1 s, each update to the 5 other clients: about 200 receipts.
        let want: u64 = r[expected].parse().unwrap();
        assert!(want > 0, "nothing was typed: {r:?}");
        assert_eq!(
            (r[received].as_str(), r[lost].as_str()),
            (r[expected].as_str(), "0"),
            "{r:?}"
        );
    }

    let (header, rows) = table(&stdout, "Cross-node hop");
    let (clients, expected, received, lost) = (
        column(&header, "clients"),
        column(&header, "expected"),
        column(&header, "received"),
        column(&header, "lost"),
    );
    assert_eq!(rows.len(), 2, "{rows:?}");
    for r in &rows {
        assert_eq!(r[clients], "2");
        assert!(r[expected].parse::<u64>().unwrap() > 0, "{r:?}");
        assert_eq!(
            (r[received].as_str(), r[lost].as_str()),
            (r[expected].as_str(), "0"),
            "{r:?}"
        );
    }
    assert!(stdout.contains("the hop adds"), "{stdout}");

    let (header, rows) = table(&stdout, "Join storm through nodes");
    let (nodes, node, clients, state) = (
        column(&header, "nodes"),
        column(&header, "node"),
        column(&header, "clients"),
        column(&header, "least state KiB"),
    );
    let named: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|r| (r[nodes].as_str(), r[node].as_str(), r[clients].as_str()))
        .collect();
    assert_eq!(
        named,
        [
            ("1", "A", "6"),
            ("2", "A", "3"),
            ("2", "B", "3"),
            ("2", "all nodes", "6")
        ]
    );
    // Every joiner, through either node, received the whole 1 MiB room.
    for r in &rows {
        assert!(r[state].parse::<u64>().unwrap() >= 1024, "{r:?}");
    }
}
