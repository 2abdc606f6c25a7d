//! `runner_control`: what reaches the run sandbox from outside, and what comes back.
//!
//! Each record of the input is either a job file (first byte even: `path NUL contents`, the
//! path as a room would send it) or a chunk of a compile step's stderr (first byte odd),
//! which a compiler fed with the room's code can fill with anything.
//!
//! - Job files go through `mesh_runner::files::validate`; when they pass, through
//!   `tar_archive`, and the control lines and archive the runner writes to the container's
//!   stdin are read back the way the runner script does (three lines: nonce, mode, size; then
//!   exactly `size` bytes of tar, unpacked). Checked: the archive holds only directories and
//!   regular files, under relative paths without `..`, with the job's exact contents.
//! - Stderr chunks go through `MarkerScanner`, which looks for the runner's
//!   `\n<nonce> compiled <status>\n` line. Checked: the output it emits is the input in order,
//!   with nothing lost or invented before the marker.

use std::io::Read;

use mesh_runner::files::{tar_archive, validate};
use mesh_runner::sandbox::{MarkerScanner, Scan};
use mesh_runner::JobFile;

use super::{Features, Shape, Target};
use crate::framing::records;

/// The target.
pub const TARGET: Target = Target {
    name: "runner_control",
    about: "job-file checks, the runner's control lines and tar archive read back, and the compile marker scanner",
    run,
    shape: Shape::Sequence,
    dictionary: &[
        b"\0",
        b"/",
        b"..",
        b".",
        b"//",
        b"\\",
        b"\n",
        b"\nfuzznonce compiled ",
        b"fuzznonce",
        b" compiled ",
        b"0\n",
        b"-1\n",
        b"main.py",
        b"src/",
    ],
    max_len: 16 * 1024,
};

/// The nonce of the scanner runs; the real one is random per run and never leaves mesh.
pub const NONCE: &str = "fuzznonce";

fn run(input: &[u8], fx: &mut Features) {
    let mut files = Vec::new();
    let mut stderr = Vec::new();
    for record in records(input) {
        let Some((&kind, rest)) = record.split_first() else {
            continue;
        };
        if kind % 2 == 0 {
            let (path, contents) = match rest.iter().position(|&b| b == 0) {
                Some(nul) => (&rest[..nul], &rest[nul + 1..]),
                None => (rest, &[][..]),
            };
            files.push(JobFile::new(
                String::from_utf8_lossy(path).into_owned(),
                contents.to_vec(),
            ));
        } else {
            stderr.push(rest);
        }
    }
    fx.count("files", files.len());
    match validate(&files) {
        Ok(()) => {
            fx.hit("valid");
            unpack_as_the_runner_does(&files, fx);
        }
        Err(mesh_runner::Error::BadFile { problem, .. }) => {
            // The first words of the problem name the rule; paths and numbers would make
            // every input look new.
            let rule: Vec<&str> = problem
                .split_whitespace()
                .filter(|w| w.chars().all(char::is_alphabetic))
                .take(3)
                .collect();
            fx.hit(&format!("bad-file:{}", rule.join(" ")));
        }
        Err(e) => fx.hit(&format!(
            "invalid:{}",
            e.to_string().split_whitespace().nth(1).unwrap_or_default()
        )),
    }
    scan(&stderr, fx);
}

fn unpack_as_the_runner_does(files: &[JobFile], fx: &mut Features) {
    let archive = tar_archive(files).expect("validated files pack");
    let mut stdin = format!("{NONCE}\nrun\n{}\n", archive.len()).into_bytes();
    stdin.extend_from_slice(&archive);
    stdin.extend_from_slice(b"the program's own stdin follows\n");

    // `IFS= read -r` three times, then `head -c "$size"`.
    let mut lines = stdin.splitn(4, |&b| b == b'\n');
    assert_eq!(lines.next(), Some(NONCE.as_bytes()));
    assert_eq!(lines.next(), Some(&b"run"[..]));
    let size: usize = std::str::from_utf8(lines.next().expect("a size line"))
        .expect("the size line is ASCII")
        .parse()
        .expect("the size line is a number");
    let rest = lines.next().expect("the archive follows");
    let tar_bytes = &rest[..size];

    let mut wanted: std::collections::BTreeMap<&str, &[u8]> =
        files.iter().map(|f| (f.path.as_str(), f.contents.as_ref())).collect();
    let mut archive = tar::Archive::new(tar_bytes);
    let mut entries = 0;
    for entry in archive.entries().expect("the archive reads") {
        let mut entry = entry.expect("an archive entry reads");
        entries += 1;
        let path = entry.path().expect("an entry has a path").into_owned();
        assert!(path.is_relative(), "absolute path in the archive: {path:?}");
        assert!(
            path.components().all(|c| matches!(c, std::path::Component::Normal(_))),
            "a path in the archive leaves the work dir: {path:?}"
        );
        match entry.header().entry_type() {
            tar::EntryType::Directory => {}
            tar::EntryType::Regular => {
                let name = path.to_str().expect("paths are UTF-8").to_string();
                let want = wanted
                    .remove(name.as_str())
                    .unwrap_or_else(|| panic!("the archive holds a file that is not in the job: {name:?}"));
                let mut got = Vec::new();
                entry.read_to_end(&mut got).expect("an entry's contents read");
                assert_eq!(got, want, "{name:?} changed in the archive");
            }
            other => panic!("the archive holds a {other:?} entry at {path:?}"),
        }
    }
    assert!(wanted.is_empty(), "files missing from the archive: {:?}", wanted.keys());
    fx.count("entries", entries);
}

fn scan(chunks: &[&[u8]], fx: &mut Features) {
    let input: Vec<u8> = chunks.concat();
    let mut scanner = MarkerScanner::new(NONCE);
    let mut emitted = Vec::new();
    let mut marker = None;
    for chunk in chunks {
        for s in scanner.push(chunk) {
            match s {
                Scan::Output(bytes) => emitted.extend(bytes),
                Scan::Marker { before, status } => {
                    emitted.extend(before);
                    marker = Some(status);
                }
            }
        }
        if marker.is_some() {
            break;
        }
    }
    assert!(
        input.starts_with(&emitted),
        "the scanner emitted output that is not the input's"
    );
    match marker {
        Some(status) => {
            fx.hit(if status == -1 { "marker:unreadable" } else { "marker" });
            let head = format!("\n{NONCE} compiled ");
            assert!(
                input[emitted.len()..].starts_with(head.as_bytes()),
                "the scanner found a marker that is not there"
            );
        }
        None => {
            emitted.extend(scanner.finish());
            assert_eq!(emitted, input, "the scanner lost or invented output");
        }
    }
}
