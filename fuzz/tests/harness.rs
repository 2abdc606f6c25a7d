//! The harness tested through its binary, as it is used: found cases and seeds replay
//! cleanly through every target (each in a child process, so a regression that crashes fails
//! this test instead of killing it), and crash isolation finds every way a target can fail.

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_mesh-fuzz");

fn fuzz(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("mesh-fuzz runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn every_regression_and_seed_replays_cleanly_through_its_target() {
    for target in mesh_fuzz::targets::all() {
        let out = fuzz(&["replay", target.name]);
        let said = text(&out);
        assert!(out.status.success(), "{}:\n{said}", target.name);
        let seeds =
            mesh_fuzz::driver::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target.name))
                .expect("the corpus reads");
        assert!(!seeds.is_empty(), "{} has no seed corpus", target.name);
        assert!(
            said.contains(&format!("{}: ", target.name)) && said.contains(" 0 failed"),
            "{said}"
        );
    }
}

#[test]
fn crash_isolation_finds_each_way_a_target_can_fail() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let corpus = dir.path().join("corpus/selftest");
    std::fs::create_dir_all(&corpus).unwrap();
    for word in ["panic", "abort", "overflow", "hang", "grow", "oom", "fine"] {
        std::fs::write(corpus.join(word), word).unwrap();
    }
    let d = dir.path().to_str().unwrap();
    // The seeds run first, each once; a few mutants follow. The resident-memory limit leaves
    // room for symbolising a backtrace in the debug build (a few hundred MiB of debug info),
    // which the `oom` seed's allocation failure does, and stays below what `grow` takes. The
    // hang timeout leaves `grow` (a 768 MiB memset in the debug build) time to reach the
    // memory limit, and `oom` time to symbolise its backtrace, on a busy machine before
    // either would count as a hang (3 s, then 6 s, were too little on a loaded CI machine:
    // `oom` was called a hang; the two `hang` inputs each cost the whole timeout).
    let out = fuzz(&[
        "run",
        "selftest",
        "--inputs",
        "12",
        "--dir",
        d,
        "--timeout-ms",
        "15000",
        "--rss-limit-mib",
        "512",
    ]);
    let said = text(&out);
    assert!(!out.status.success(), "findings make the run fail:\n{said}");
    for kind in ["panic-selftest-", "sigabrt", "stack-overflow", "hang", "memory", "oom"] {
        assert!(said.contains(&format!("FOUND {kind}")), "{kind} not found:\n{said}");
    }
    assert!(said.contains("selftest: 12 inputs"), "every input counted:\n{said}");

    // Each saved case replays to the same kind, and a clean input stays clean.
    let found = mesh_fuzz::driver::load_dir(&dir.path().join("found/selftest")).unwrap();
    assert!(found.len() >= 6, "{found:?}");
    for (path, input) in &found {
        let name = path.file_name().unwrap().to_str().unwrap();
        let kind = name.rsplit_once('-').unwrap().0;
        let out = fuzz(&[
            "replay",
            "selftest",
            path.to_str().unwrap(),
            "--dir",
            d,
            "--timeout-ms",
            "3000",
            "--rss-limit-mib",
            "512",
        ]);
        let said = text(&out);
        assert!(
            !out.status.success(),
            "{name} ({input:?}) replays as a failure:\n{said}"
        );
        assert!(said.contains(&format!("({kind})")), "{name} replays as {kind}:\n{said}");
    }
    let out = fuzz(&["replay", "selftest", corpus.join("fine").to_str().unwrap(), "--dir", d]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_minimised_case_keeps_only_what_fails() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let corpus = dir.path().join("corpus/selftest");
    std::fs::create_dir_all(&corpus).unwrap();
    std::fs::write(
        corpus.join("noisy"),
        b"panic and a lot of bytes after it that do not matter",
    )
    .unwrap();
    let d = dir.path().to_str().unwrap();
    let out = fuzz(&["run", "selftest", "--inputs", "1", "--dir", d]);
    assert!(!out.status.success());
    let found = mesh_fuzz::driver::load_dir(&dir.path().join("found/selftest")).unwrap();
    assert_eq!(found.len(), 1, "{}", text(&out));
    assert_eq!(found[0].1, b"panic", "minimised to the failing prefix");
    let note = std::fs::read_to_string(found[0].0.with_extension("txt")).unwrap();
    assert!(
        note.contains("kind: panic-selftest-") && note.contains("selftest panic"),
        "{note}"
    );
}
