//! Runs: the room's program in a fresh hardened container (see `mesh-runner`), its output
//! streamed to everyone in the room. A run is a task of its own; it reports to the room's
//! task, which broadcasts. The Docker connection is made on the first run, so the rest of
//! the server works without Docker.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mesh_protocol::messages::RunStream;
use mesh_protocol::rest::LanguageInfo;
use mesh_runner::{ImageSource, Job, JobFile, Language, Registry, RunEvent, Stage, Stdin};
use tokio::sync::{mpsc, oneshot};

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

/// What a started sandbox holds: its cluster slot (with a cluster cap) and its count on its
/// engine. Dropped with the run, both are given back.
pub struct Holds {
    _lease: Option<crate::bus::slots::Lease>,
    _load: crate::engines::Load,
}

/// The run service shared by all rooms.
pub struct RunService {
    registry: Registry,
    images: ImageSource,
    pool: usize,
    warm: Vec<String>,
    /// The Docker engines sandboxes go to.
    engines: crate::engines::Engines,
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
            engines: crate::engines::Engines::new(Vec::new(), registry.clone(), images, pool, warm.clone()),
            registry,
            images,
            pool,
            warm,
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

    /// The same service, sending sandboxes to these engines (the default one when empty).
    pub fn with_engines(mut self, addresses: Vec<crate::engines::EngineAddress>) -> Self {
        self.engines = crate::engines::Engines::new(
            addresses,
            self.registry.clone(),
            self.images,
            self.pool,
            self.warm.clone(),
        );
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
        self.engines.connect_all().await;
    }

    /// Removes idle warm containers (on shutdown).
    pub async fn shutdown(&self) {
        self.engines.shutdown().await;
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

    /// Starts a job (a run's or a debug session's) on the least loaded engine and hands over
    /// its events, with what the sandbox holds (keep it as long as the run); the error says
    /// why it could not start. With a cluster cap it first waits for a free slot.
    pub async fn start(&self, job: Job) -> Result<(mesh_runner::Run, Holds), String> {
        let lease = match &self.slots {
            Some(slots) => Some(slots.acquire().await?),
            None => None,
        };
        let (runner, load) = self.engines.pick().await?;
        let run = runner.run(job).await.map_err(|e| e.to_string())?;
        Ok((
            run,
            Holds {
                _lease: lease,
                _load: load,
            },
        ))
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
        // Its cluster slot and its place on its engine are given back when the run ends.
        let (mut run, _holds) = match started {
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
