//! The parent side: it mutates inputs and hands them to a child process in batches; it never
//! runs a target itself. A child that dies (segfault, abort, stack overflow, failed
//! allocation), stops answering (a hang), panics, or swells past the memory limit makes the
//! input it was running a *found case*: saved to `found/TARGET/`, minimised when cheap, and
//! the child restarted.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::child::{MEMORY_LINE_PREFIX, PANIC_CAUGHT_LINE, PANIC_LINE_PREFIX, STATUS_OK, STATUS_PANIC};
use crate::framing::{join, records};
use crate::mutate::mutate;
use crate::rng::{fnv1a, Rng};
use crate::targets::{Features, Shape, Target};

/// Inputs per batch sent to the child: enough to amortise the pipe round trip, few enough
/// that a crash costs little re-work and the memory check runs often.
const BATCH: usize = 64;

/// How much of the child's stderr is kept, to name how it died.
const STDERR_TAIL_BYTES: usize = 16 * 1024;

/// Most inputs saved per kind of finding in one run: one shows the bug, a few show its
/// variety; thousands would bury them.
const MAX_SAVED_PER_KIND: usize = 3;

/// Most inputs a minimisation may run, and for how long: "if cheap".
const MINIMISE_RUNS: usize = 400;
const MINIMISE_TIME: Duration = Duration::from_secs(20);

/// Most inputs kept in the live corpus (seeds plus inputs that showed new features).
const MAX_LIVE_CORPUS: usize = 8192;

/// Settings of a run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where `corpus/`, `found/` and `regressions/` are.
    pub dir: PathBuf,
    /// Stop after this many inputs (seeds included).
    pub inputs: Option<u64>,
    /// Stop after this long.
    pub time: Option<Duration>,
    /// The seed of the mutations; the same seed and corpus replay the same inputs.
    pub seed: u64,
    /// An input that runs longer than this is a hang.
    pub timeout: Duration,
    /// A child whose peak resident memory passes this is a finding ("memory").
    pub rss_limit_mib: u64,
    /// The child's address-space cap: an allocation past it fails ("oom").
    pub mem_limit_mib: u64,
    /// Minimise found cases before saving them.
    pub minimise: bool,
    /// Save found cases (off in tests that only count them).
    pub save: bool,
    /// Print the panic backtrace of found cases (slower; for replays).
    pub backtrace: bool,
}

impl Options {
    /// Defaults for `dir`.
    pub fn new(dir: PathBuf) -> Options {
        Options {
            dir,
            inputs: None,
            time: None,
            seed: 1,
            timeout: Duration::from_secs(5),
            rss_limit_mib: 512,
            mem_limit_mib: 4096,
            minimise: true,
            save: true,
            backtrace: false,
        }
    }
}

/// How an input failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The kind, stable across runs: `panic-FILE-LINE`, `sigsegv`, `stack-overflow`,
    /// `abort-after-panic-FILE-LINE`, `oom`, `hang`, `memory`, ...
    pub kind: String,
    /// What the child said (the panic message, or the tail of its stderr).
    pub detail: String,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Summary {
    /// The target.
    pub target: String,
    /// Inputs run, seeds included.
    pub inputs: u64,
    /// Wall-clock time.
    pub elapsed: Duration,
    /// Seeds in the corpus.
    pub seeds: usize,
    /// Inputs in the live corpus at the end.
    pub corpus: usize,
    /// Distinct features seen.
    pub features: usize,
    /// Findings by kind: how many inputs, and the files saved.
    pub findings: BTreeMap<String, (u64, Vec<PathBuf>)>,
    /// Child processes started.
    pub children: u64,
    /// The highest peak resident memory of a child, in KiB.
    pub peak_rss_kib: u64,
}

impl Summary {
    /// Inputs per second.
    pub fn rate(&self) -> f64 {
        self.inputs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Total inputs that found something.
    pub fn found(&self) -> u64 {
        self.findings.values().map(|(n, _)| n).sum()
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{}: {} inputs in {:.1} s ({:.0}/s); {} seeds, corpus {}, {} features, {} children, peak RSS {} MiB",
            self.target,
            self.inputs,
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.seeds,
            self.corpus,
            self.features,
            self.children,
            self.peak_rss_kib / 1024
        )?;
        if self.findings.is_empty() {
            writeln!(f, "  nothing found")?;
        }
        for (kind, (n, saved)) in &self.findings {
            writeln!(f, "  FOUND {kind}: {n} inputs")?;
            for p in saved {
                writeln!(f, "    saved {}", p.display())?;
            }
        }
        Ok(())
    }
}

/// What one input did in the child.
#[derive(Debug)]
enum Ack {
    Ok(Features),
    Panic(String),
}

/// How a batch ended early: at this input, this way.
#[derive(Debug)]
struct Death {
    at: usize,
    finding: Finding,
}

/// A child process running one target.
struct Worker {
    child: std::process::Child,
    batches: Option<Sender<Vec<Vec<u8>>>>,
    acks: Receiver<Ack>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_thread: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    fn spawn(target: &Target, opts: &Options) -> anyhow::Result<Worker> {
        let exe = std::env::current_exe().context("finding this program to start a child")?;
        let mut child = Command::new(exe)
            .arg("child")
            .arg(target.name)
            .arg("--mem-limit-mib")
            .arg(opts.mem_limit_mib.to_string())
            .arg("--rss-limit-mib")
            .arg(opts.rss_limit_mib.to_string())
            .args(opts.backtrace.then_some("--backtrace"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting a child process")?;
        let mut stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");

        // The writer has its own thread: a child that hangs stops reading, and the driver
        // must still be free to notice the timeout and kill it.
        let (batches, inbox) = mpsc::channel::<Vec<Vec<u8>>>();
        std::thread::spawn(move || {
            for batch in inbox {
                for input in batch {
                    let len = (input.len() as u32).to_le_bytes();
                    if stdin.write_all(&len).and_then(|_| stdin.write_all(&input)).is_err() {
                        return;
                    }
                }
                if stdin.flush().is_err() {
                    return;
                }
            }
        });
        let (ack_tx, acks) = mpsc::channel();
        std::thread::spawn(move || {
            let mut out = BufReader::new(stdout);
            loop {
                let mut head = [0u8; 5];
                if out.read_exact(&mut head).is_err() {
                    return;
                }
                let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
                let mut payload = vec![0u8; len];
                if out.read_exact(&mut payload).is_err() {
                    return;
                }
                let ack = match head[0] {
                    STATUS_OK => Ack::Ok(Features::from_bytes(&payload)),
                    STATUS_PANIC => Ack::Panic(String::from_utf8_lossy(&payload).into_owned()),
                    _ => return,
                };
                if ack_tx.send(ack).is_err() {
                    return;
                }
            }
        });
        let tail = Arc::new(Mutex::new(Vec::new()));
        let keep = tail.clone();
        let stderr_thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    return;
                }
                let mut t = keep.lock().expect("stderr tail lock");
                t.extend_from_slice(&buf[..n]);
                if t.len() > STDERR_TAIL_BYTES {
                    let cut = t.len() - STDERR_TAIL_BYTES;
                    t.drain(..cut);
                }
            }
        });
        Ok(Worker {
            child,
            batches: Some(batches),
            acks,
            stderr: tail,
            stderr_thread: Some(stderr_thread),
        })
    }

    /// Runs a batch: the answers of the inputs that ran, and how the batch ended early, if
    /// it did. After a death the worker is finished and must be replaced.
    fn run(&mut self, batch: &[Vec<u8>], timeout: Duration) -> (Vec<Ack>, Option<Death>) {
        self.stderr.lock().expect("stderr tail lock").clear();
        let sent = self
            .batches
            .as_ref()
            .map(|tx| tx.send(batch.to_vec()).is_ok())
            .unwrap_or(false);
        let mut acks = Vec::with_capacity(batch.len());
        for at in 0..batch.len() {
            match self.acks.recv_timeout(timeout) {
                Ok(ack) => acks.push(ack),
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    let finding = Finding {
                        kind: "hang".into(),
                        detail: format!("no answer within {timeout:?}"),
                    };
                    return (acks, Some(Death { at, finding }));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    if let Some(t) = self.stderr_thread.take() {
                        let _ = t.join();
                    }
                    let stderr = String::from_utf8_lossy(&self.stderr.lock().expect("stderr tail lock")).into_owned();
                    let finding = classify(status, &stderr, sent);
                    return (acks, Some(Death { at, finding }));
                }
            }
        }
        (acks, None)
    }

    /// The child's resident memory now and at its peak since the last reset, in KiB.
    fn memory(&self) -> Option<(u64, u64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        };
        Some((field("VmRSS:")?, field("VmHWM:")?))
    }

    /// Resets the child's peak resident memory to its current size (Linux `clear_refs`).
    fn reset_peak(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5");
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing stdin ends a healthy child; kill the one that is stuck.
        self.batches.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether two kinds are the same failure. Memory corruption ends a child by whichever
/// signal the damage happens to trip (SIGSEGV one run, SIGBUS, SIGILL or an abort the next),
/// so every death by signal counts as one failure when minimising.
fn same_failure(a: &str, b: &str) -> bool {
    let crash = |k: &str| k.starts_with("sig") || k.starts_with("signal-") || k.starts_with("abort-after-panic-");
    a == b || (crash(a) && crash(b))
}

/// Names how a child died, from its exit status and the tail of its stderr.
fn classify(status: Option<ExitStatus>, stderr: &str, sent: bool) -> Finding {
    // The last panic line names an abort only when no "caught" line follows it.
    let panic_at = stderr
        .lines()
        .rev()
        .take_while(|l| *l != PANIC_CAUGHT_LINE)
        .find_map(|l| l.strip_prefix(PANIC_LINE_PREFIX))
        .map(location_kind);
    let kind = if stderr.contains("has overflowed its stack") {
        "stack-overflow".to_string()
    } else if stderr.contains(MEMORY_LINE_PREFIX) {
        "memory".to_string()
    } else if stderr.contains("memory allocation of") {
        "oom".to_string()
    } else {
        match status {
            Some(s) => match (s.signal(), panic_at) {
                (Some(6), Some(at)) => format!("abort-after-panic-{at}"),
                (Some(sig), _) => signal_name(sig),
                (None, _) if !sent => "child-did-not-start".to_string(),
                (None, _) => format!("exit-{}", s.code().unwrap_or(-1)),
            },
            None => "lost".to_string(),
        }
    };
    Finding {
        kind,
        detail: stderr.to_string(),
    }
}

fn signal_name(sig: i32) -> String {
    match sig {
        4 => "sigill".into(),
        6 => "sigabrt".into(),
        7 => "sigbus".into(),
        8 => "sigfpe".into(),
        9 => "sigkill".into(),
        11 => "sigsegv".into(),
        n => format!("signal-{n}"),
    }
}

/// `panic-FILE-LINE` from a panic line `path/to/file.rs:317: message`: stable across runs and
/// machines (no directories, no message text that may hold input bytes).
fn location_kind(text: &str) -> String {
    let location = text.split(": ").next().unwrap_or(text);
    let mut parts = location.rsplitn(2, ':');
    let line = parts.next().unwrap_or("0");
    let file = parts.next().unwrap_or("unknown");
    let file = file.rsplit('/').next().unwrap_or(file);
    format!("{}-{line}", file.trim_end_matches(".rs"))
}

/// Drops the machine-specific prefix of paths into cargo's registry from a note, so that
/// `/home/x/.cargo/registry/src/index.crates.io-abc/yrs-0.28.1/src/a.rs` reads
/// `yrs-0.28.1/src/a.rs`: found cases are committed.
fn scrub(text: &str) -> String {
    const REGISTRY: &str = ".cargo/registry/src/";
    text.lines()
        .map(|line| match line.find(REGISTRY) {
            Some(at) => {
                let start = line[..at].rfind([' ', '\t']).map_or(0, |s| s + 1);
                let rest = &line[at + REGISTRY.len()..];
                let after_index = rest.find('/').map_or(rest, |i| &rest[i + 1..]);
                format!("{}{after_index}", &line[..start])
            }
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads the seed corpus of a target: every file in `DIR/corpus/TARGET/`, sorted by name.
pub fn load_dir(dir: &Path) -> anyhow::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for entry in entries {
        let path = entry?.path();
        if path.is_file() && path.extension().is_none_or(|e| e != "txt" && e != "md") {
            let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            out.push((path, bytes));
        }
    }
    out.sort();
    Ok(out)
}

/// The state of one fuzzing run.
struct Run<'a> {
    target: &'static Target,
    opts: &'a Options,
    summary: Summary,
    saved: HashSet<u64>,
}

impl Run<'_> {
    /// Counts a finding and saves its input (minimised) unless enough of its kind are saved.
    fn found(&mut self, input: &[u8], finding: Finding) -> anyhow::Result<()> {
        let entry = self.summary.findings.entry(finding.kind.clone()).or_default();
        entry.0 += 1;
        if !self.opts.save || entry.1.len() >= MAX_SAVED_PER_KIND {
            return Ok(());
        }
        let input = if self.opts.minimise && finding.kind != "hang" {
            minimise(self.target, self.opts, input, &finding.kind)?
        } else {
            input.to_vec()
        };
        let hash = fnv1a(&input);
        if !self.saved.insert(hash) {
            return Ok(());
        }
        let dir = self.opts.dir.join("found").join(self.target.name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{}-{hash:016x}", finding.kind));
        std::fs::write(&path, &input).with_context(|| format!("writing {}", path.display()))?;
        let note = format!(
            "target: {}\nkind: {}\nbuild: {}\nfound by: mesh-fuzz run {} --seed {}\nreplay: mesh-fuzz replay {} {}\n\n{}\n",
            self.target.name,
            finding.kind,
            if cfg!(debug_assertions) { "debug (overflow checks and debug assertions on)" } else { "release" },
            self.target.name,
            self.opts.seed,
            self.target.name,
            path.file_name().expect("a file name").to_string_lossy(),
            scrub(finding.detail.trim_end())
        );
        std::fs::write(path.with_extension("txt"), note)?;
        self.summary
            .findings
            .get_mut(&finding.kind)
            .expect("counted above")
            .1
            .push(path);
        Ok(())
    }
}

/// Fuzzes one target until `opts.inputs` or `opts.time` is reached (whichever comes first).
pub fn fuzz(target: &'static Target, opts: &Options) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let seeds = load_dir(&opts.dir.join("corpus").join(target.name))?;
    let mut live: Vec<Vec<u8>> = seeds.iter().map(|(_, b)| b.clone()).collect();
    if live.is_empty() {
        live.push(Vec::new());
    }
    let mut run = Run {
        target,
        opts,
        summary: Summary {
            target: target.name.to_string(),
            seeds: seeds.len(),
            ..Summary::default()
        },
        saved: HashSet::new(),
    };
    let mut seen: HashSet<u64> = HashSet::new();
    let mut rng = Rng::new(opts.seed);
    let mut worker = Worker::spawn(target, opts)?;
    run.summary.children += 1;
    // The seeds run first, as they are: a real session's input must never fail.
    let mut pending: Vec<Vec<u8>> = live.clone();
    let done = |n: u64| opts.inputs.is_some_and(|max| n >= max) || opts.time.is_some_and(|t| started.elapsed() >= t);
    while !done(run.summary.inputs) {
        let batch: Vec<Vec<u8>> = if pending.is_empty() {
            let room = opts
                .inputs
                .map_or(BATCH as u64, |m| m - run.summary.inputs)
                .min(BATCH as u64);
            (0..room)
                .map(|_| {
                    let base = rng.pick(&live).clone();
                    mutate(target, &base, &live, &mut rng)
                })
                .collect()
        } else {
            let n = pending.len().min(BATCH);
            pending.drain(..n).collect()
        };
        worker.reset_peak();
        let (acks, death) = worker.run(&batch, opts.timeout);
        for (input, ack) in batch.iter().zip(acks) {
            run.summary.inputs += 1;
            match ack {
                Ack::Ok(features) => {
                    let new = features.hashes().iter().fold(false, |new, h| seen.insert(*h) | new);
                    if new && live.len() < MAX_LIVE_CORPUS {
                        live.push(input.clone());
                    }
                }
                Ack::Panic(message) => {
                    let kind = format!("panic-{}", location_kind(&message));
                    run.found(input, Finding { kind, detail: message })?;
                }
            }
        }
        if let Some(death) = death {
            run.summary.inputs += 1;
            drop(worker);
            // The inputs after the one that killed the child have not run: run them next.
            pending.splice(0..0, batch[death.at + 1..].iter().cloned());
            let (input, finding) = if death.finding.kind == "hang" {
                (batch[death.at].clone(), death.finding)
            } else {
                attribute(target, opts, &batch[..=death.at], death.finding)?
            };
            run.found(&input, finding)?;
            worker = Worker::spawn(target, opts)?;
            run.summary.children += 1;
            continue;
        }
        if let Some((_, peak)) = worker.memory() {
            run.summary.peak_rss_kib = run.summary.peak_rss_kib.max(peak);
            if peak > opts.rss_limit_mib * 1024 {
                // Find the input of the batch that swelled the child, each in a fresh one.
                drop(worker);
                let culprit = batch
                    .iter()
                    .find(|input| peak_of(target, opts, input).is_some_and(|p| p > opts.rss_limit_mib * 1024));
                let finding = Finding {
                    kind: "memory".into(),
                    detail: format!(
                        "the child's resident memory peaked at {} MiB, over the limit of {} MiB",
                        peak / 1024,
                        opts.rss_limit_mib
                    ),
                };
                match culprit {
                    Some(input) => run.found(input, finding)?,
                    // No single input does it: the child grew across inputs (a leak).
                    None => run.found(
                        &join(&batch),
                        Finding {
                            kind: "memory-growth".into(),
                            detail: finding.detail,
                        },
                    )?,
                }
                worker = Worker::spawn(target, opts)?;
                run.summary.children += 1;
            }
        }
    }
    run.summary.elapsed = started.elapsed();
    run.summary.corpus = live.len();
    run.summary.features = seen.len();
    Ok(run.summary)
}

/// Finds the input that kills a child on its own. Memory corruption may surface only in a
/// later input than the one that caused it, so when the last input of the batch does not kill
/// a fresh child alone, the ones before it are tried, newest first, each in a fresh child.
/// When none does, the last one is kept with a note that it failed only after the others.
fn attribute(target: &Target, opts: &Options, ran: &[Vec<u8>], death: Finding) -> anyhow::Result<(Vec<u8>, Finding)> {
    for input in ran.iter().rev() {
        let mut w = Worker::spawn(target, opts)?;
        if let (_, Some(alone)) = w.run(std::slice::from_ref(input), opts.timeout) {
            return Ok((input.clone(), alone.finding));
        }
    }
    let last = ran.last().expect("the input that died").clone();
    let detail = format!(
        "{}\n(this input did not fail alone in a fresh child, nor did any input before it in its \
         batch: the child failed after running them in order, so memory was likely corrupted \
         earlier and the failure is not reproducible from one input)",
        death.detail
    );
    Ok((
        last,
        Finding {
            kind: death.kind,
            detail,
        },
    ))
}

/// The peak resident memory (KiB) of a fresh child running one input.
fn peak_of(target: &Target, opts: &Options, input: &[u8]) -> Option<u64> {
    let mut w = Worker::spawn(target, opts).ok()?;
    w.reset_peak();
    let (_, death) = w.run(&[input.to_vec()], opts.timeout);
    if death.is_some() {
        return None;
    }
    w.memory().map(|(_, peak)| peak)
}

/// Runs each input once, each in a child: how each ended (`None`: cleanly).
pub fn replay(
    target: &'static Target,
    opts: &Options,
    inputs: &[(PathBuf, Vec<u8>)],
) -> anyhow::Result<Vec<Option<Finding>>> {
    let mut out = Vec::with_capacity(inputs.len());
    let mut worker = Worker::spawn(target, opts)?;
    for (_, input) in inputs {
        worker.reset_peak();
        let (acks, death) = worker.run(std::slice::from_ref(input), opts.timeout);
        let finding = match (acks.into_iter().next(), death) {
            (_, Some(death)) => {
                worker = Worker::spawn(target, opts)?;
                Some(death.finding)
            }
            (Some(Ack::Panic(message)), None) => Some(Finding {
                kind: format!("panic-{}", location_kind(&message)),
                detail: message,
            }),
            (Some(Ack::Ok(_)), None) => match worker.memory() {
                Some((_, peak)) if peak > opts.rss_limit_mib * 1024 => {
                    worker = Worker::spawn(target, opts)?;
                    Some(Finding {
                        kind: "memory".into(),
                        detail: format!("peak resident memory {} MiB", peak / 1024),
                    })
                }
                _ => None,
            },
            (None, None) => unreachable!("a batch of one answers once or dies"),
        };
        out.push(finding);
    }
    Ok(out)
}

/// Shrinks an input while it still fails the same way: first whole records (sequence
/// targets), then ever smaller byte ranges inside each record.
fn minimise(target: &'static Target, opts: &Options, input: &[u8], kind: &str) -> anyhow::Result<Vec<u8>> {
    let mut m = Minimiser {
        target,
        opts,
        kind,
        worker: Worker::spawn(target, opts)?,
        runs: 0,
        started: Instant::now(),
    };
    let mut units: Vec<Vec<u8>> = match target.shape {
        Shape::Sequence => records(input).into_iter().map(<[u8]>::to_vec).collect(),
        Shape::Raw | Shape::Stream => vec![input.to_vec()],
    };
    // The input may fail only after earlier ones (state in the child): check it alone first.
    if !m.still_fails(&units)? {
        return Ok(input.to_vec());
    }
    if target.shape == Shape::Sequence {
        let mut i = units.len();
        while i > 0 && m.budget_left() {
            i -= 1;
            let mut candidate = units.clone();
            candidate.remove(i);
            if m.still_fails(&candidate)? {
                units = candidate;
            }
        }
    }
    for u in 0..units.len() {
        // The first byte of a stream input picks its chunking: keep it.
        let keep = usize::from(target.shape == Shape::Stream && u == 0);
        let mut chunk = units[u].len() / 2;
        while chunk > 0 && m.budget_left() {
            let mut at = keep;
            while at + chunk <= units[u].len() && m.budget_left() {
                let mut candidate = units.clone();
                candidate[u].drain(at..at + chunk);
                if m.still_fails(&candidate)? {
                    units = candidate;
                } else {
                    at += chunk;
                }
            }
            chunk /= 2;
        }
    }
    Ok(m.assemble(&units))
}

/// The state of one minimisation.
struct Minimiser<'a> {
    target: &'static Target,
    opts: &'a Options,
    kind: &'a str,
    worker: Worker,
    runs: usize,
    started: Instant,
}

impl Minimiser<'_> {
    fn budget_left(&self) -> bool {
        self.runs < MINIMISE_RUNS && self.started.elapsed() < MINIMISE_TIME
    }

    fn assemble(&self, units: &[Vec<u8>]) -> Vec<u8> {
        match self.target.shape {
            Shape::Sequence => join(units),
            Shape::Raw | Shape::Stream => units.concat(),
        }
    }

    /// Whether the input made of `units` fails the same way as the original.
    fn still_fails(&mut self, units: &[Vec<u8>]) -> anyhow::Result<bool> {
        self.runs += 1;
        let candidate = self.assemble(units);
        let (acks, death) = self.worker.run(&[candidate], self.opts.timeout);
        Ok(match (acks.into_iter().next(), death) {
            (_, Some(death)) => {
                self.worker = Worker::spawn(self.target, self.opts)?;
                same_failure(&death.finding.kind, self.kind)
            }
            (Some(Ack::Panic(message)), None) => format!("panic-{}", location_kind(&message)) == self.kind,
            _ => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_name_the_place_not_the_machine() {
        assert_eq!(
            location_kind("/home/x/.cargo/registry/src/yrs-0.28.1/src/block_store.rs:317: index out of bounds"),
            "block_store-317"
        );
        assert_eq!(location_kind("src/a.rs:9: msg: with colons"), "a-9");
    }

    #[test]
    fn notes_hold_no_machine_paths() {
        assert_eq!(
            scrub("mesh-fuzz: panicked at /root/.cargo/registry/src/index.crates.io-19/yrs-0.28.1/src/a.rs:5: x\nok"),
            "mesh-fuzz: panicked at yrs-0.28.1/src/a.rs:5: x\nok"
        );
    }

    #[test]
    fn deaths_are_named_by_signal_and_stderr() {
        let sig = |n| Some(ExitStatus::from_raw(n));
        assert_eq!(classify(sig(11), "", true).kind, "sigsegv");
        assert_eq!(
            classify(sig(6), "\nthread 'fuzz-target' has overflowed its stack\n", true).kind,
            "stack-overflow"
        );
        assert_eq!(
            classify(sig(6), "mesh-fuzz: panicked at src/x.rs:3: boom\nabort\n", true).kind,
            "abort-after-panic-x-3"
        );
        assert_eq!(
            classify(
                sig(6),
                "mesh-fuzz: panicked at src/x.rs:3: boom\nmesh-fuzz: the panic above was caught\n",
                true
            )
            .kind,
            "sigabrt"
        );
        assert_eq!(
            classify(sig(6), "memory allocation of 9 bytes failed\n", true).kind,
            "oom"
        );
        assert_eq!(classify(Some(ExitStatus::from_raw(3 << 8)), "", true).kind, "exit-3");
    }
}
