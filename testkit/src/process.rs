//! A server process a test started, stopped by its pid: its stop signal, then a bounded
//! wait, then SIGKILL. The engines the tests start (Postgres, Redis) and `mesh-server`
//! itself share it, so a test never leaves a process behind, even when it fails half-way
//! (dropping a [`StoppedByPid`] stops it too).

use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::bail;

/// How often a stop looks again whether the process has exited: short, because a test
/// waits on it, and a `try_wait` costs next to nothing.
const STOP_POLL: Duration = Duration::from_millis(20);

/// The signal that asks a process to stop by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGINT (Postgres's "fast shutdown": open transactions are rolled back).
    Int,
    /// SIGTERM (the usual request to exit; `mesh-server` drains on it).
    Term,
}

impl StopSignal {
    /// The signal's name as `kill` takes it.
    fn name(self) -> &'static str {
        match self {
            StopSignal::Int => "INT",
            StopSignal::Term => "TERM",
        }
    }
}

/// A child process that is stopped by its pid: [`StoppedByPid::stop`] sends its stop signal,
/// waits a bounded time for it to exit, and kills it if it does not. Dropping it does the
/// same (a test that fails still stops what it started).
#[derive(Debug)]
pub struct StoppedByPid {
    /// The child until it has been waited for; `None` once it exited and was reaped.
    child: Option<Child>,
    /// What the process is, for messages ("postgres", "redis-server").
    name: &'static str,
    signal: StopSignal,
    stop_timeout: Duration,
}

impl StoppedByPid {
    /// Takes charge of `child` (called `name` in messages), which `signal` stops within
    /// `stop_timeout` before it is killed.
    pub fn new(child: Child, name: &'static str, signal: StopSignal, stop_timeout: Duration) -> StoppedByPid {
        StoppedByPid {
            child: Some(child),
            name,
            signal,
            stop_timeout,
        }
    }

    /// The process's pid (0 once it has been reaped).
    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Calls `ready` every `poll` until it says yes. Fails when the process exits first
    /// ("NAME exited at start (STATUS)") or `timeout` passes ("NAME did not READY_MEANS within
    /// TIMEOUT", `ready_means` saying what ready is, e.g. "accept connections"); the process
    /// is left running then, for the caller (or the drop) to stop.
    pub fn wait_ready(
        &mut self,
        timeout: Duration,
        poll: Duration,
        ready_means: &str,
        mut ready: impl FnMut() -> bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                bail!("{} exited at start ({status})", self.name);
            }
            if ready() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{} did not {ready_means} within {timeout:?}", self.name);
            }
            std::thread::sleep(poll);
        }
    }

    /// Sends the stop signal and waits for the exit; kills the process (and says so) when it
    /// does not exit in time or cannot be signalled. Returns how it exited; stopping a
    /// process that already exited and was reaped is an error.
    pub fn stop(mut self) -> anyhow::Result<ExitStatus> {
        self.stop_now()
    }

    fn stop_now(&mut self) -> anyhow::Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            bail!("{} has already exited", self.name);
        };
        let (name, signal, timeout) = (self.name, self.signal.name(), self.stop_timeout);
        let pid = child.id().to_string();
        // The child is not reaped until we wait for it, so its pid cannot have been reused.
        // A root test process may signal a child that runs as another user (Postgres).
        let signalled = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(&pid)
            .status()
            .is_ok_and(|s| s.success());
        if !signalled {
            let _ = child.kill();
            let _ = child.wait();
            bail!("cannot send SIG{signal} to {name} ({pid}) with `kill`; killed it");
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{name} ({pid}) did not stop within {timeout:?}; killed it");
            }
            std::thread::sleep(STOP_POLL);
        }
    }

    /// SIGKILL, then waits for the exit: no chance to flush anything.
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for StoppedByPid {
    fn drop(&mut self) {
        if self.child.is_some() {
            if let Err(e) = self.stop_now() {
                eprintln!("{e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;

    fn sleeper(script: &str) -> Child {
        Command::new("sh")
            .args(["-c", script])
            .stdin(Stdio::null())
            .spawn()
            .unwrap()
    }

    fn alive(pid: u32) -> bool {
        // A reaped child's /proc entry is gone; a zombie would still be there.
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    }

    /// A process that sleeps and honours SIGTERM, stopped within `STOP` by it.
    fn sleeping() -> StoppedByPid {
        StoppedByPid::new(sleeper("exec sleep 30"), "sleep", StopSignal::Term, STOP)
    }

    /// A stop timeout no passing test comes near.
    const STOP: Duration = Duration::from_secs(10);

    #[test]
    fn a_process_that_honours_its_signal_exits_by_it() {
        let p = sleeping();
        let pid = p.id();
        let started = Instant::now();
        let status = p.stop().unwrap();
        assert!(started.elapsed() < STOP / 2);
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(15), "{status:?}");
        assert!(!alive(pid));
    }

    #[test]
    fn a_process_that_ignores_its_signal_is_killed_after_the_timeout() {
        // The shell ignores SIGINT and waits in a loop of short sleeps. It says when its trap
        // is set: a signal sent before that would end it at once.
        let mut child = Command::new("sh")
            .args(["-c", "trap '' INT; echo trapped; while :; do sleep 0.05; done"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        assert_eq!(line, "trapped\n");
        let p = StoppedByPid::new(child, "stubborn", StopSignal::Int, Duration::from_millis(300));
        let pid = p.id();
        let started = Instant::now();
        let err = p.stop().unwrap_err().to_string();
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(err.contains("did not stop within 300ms; killed it"), "{err}");
        assert!(!alive(pid));
    }

    #[test]
    fn dropping_stops_the_process() {
        let p = sleeping();
        let pid = p.id();
        assert!(alive(pid));
        drop(p);
        assert!(!alive(pid));
    }

    #[test]
    fn waiting_for_readiness_ends_when_the_process_exits() {
        let mut p = StoppedByPid::new(sleeper("exit 3"), "quitter", StopSignal::Term, STOP);
        let err = p
            .wait_ready(STOP, STOP_POLL, "answer", || false)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "quitter exited at start (exit status: 3)");
        assert_eq!(p.id(), 0, "an exited process is reaped");
        assert!(p.stop().is_err(), "stopping it again says it has exited");
    }

    #[test]
    fn waiting_for_readiness_is_bounded_and_leaves_the_process_running() {
        let mut p = sleeping();
        let mut asked = 0;
        let err = p
            .wait_ready(Duration::from_millis(100), Duration::from_millis(10), "answer", || {
                asked += 1;
                false
            })
            .unwrap_err()
            .to_string();
        assert_eq!(err, "sleep did not answer within 100ms");
        assert!(asked >= 5, "asked {asked} times");
        assert!(alive(p.id()), "a timed-out wait leaves the process running");
        let mut ready_at_third = 0;
        p.wait_ready(STOP, Duration::from_millis(1), "answer", || {
            ready_at_third += 1;
            ready_at_third == 3
        })
        .unwrap();
        assert_eq!(ready_at_third, 3);
        p.stop().unwrap();
    }
}
