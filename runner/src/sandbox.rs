//! The shape of one sandbox container, and the tiny runner script that runs inside it.
//!
//! Everything here is pure (no Docker calls), so the hardening is unit-tested field by field.
//!
//! ## How files get in
//!
//! By tar, on the container's stdin, ahead of the program's stdin. Docker's archive upload
//! was tried first and dropped: it refuses a read-only root, lands under (not in) a tmpfs
//! mount, and took 45-70 ms per run on Docker 20.10 even into a volume, most of a warm
//! run's budget. Stdin costs a pipe write. The sandbox user unpacks the archive into the
//! tmpfs work dir, so it counts against the work dir's size like anything else there, and
//! no volume or host path is involved at all. The archive is built by [`crate::files`] from
//! validated paths, so what `tar` sees is only regular files under plain relative paths.
//!
//! ## The runner protocol (stdin, then stderr)
//!
//! The container starts `sh -c RUNNER_SCRIPT` with five arguments: the compile and run
//! commands of a run, those of a debug session (the debug build and the debug adapter), and
//! a debug container's `prestart` (empty otherwise), which the script starts in the
//! background before anything else, its stdio closed, so that it holds nothing of a job.
//! It waits for four lines on stdin: a random per-run nonce, the mode (`run` or `debug`),
//! which picks the pair of commands, the archive's size and the job's lifetime in seconds.
//! It starts a watchdog that kills every process of the sandbox user once the lifetime is
//! over (see "Nothing outlives its server" below). Then it reads exactly the archive's
//! bytes (the shell's `read` takes a pipe byte by byte and `head -c` reads no further than
//! asked) and unpacks them. For compiled languages it then runs the compiler with its stdout folded into stderr
//! (so compiler output keeps its order on one stream) and writes a marker line to stderr:
//! `\n<nonce> compiled <status>\n`. On failure it exits with the compiler's status. On
//! success it waits for a second line on stdin (`run`), sent by the supervisor once it has
//! read the marker, so no program output can overtake compiler output on the other stream.
//! Then it `exec`s the program, whose stdin is the rest of the attached stdin.
//!
//! The nonce is never in argv or the environment, so the compiler (which can be made to
//! print files, e.g. with `#include "/proc/1/cmdline"`) cannot forge the marker. A forged
//! marker could only mislabel the user's own output anyway.
//!
//! ## Nothing outlives its server
//!
//! The supervisor kills a run at its wall clock. A server killed with `kill -9` (or a host
//! that loses it) leaves no supervisor, so the container bounds itself twice over:
//! - A container still waiting for its job reads end-of-file on stdin (the attach is gone
//!   and `stdin_once` closes it) and exits.
//! - A job's watchdog (`sleep LIFETIME; kill -KILL -1`, as the sandbox user) ends the job
//!   [`WATCHDOG_SLACK`] after the supervisor would have: the sum of its steps' wall clocks.
//!   Killing every process of the user stops the container, since its init then has no
//!   child left. The supervisor always acts first, so a verdict never comes from the watchdog
//!   while a server watches.
//! - A program can kill its own watchdog. What such a program leaves behind, and stopped
//!   containers no supervisor removed, are swept by any server on the same engine
//!   ([`crate::Runner::sweep_leftovers`], at connect and then every few minutes).
//!
//! The same protocol serves a warm pool: a container started ahead of time waits on stdin
//! for the nonce; the job's files follow it. The mode comes on stdin too; the pool still
//! keeps run and debug containers apart, since a debug container may have its `prestart`
//! (a debug adapter and a debuggee waiting for the program) running already.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig, ResourcesUlimits};

use crate::registry::{Language, Limits};
use crate::run::Mode;

/// The uid and gid programs run as; the local images name it `runner`.
pub const SANDBOX_UID: u32 = 10001;
/// Where the program runs: a tmpfs, exec-able, owned by the sandbox user.
pub const WORK_DIR: &str = "/work";
/// The work dir's size: sources plus build output (a Rust or Go binary is a few MiB).
pub const WORK_DIR_BYTES: u64 = 64 * 1024 * 1024;
/// /tmp's size: compilers keep temporaries there and Go keeps its build cache there.
pub const TMP_DIR_BYTES: u64 = 256 * 1024 * 1024;
/// Open files per process: plenty for a program, a brake on descriptor exhaustion.
const NOFILE: i64 = 1024;
/// Label that marks mesh's sandboxes, so an operator (or a cleanup job) can find leftovers.
pub const LABEL: &str = "org.mesh.runner";

/// The script the container runs; see the module docs for the protocol.
pub const RUNNER_SCRIPT: &str = r#"if [ -n "$5" ]; then (eval "exec $5") </dev/null >/dev/null 2>&1 & fi
IFS= read -r nonce || exit 125
IFS= read -r mode || exit 125
IFS= read -r size || exit 125
IFS= read -r lifetime || exit 125
(sleep "$lifetime"; kill -KILL -1) </dev/null >/dev/null 2>&1 &
head -c "$size" | tar -x -m -f - -C /work || exit 125
cd /work || exit 125
if [ "$mode" = debug ]; then compile=$3 run=$4; else compile=$1 run=$2; fi
if [ -n "$compile" ]; then
  (eval "exec $compile") </dev/null 1>&2
  status=$?
  printf '\n%s compiled %s\n' "$nonce" "$status" >&2
  [ "$status" -eq 0 ] || exit "$status"
  IFS= read -r go || exit 125
fi
unset nonce status go mode size lifetime compile
eval "exec $run"
"#;

/// How long after the supervisor's own deadline a job's watchdog kills it: enough for a
/// busy daemon to act on the supervisor's kill first.
pub const WATCHDOG_SLACK: Duration = Duration::from_secs(15);

/// How long the watchdog lets a job live: the wall clocks of its steps (the compile step's,
/// when there is one, and the program's), plus [`WATCHDOG_SLACK`]; whole seconds, rounded up.
pub fn job_lifetime(first: &Limits, run: &Limits, compiles: bool) -> Duration {
    let walls = first.wall() + if compiles { run.wall() } else { Duration::ZERO };
    Duration::from_secs((walls + WATCHDOG_SLACK).as_secs_f64().ceil() as u64)
}

/// Where a debugged program reads its stdin: a FIFO the stdin demultiplexer feeds.
pub const DEBUG_STDIN_FIFO: &str = "/tmp/mesh-stdin";

/// Runs in front of a debug adapter (`python3 -I -S -c DEBUG_STDIN_DEMUX FIFO PORT ADAPTER...`):
/// the container's stdin carries DAP frames (`Content-Length: N`) for the adapter and the
/// program's input as `Mesh-Stdin: N` frames (N = 0 closes it), which go to
/// [`DEBUG_STDIN_FIFO`]. PORT is `-` for an adapter on stdio, or the loopback TCP port of
/// an adapter that listens (Delve, a prestarted debugpy), which it bridges to stdio. The
/// script's own comments say the rest. Needs `python3` in the image (debugpy is Python;
/// lldb's packages depend on it; the Go image adds it).
pub const DEBUG_STDIN_DEMUX: &str = include_str!("debug_demux.py");

/// Starts a stdio debug adapter in a warm debug container before any job and sends it
/// `initialize` (`python3 -I -S -c DEBUG_HOLD PORT ADAPTER...`), then serves it on the container's
/// own loopback PORT to the demultiplexer's one connection, answering its `initialize` with
/// the kept capabilities (the registry's `initialize_ahead`). See the script's comments.
pub const DEBUG_HOLD: &str = include_str!("debug_hold.py");

/// The container's stdin frame that carries `data` to a debugged program (empty: close it).
pub fn debug_stdin_frame(data: &[u8]) -> Vec<u8> {
    let mut out = format!("Mesh-Stdin: {}\r\n\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out
}

/// Quotes argv for `sh`, each word in single quotes.
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The container for one run of `lang` in `image` with `limits` (the first step's), for a
/// job in `mode`: a debug container starts the language's `prestart` at once.
pub fn container_config(lang: &Language, mode: Mode, image: &str, limits: &Limits) -> ContainerCreateBody {
    let compile = lang.compile.as_deref().map(shell_words).unwrap_or_default();
    let run = shell_words(&lang.run);
    let (debug_compile, debug_adapter, prestart) = match &lang.debug {
        Some(d) => {
            let port = d.port.map_or("-".to_owned(), |p| p.to_string());
            // `-I -S`: the standard library only, no site packages or PYTHON* variables to
            // read (about 10 ms less to start, measured, and nothing of the job's to import).
            let mut argv = vec![
                "python3".to_owned(),
                "-I".to_owned(),
                "-S".to_owned(),
                "-c".to_owned(),
                DEBUG_STDIN_DEMUX.to_owned(),
                DEBUG_STDIN_FIFO.to_owned(),
                port.clone(),
            ];
            // An adapter initialized ahead is the holder's: the demultiplexer only connects.
            let held = d.initialize_ahead.then(|| {
                let mut hold = vec![
                    "python3".to_owned(),
                    "-I".to_owned(),
                    "-S".to_owned(),
                    "-c".to_owned(),
                    DEBUG_HOLD.to_owned(),
                    port,
                ];
                hold.extend(d.adapter.iter().cloned());
                hold
            });
            match &held {
                Some(_) => argv.push("--held".to_owned()),
                None => argv.extend(d.adapter.iter().cloned()),
            }
            let prestart = match (mode, held.as_ref().or(d.prestart.as_ref())) {
                (Mode::Debug, Some(p)) => shell_words(p),
                _ => String::new(),
            };
            (
                d.compile.as_deref().map(shell_words).unwrap_or_default(),
                shell_words(&argv),
                prestart,
            )
        }
        // No adapter: a debug session is refused before it gets here; `false` fails loudly.
        None => (String::new(), "false".to_owned(), String::new()),
    };
    let mut env = vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
        format!("HOME={WORK_DIR}"),
        "LANG=C.UTF-8".to_owned(),
        "TMPDIR=/tmp".to_owned(),
    ];
    env.extend(lang.env.iter().map(|(k, v)| format!("{k}={v}")));
    let uid = SANDBOX_UID;
    ContainerCreateBody {
        image: Some(image.to_owned()),
        user: Some(format!("{uid}:{uid}")),
        working_dir: Some(WORK_DIR.to_owned()),
        // The entrypoint is cleared so public images' entrypoints (e.g. docker-entrypoint.sh)
        // cannot get between us and the runner.
        entrypoint: Some(vec![]),
        cmd: Some(vec![
            "/bin/sh".into(),
            "-c".into(),
            RUNNER_SCRIPT.into(),
            "mesh-run".into(),
            compile,
            run,
            debug_compile,
            debug_adapter,
            prestart,
        ]),
        env: Some(env),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        open_stdin: Some(true),
        // Closing our end of the attached stdin closes the program's stdin (EOF).
        stdin_once: Some(true),
        tty: Some(false),
        network_disabled: Some(true),
        labels: Some(HashMap::from([
            (LABEL.to_owned(), "1".to_owned()),
            ("org.mesh.language".to_owned(), lang.id.clone()),
        ])),
        host_config: Some(host_config(limits)),
        ..Default::default()
    }
}

fn host_config(limits: &Limits) -> HostConfig {
    let uid = SANDBOX_UID;
    HostConfig {
        network_mode: Some("none".into()),
        readonly_rootfs: Some(true),
        cap_drop: Some(vec!["ALL".into()]),
        // Docker's default seccomp profile applies because nothing here disables it.
        security_opt: Some(vec!["no-new-privileges".into()]),
        privileged: Some(false),
        init: Some(true),
        pids_limit: Some(i64::from(limits.pids)),
        memory: Some(limits.memory_bytes()),
        // Equal to memory: no swap, so the memory limit is a real limit.
        memory_swap: Some(limits.memory_bytes()),
        nano_cpus: Some((limits.cpus * 1e9) as i64),
        ipc_mode: Some("private".into()),
        shm_size: Some(16 * 1024 * 1024),
        ulimits: Some(vec![
            ResourcesUlimits {
                name: Some("nofile".into()),
                soft: Some(NOFILE),
                hard: Some(NOFILE),
            },
            ResourcesUlimits {
                name: Some("core".into()),
                soft: Some(0),
                hard: Some(0),
            },
        ]),
        // tmpfs pages count against the memory limit, so a full work dir is bounded twice.
        tmpfs: Some(HashMap::from([
            (
                WORK_DIR.to_owned(),
                format!("rw,exec,nosuid,nodev,size={WORK_DIR_BYTES},uid={uid},gid={uid},mode=0700"),
            ),
            (
                "/tmp".to_owned(),
                format!("rw,exec,nosuid,nodev,size={TMP_DIR_BYTES},mode=1777"),
            ),
        ])),
        // Output reaches us through attach; a log driver would keep an unbounded copy of a
        // flood on the host's disk.
        log_config: Some(HostConfigLogConfig {
            typ: Some("none".into()),
            config: None,
        }),
        auto_remove: Some(false),
        ..Default::default()
    }
}

/// What [`MarkerScanner::push`] found in compile-step stderr.
#[derive(Debug, PartialEq, Eq)]
pub enum Scan {
    /// Compiler output, safe to emit (the marker is not in it, nor a prefix of it).
    Output(Vec<u8>),
    /// The marker: compiler output before it, and the compiler's exit status.
    Marker {
        /// Compiler output before the marker.
        before: Vec<u8>,
        /// The compiler's exit status (-1 if unreadable).
        status: i64,
    },
}

/// Finds the runner's `\n<nonce> compiled <status>\n` line in a byte stream that arrives in
/// arbitrary chunks, holding back only a tail that could be the start of the marker.
pub struct MarkerScanner {
    head: Vec<u8>,
    buf: Vec<u8>,
}

impl MarkerScanner {
    /// A scanner for this run's nonce.
    pub fn new(nonce: &str) -> Self {
        Self {
            head: format!("\n{nonce} compiled ").into_bytes(),
            buf: Vec::new(),
        }
    }

    /// Feeds a chunk; returns what can be emitted now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Scan> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        if let Some(at) = find(&self.buf, &self.head) {
            let rest = &self.buf[at + self.head.len()..];
            if let Some(nl) = rest.iter().position(|&b| b == b'\n') {
                let status = std::str::from_utf8(&rest[..nl])
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(-1);
                let before = self.buf[..at].to_vec();
                self.buf = rest[nl + 1..].to_vec();
                out.push(Scan::Marker { before, status });
                return out;
            }
            // The marker's status line is incomplete: emit what precedes it, keep the rest.
            let before: Vec<u8> = self.buf.drain(..at).collect();
            if !before.is_empty() {
                out.push(Scan::Output(before));
            }
            return out;
        }
        // Hold back the longest suffix that is a prefix of the marker's head.
        let keep = (1..=self.head.len().min(self.buf.len()))
            .rev()
            .find(|&n| self.buf.ends_with(&self.head[..n]))
            .unwrap_or(0);
        let emit: Vec<u8> = self.buf.drain(..self.buf.len() - keep).collect();
        if !emit.is_empty() {
            out.push(Scan::Output(emit));
        }
        out
    }

    /// Whatever is held back, when the stream ends without a marker.
    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn the_container_is_hardened() {
        let reg = Registry::builtin().unwrap();
        let c = reg.get("c").unwrap();
        let cfg = container_config(c, Mode::Run, "img", &c.compile_limits);
        let host = cfg.host_config.as_ref().unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(cfg.network_disabled, Some(true));
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(host.security_opt, Some(vec!["no-new-privileges".to_string()]));
        assert_eq!(host.init, Some(true));
        assert_eq!(host.privileged, Some(false));
        assert_eq!(host.memory, host.memory_swap);
        assert_eq!(host.memory, Some(i64::from(c.compile_limits.memory_mib) << 20));
        assert_eq!(host.pids_limit, Some(i64::from(c.compile_limits.pids)));
        assert_eq!(host.nano_cpus, Some(1_000_000_000));
        assert!(host.binds.is_none(), "no host bind mounts");
        assert!(host.mounts.is_none(), "no mounts at all: files come in on stdin");
        assert!(host.tmpfs.as_ref().unwrap()["/work"].contains("exec,"));
        assert_eq!(cfg.user.as_deref(), Some("10001:10001"));
        assert_eq!(cfg.stdin_once, Some(true));
        assert_eq!(host.log_config.as_ref().unwrap().typ.as_deref(), Some("none"));
    }

    #[test]
    fn only_a_debug_container_starts_the_prestart_and_a_port_adapter_is_bridged() {
        let reg = Registry::builtin().unwrap();
        let py = reg.get("python").unwrap();
        let limits = py.debug.as_ref().unwrap().limits;
        let args = |mode| container_config(py, mode, "img", &limits).cmd.unwrap();
        let (run, debug) = (args(Mode::Run), args(Mode::Debug));
        assert_eq!(run.len(), 9, "sh -c SCRIPT NAME and five arguments");
        assert_eq!(run[8], "", "a run container starts nothing ahead");
        assert!(debug[8].contains("debugpy.listen"), "{}", debug[8]);
        // Go's adapter listens on a port the demultiplexer connects to.
        let go = reg.get("go").unwrap();
        let cmd = container_config(go, Mode::Debug, "img", &go.compile_limits)
            .cmd
            .unwrap();
        assert!(cmd[7].contains("'/tmp/mesh-stdin' '4711' 'dlv' 'dap'"), "{}", cmd[7]);
        // C's lldb-vscode is started and initialized with a debug container, by the holder;
        // the demultiplexer connects to it. A run container starts nothing ahead.
        let c = reg.get("c").unwrap();
        let cmd = container_config(c, Mode::Debug, "img", &c.compile_limits).cmd.unwrap();
        assert!(
            cmd[7].ends_with("'/tmp/mesh-stdin' '4712' '--held'"),
            "the adapter is the holder's: {}",
            cmd[7]
        );
        assert!(cmd[8].contains("debug adapter holder"), "{}", cmd[8]);
        assert!(cmd[8].ends_with("'4712' 'lldb-vscode-14'"), "{}", cmd[8]);
        let cmd = container_config(c, Mode::Run, "img", &c.compile_limits).cmd.unwrap();
        assert_eq!(cmd[8], "");
    }

    #[test]
    fn a_job_lives_its_steps_wall_clocks_and_the_slack() {
        let reg = Registry::builtin().unwrap();
        let c = reg.get("c").unwrap();
        let (compile, run) = (c.compile_limits, c.limits);
        let slack = WATCHDOG_SLACK.as_secs_f64();
        let both = job_lifetime(&compile, &run, true).as_secs_f64();
        assert_eq!(both, (compile.wall_seconds + run.wall_seconds + slack).ceil());
        assert_eq!(
            job_lifetime(&run, &run, false).as_secs_f64(),
            (run.wall_seconds + slack).ceil()
        );
        let odd = Limits {
            wall_seconds: 0.2,
            ..run
        };
        assert_eq!(job_lifetime(&odd, &odd, false).as_secs_f64(), (0.2 + slack).ceil());
    }

    #[test]
    fn commands_are_quoted_for_the_shell() {
        let argv = vec!["echo".to_string(), "it's $HOME".to_string(), "".to_string()];
        assert_eq!(shell_words(&argv), r#"'echo' 'it'\''s $HOME' ''"#);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf '%s|' {}", shell_words(&argv[1..])))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "it's $HOME||");
    }

    #[test]
    fn marker_found_across_chunks() {
        let mut s = MarkerScanner::new("abc");
        let stream = b"warning: x\nerror\n\nabc compiled 1\n";
        let mut output = Vec::new();
        let mut status = None;
        for chunk in stream.chunks(3) {
            for scan in s.push(chunk) {
                match scan {
                    Scan::Output(b) => output.extend(b),
                    Scan::Marker { before, status: st } => {
                        output.extend(before);
                        status = Some(st);
                    }
                }
            }
        }
        assert_eq!(status, Some(1));
        assert_eq!(output, b"warning: x\nerror\n");
    }

    #[test]
    fn a_wrong_nonce_is_just_output() {
        let mut s = MarkerScanner::new("abc");
        let scans = s.push(b"\nabd compiled 0\nmore");
        assert_eq!(scans, vec![Scan::Output(b"\nabd compiled 0\nmore".to_vec())]);
        assert!(s.finish().is_empty());
        // A tail that might be the marker is held back until it is decided.
        assert_eq!(s.push(b"x\nab"), vec![Scan::Output(b"x".to_vec())]);
        assert_eq!(s.finish(), b"\nab");
    }
}
