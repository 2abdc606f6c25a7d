//! Runs: the room's program in a fresh hardened container (see `mesh-runner`), its output
//! streamed to everyone in the room. A run is a task of its own; it reports to the room's
//! task, which broadcasts. The Docker connection is made on the first run, so the rest of
//! the server works without Docker.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mesh_protocol::messages::RunStream;
use mesh_protocol::rest::LanguageInfo;
use mesh_runner::{ImageSource, Job, JobFile, Language, Mode, Registry, RunEvent, Runner, Stage, Stdin};
use tokio::sync::{mpsc, oneshot, Mutex};

/// Stdin chunks queued for a run before typing blocks.
pub const STDIN_QUEUE: usize = 64;

/// What a run reports to its room.
#[derive(Debug)]
pub enum RunNotice {
    /// Output.
    Output(RunStream, String),
    /// The end.
    Exited {
        /// `compile` or `run`.
        stage: &'static str,
        /// Exit status.
        code: Option<i64>,
        /// Milliseconds.
        duration_ms: u64,
        /// The limit hit, if any.
        limit: Option<&'static str>,
        /// A failure of the run service.
        error: Option<String>,
    },
}

/// How long a warm container may idle before it is replaced (so rebuilt images are used).
const WARM_MAX_IDLE: Duration = Duration::from_secs(600);

/// How often sandboxes no live server supervises are looked for (see `Runner::sweep_leftovers`).
const SWEEP_EVERY: Duration = Duration::from_secs(300);

/// Removes sandboxes no live server supervises, and says so.
async fn sweep(runner: &Runner) {
    match runner.sweep_leftovers().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "removed sandboxes that no live server supervised"),
        Err(e) => tracing::warn!(error = %e, "could not look for leftover sandboxes"),
    }
}

/// The run service shared by all rooms.
pub struct RunService {
    registry: Registry,
    images: ImageSource,
    pool: usize,
    warm: Vec<String>,
    runner: Mutex<Option<Arc<Runner>>>,
    /// Admission: the caps on runs and debug sessions, shared by every room and REST.
    pub gate: crate::run_gate::RunGate,
    /// How long a debug session may go on with nobody attached.
    pub debug_idle: Duration,
    /// Sandbox slots shared with the other nodes (`--cluster-max-sandboxes`), if capped.
    slots: Option<Arc<crate::bus::slots::ClusterSlots>>,
}

impl RunService {
    /// The service over `registry` (the shipped one unless the operator named another), with
    /// `pool` warm containers per language that has run, the `warm` languages warmed as soon
    /// as Docker answers, and runs and debug sessions admitted within `limits`.
    pub fn new(
        registry: Registry,
        images: ImageSource,
        pool: usize,
        warm: Vec<String>,
        limits: crate::admission::Limits,
    ) -> anyhow::Result<Self> {
        for id in &warm {
            registry.get(id).map_err(|e| anyhow::anyhow!("run_warm: {e}"))?;
        }
        Ok(RunService {
            registry,
            images,
            pool,
            warm,
            runner: Mutex::new(None),
            gate: crate::run_gate::RunGate::new(limits),
            debug_idle: crate::debug::DEFAULT_DEBUG_IDLE,
            slots: None,
        })
    }

    /// The same service, ending debug sessions nobody has been attached to for `idle`.
    pub fn with_debug_idle(mut self, idle: Duration) -> Self {
        self.debug_idle = idle;
        self
    }

    /// The same service, taking a cluster slot for every sandbox it starts.
    pub fn with_cluster_slots(mut self, slots: Option<Arc<crate::bus::slots::ClusterSlots>>) -> Self {
        self.slots = slots;
        self
    }

    /// Connects to Docker now when languages are to be warmed from the start; a failure is
    /// logged, and runs try again later.
    pub async fn prewarm(&self) {
        if self.warm.is_empty() || self.pool == 0 {
            return;
        }
        if let Err(e) = self.runner().await {
            tracing::warn!(error = %e, "cannot warm run containers");
        }
    }

    /// Removes idle warm containers (on shutdown).
    pub async fn shutdown(&self) {
        let runner = self.runner.lock().await.clone();
        if let Some(r) = runner {
            r.shutdown().await;
        }
    }

    /// Languages for `GET /api/languages`.
    pub fn languages(&self) -> Vec<LanguageInfo> {
        self.registry
            .languages()
            .map(|l| LanguageInfo {
                id: l.id.clone(),
                name: l.name.clone(),
                extensions: l.extensions.clone(),
            })
            .collect()
    }

    /// The language of a run: the one asked for, else the entry file's extension.
    pub fn language_for(&self, path: &str, asked: Option<&str>) -> Result<&Language, String> {
        match asked {
            Some(id) => self
                .registry
                .get(id)
                .map_err(|_| format!("unknown language {id:?}; see GET /api/languages")),
            None => self
                .registry
                .for_path(path)
                .ok_or_else(|| format!("no language runs {path:?}; name one, or see GET /api/languages")),
        }
    }

    async fn runner(&self) -> Result<Arc<Runner>, String> {
        let mut slot = self.runner.lock().await;
        if let Some(r) = slot.as_ref() {
            return Ok(r.clone());
        }
        // Not cached on failure: Docker may come up later.
        let r = Arc::new(
            Runner::connect(self.registry.clone(), self.images)
                .await
                .map_err(|e| format!("runs are unavailable: {e}"))?
                .with_pool(self.pool, WARM_MAX_IDLE),
        );
        sweep(&r).await;
        // Then now and again, for as long as the service lives: another server on this
        // engine may die and leave its sandboxes at any time.
        let weak = Arc::downgrade(&r);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(SWEEP_EVERY).await;
                let Some(r) = weak.upgrade() else { return };
                sweep(&r).await;
            }
        });
        for id in &self.warm {
            // Checked in `new`. A debuggable language is warmed for debugging too.
            let _ = r.warm(id, Mode::Run);
            if self.registry.get(id).is_ok_and(|l| l.debug.is_some()) {
                let _ = r.warm(id, Mode::Debug);
            }
        }
        *slot = Some(r.clone());
        Ok(r)
    }

    /// Builds the job: the entry file becomes the language's main file; the room's other
    /// files keep their paths, so imports between them work.
    pub fn job(&self, lang: &Language, entry: &str, files: Vec<(String, String)>, stdin: mpsc::Receiver<Bytes>) -> Job {
        let mut out = Vec::new();
        for (path, text) in files {
            if path == entry {
                out.push(JobFile::new(lang.main_file.clone(), text.clone()));
                if path != lang.main_file {
                    out.push(JobFile::new(path, text));
                }
            } else if path != lang.main_file && out.len() < mesh_runner::files::MAX_FILES - 1 {
                out.push(JobFile::new(path, text));
            }
        }
        Job::new(lang.id.clone(), out).stdin(Stdin::Channel(stdin))
    }

    /// Starts a job (a run's or a debug session's) and hands over its events, with the
    /// cluster slot it holds (keep it as long as the run); the error says why it could not
    /// start. With a cluster cap it first waits for a free slot.
    pub async fn start(&self, job: Job) -> Result<(mesh_runner::Run, Option<crate::bus::slots::Lease>), String> {
        let runner = self.runner().await?;
        let lease = match &self.slots {
            Some(slots) => Some(slots.acquire().await?),
            None => None,
        };
        let run = runner.run(job).await.map_err(|e| e.to_string())?;
        Ok((run, lease))
    }

    /// Runs a job to the end, reporting through `notify`; `stop` ends it early.
    pub async fn run(self: Arc<Self>, job: Job, tx: mpsc::Sender<RunNotice>, mut stop: oneshot::Receiver<()>) {
        // Every notice is delivered, in order: a room that is slow to take them slows the run.
        let notify = |n: RunNotice| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(n).await;
            }
        };
        // A run waiting for a cluster slot may be stopped meanwhile.
        let started = tokio::select! {
            started = self.start(job) => started,
            _ = &mut stop => {
                return notify(RunNotice::Exited { stage: "run", code: None, duration_ms: 0, limit: None, error: Some("stopped".into()) }).await;
            }
        };
        // The lease is given back when the run ends (dropped with it, after the container).
        let (mut run, _lease) = match started {
            Ok(r) => r,
            Err(e) => return notify(failed(format!("the run could not start: {e}"))).await,
        };
        loop {
            tokio::select! {
                ev = run.next_event() => match ev {
                    Some(RunEvent::Compile(b)) => notify(RunNotice::Output(RunStream::Compile, text(&b))).await,
                    Some(RunEvent::Stdout(b)) => notify(RunNotice::Output(RunStream::Stdout, text(&b))).await,
                    Some(RunEvent::Stderr(b)) => notify(RunNotice::Output(RunStream::Stderr, text(&b))).await,
                    Some(RunEvent::Compiled { .. }) => {}
                    Some(RunEvent::Exited(exit)) => {
                        let limit = exit.limit_hit.map(|l| match l {
                            mesh_runner::Limit::Time => "time",
                            mesh_runner::Limit::Memory => "memory",
                            mesh_runner::Limit::Output => "output",
                            mesh_runner::Limit::Pids => "pids",
                        });
                        let stage = if exit.stage == Stage::Compile { "compile" } else { "run" };
                        return notify(RunNotice::Exited { stage, code: exit.code, duration_ms: exit.duration.as_millis() as u64, limit, error: None }).await;
                    }
                    Some(RunEvent::Failed(msg)) => return notify(failed(msg)).await,
                    None => return notify(failed("the run ended without an exit status".into())).await,
                },
                _ = &mut stop => {
                    // Dropping the run removes its container.
                    drop(run);
                    return notify(RunNotice::Exited { stage: "run", code: None, duration_ms: 0, limit: None, error: Some("stopped".into()) }).await;
                }
            }
        }
    }
}

fn failed(error: String) -> RunNotice {
    RunNotice::Exited {
        stage: "run",
        code: None,
        duration_ms: 0,
        limit: None,
        error: Some(error),
    }
}

fn text(b: &Bytes) -> String {
    String::from_utf8_lossy(b).into_owned()
}
