//! Running one job: one fresh container, a supervisor task that owns it, a stream of events.
//!
//! [`Runner::run`] validates the job, then takes a warm container from the pool or creates,
//! attaches and starts a cold one; any failure there is an [`Error`] and the container is
//! already gone. The files go in on stdin (see [`crate::sandbox`]). Then one
//! task supervises the run: a single `select!` over the container's output, the wall-clock
//! deadline and the consumer going away. It enforces the output cap on the stream, kills on
//! the deadline, reads the verdict (exit code, OOM) once the container has stopped, removes
//! the container, and only then sends the final [`RunEvent::Exited`], so a consumer that has
//! seen `Exited` knows nothing of the run is left.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::models::{ContainerSummaryStateEnum, ContainerUpdateBody};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, KillContainerOptionsBuilder, ListContainersOptionsBuilder,
    RemoveContainerOptionsBuilder, StatsOptionsBuilder, WaitContainerOptionsBuilder,
};
use bollard::Docker;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use crate::files::{self, JobFile};
use crate::pool::{Pool, PoolKey};
use crate::registry::{Language, Limits, LimitsOverride, Registry};
use crate::sandbox::{self, MarkerScanner, Scan};
use crate::{Error, Result};

/// How long Docker may take to answer the first request before we call it unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Create + attach + start: a few hundred ms normally; a daemon this slow is broken.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);
/// After a kill (or the streams closing), how long to wait for Docker to report the stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// After a kill, how long the output may take to close before the supervisor stops reading.
const KILL_DRAIN: Duration = Duration::from_secs(5);
/// A sandbox stopped (or never started) this long ago has no supervisor: a live one removes
/// it within seconds (see `sweep_leftovers`).
const STOPPED_GRACE: Duration = Duration::from_secs(300);
/// A one-shot stats read (pids count at a timeout); skipped if Docker is slower than this.
const STATS_TIMEOUT: Duration = Duration::from_secs(2);
/// Events buffered for a slow consumer before the supervisor waits for it (back-pressure,
/// which in turn stops reading the container's output, which blocks its writes).
const EVENT_BUFFER: usize = 64;

/// Which image of a language to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSource {
    /// The public image (`image`), for machines that can pull from a registry.
    Public,
    /// The image built by `scripts/build-images` (`local_image`), for machines that cannot.
    Local,
}

/// The step of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The language's compile command.
    Compile,
    /// The program itself.
    Run,
}

/// A limit that ended a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The wall-clock limit: the container was killed.
    Time,
    /// The memory limit: the kernel's OOM killer struck.
    Memory,
    /// The output cap: the container was killed, the output is cut at the cap.
    Output,
    /// The process limit was reached when the step ran out of time (a fork bomb).
    Pids,
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// The step that ended the run: `Compile` means a compile error (or a limit hit while
    /// compiling), `Run` that the program ran.
    pub stage: Stage,
    /// The exit status (128 + signal when killed), if Docker reported one.
    pub code: Option<i64>,
    /// Wall-clock time of the step.
    pub duration: Duration,
    /// The limit that ended it, if any.
    pub limit_hit: Option<Limit>,
}

impl Exit {
    /// True when the compiler rejected the program (not a limit).
    pub fn is_compile_error(&self) -> bool {
        self.stage == Stage::Compile && self.limit_hit.is_none()
    }

    /// True when the program ran and exited with status 0 within its limits.
    pub fn is_success(&self) -> bool {
        self.stage == Stage::Run && self.code == Some(0) && self.limit_hit.is_none()
    }
}

/// What a run reports, in order: compiler output, `Compiled`, program output, then exactly
/// one of `Exited` or `Failed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEvent {
    /// Compiler output (its stdout and stderr, in order).
    Compile(Bytes),
    /// The compile step succeeded; the program starts now.
    Compiled {
        /// Wall-clock time of the compile step.
        duration: Duration,
    },
    /// Program stdout.
    Stdout(Bytes),
    /// Program stderr.
    Stderr(Bytes),
    /// The run is over and its container removed.
    Exited(Exit),
    /// The run service itself failed mid-run (not the program); the container is removed.
    Failed(String),
}

/// What goes to the program's stdin.
#[derive(Debug, Default)]
pub enum Stdin {
    /// Nothing: the program reads end-of-file at once.
    #[default]
    Empty,
    /// These bytes, then end-of-file.
    Bytes(Bytes),
    /// Whatever arrives on the channel (e.g. typed by participants); end-of-file when every
    /// sender is dropped.
    Channel(mpsc::Receiver<Bytes>),
}

/// One run request.
#[derive(Debug)]
pub struct Job {
    /// Registry id of the language.
    pub language: String,
    /// The files; must include the language's `main_file`.
    pub files: Vec<JobFile>,
    /// The program's stdin.
    pub stdin: Stdin,
    /// Tightens the language's limits for this job (both steps); cannot loosen them.
    pub limits: LimitsOverride,
    /// Run the program, or start its debug adapter.
    pub mode: Mode,
}

/// What a job starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Mode {
    /// The program (after the compile step, if any).
    #[default]
    Run,
    /// The language's debug adapter (after the debug build, if any), speaking DAP on the
    /// program's stdin and stdout; see [`crate::DebugSpec`].
    Debug,
}

impl Mode {
    /// The word the runner script reads.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Run => "run",
            Mode::Debug => "debug",
        }
    }
}

impl Job {
    /// A job of `language` with these files, no stdin and the registry's limits.
    pub fn new(language: impl Into<String>, files: Vec<JobFile>) -> Self {
        Self {
            language: language.into(),
            files,
            stdin: Stdin::Empty,
            limits: LimitsOverride::default(),
            mode: Mode::Run,
        }
    }

    /// Sets the mode.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets the program's stdin.
    pub fn stdin(mut self, stdin: Stdin) -> Self {
        self.stdin = stdin;
        self
    }

    /// Tightens the limits.
    pub fn limits(mut self, limits: LimitsOverride) -> Self {
        self.limits = limits;
        self
    }
}

/// Everything a run printed, and how it ended ([`Run::collect`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collected {
    /// Compiler output.
    pub compile: Vec<u8>,
    /// Program stdout.
    pub stdout: Vec<u8>,
    /// Program stderr.
    pub stderr: Vec<u8>,
    /// How it ended; `Err` with the message of a [`RunEvent::Failed`].
    pub exit: std::result::Result<Exit, String>,
}

/// A started run: a stream of [`RunEvent`]s. Dropping it kills and removes the container.
pub struct Run {
    container_id: String,
    events: mpsc::Receiver<RunEvent>,
}

impl Run {
    /// The container's id (for logs; it is removed when the run ends).
    pub fn container_id(&self) -> &str {
        &self.container_id
    }

    /// The next event; `None` after the final one.
    pub async fn next_event(&mut self) -> Option<RunEvent> {
        self.events.recv().await
    }

    /// Waits for the end and gathers the output.
    pub async fn collect(mut self) -> Collected {
        let mut c = Collected {
            compile: Vec::new(),
            stdout: Vec::new(),
            stderr: Vec::new(),
            exit: Err("the run ended without a verdict".into()),
        };
        while let Some(ev) = self.events.recv().await {
            match ev {
                RunEvent::Compile(b) => c.compile.extend_from_slice(&b),
                RunEvent::Compiled { .. } => {}
                RunEvent::Stdout(b) => c.stdout.extend_from_slice(&b),
                RunEvent::Stderr(b) => c.stderr.extend_from_slice(&b),
                RunEvent::Exited(exit) => c.exit = Ok(exit),
                RunEvent::Failed(msg) => c.exit = Err(msg),
            }
        }
        c
    }
}

impl Stream for Run {
    type Item = RunEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<RunEvent>> {
        self.events.poll_recv(cx)
    }
}

/// The run service: a Docker connection and a registry. Cheap to clone.
#[derive(Clone)]
pub struct Runner {
    docker: Docker,
    registry: Arc<Registry>,
    images: ImageSource,
    pool: Option<Arc<Pool>>,
}

impl Runner {
    /// Connects to Docker the usual way (`DOCKER_HOST`, else the local socket) and checks
    /// that it answers; [`Error::DockerUnreachable`] says how to fix it when it does not.
    pub async fn connect(registry: Registry, images: ImageSource) -> Result<Self> {
        let docker = Docker::connect_with_defaults().map_err(|e| Error::DockerUnreachable(e.to_string()))?;
        Self::with_docker(docker, registry, images).await
    }

    /// Connects to the Docker engine at `host` (`unix:///path`, `tcp://host:port`, ...).
    pub async fn connect_to(host: &str, registry: Registry, images: ImageSource) -> Result<Self> {
        let docker = Docker::connect_with_host(host).map_err(|e| Error::DockerUnreachable(format!("{host}: {e}")))?;
        Self::with_docker(docker, registry, images).await
    }

    /// Connects to a remote Docker engine at `host` (`tcp://HOST:PORT`) over mutual TLS, with
    /// `ca.pem`, `cert.pem` and `key.pem` from `certs` (Docker's own layout).
    pub async fn connect_tls(
        host: &str,
        certs: &std::path::Path,
        registry: Registry,
        images: ImageSource,
    ) -> Result<Self> {
        let docker = Docker::connect_with_ssl(
            host,
            &certs.join("key.pem"),
            &certs.join("cert.pem"),
            &certs.join("ca.pem"),
            SETUP_TIMEOUT.as_secs(),
            bollard::API_DEFAULT_VERSION,
        )
        .map_err(|e| Error::DockerUnreachable(format!("{host}: {e}")))?;
        Self::with_docker(docker, registry, images).await
    }

    /// Uses this Docker client; negotiates the API version (Debian's Docker 20.10 speaks
    /// 1.41, older than bollard's default) and checks that it answers.
    pub async fn with_docker(docker: Docker, registry: Registry, images: ImageSource) -> Result<Self> {
        let docker = tokio::time::timeout(CONNECT_TIMEOUT, docker.negotiate_version())
            .await
            .map_err(|_| Error::DockerUnreachable(format!("no answer within {CONNECT_TIMEOUT:?}")))?
            .map_err(|e| Error::DockerUnreachable(e.to_string()))?;
        Ok(Self {
            docker,
            registry: Arc::new(registry),
            images,
            pool: None,
        })
    }

    /// Turns on the warm pool: `size` pre-started containers per language and mode that
    /// has been warmed or run, each replaced after `max_idle`. See [`crate::pool`].
    pub fn with_pool(mut self, size: usize, max_idle: Duration) -> Self {
        self.pool = (size > 0).then(|| Arc::new(Pool::new(size, max_idle)));
        self
    }

    /// Removes sandboxes that no live process supervises (see "Nothing outlives its server" in
    /// [`crate::sandbox`]): stopped ones a supervisor would have removed minutes ago, and
    /// running ones older than any warm wait plus job of this registry could make them.
    /// Servers sharing an engine share a registry, so this never takes another server's
    /// live run. Returns how many were removed.
    pub async fn sweep_leftovers(&self) -> Result<usize> {
        let filters = HashMap::from([("label".to_owned(), vec![sandbox::LABEL.to_owned()])]);
        let opts = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(Error::from_docker)?;
        let now = unix_now();
        let longest = self.longest_life();
        let mut removed = 0;
        for c in list {
            let (Some(id), Some(created)) = (c.id, c.created) else {
                continue;
            };
            let running = matches!(
                c.state,
                Some(ContainerSummaryStateEnum::RUNNING | ContainerSummaryStateEnum::PAUSED)
            );
            // Only a stopped container's end is asked for, and only when its age allows.
            let finished = if running || !Leftover::could_be(created, now) {
                None
            } else {
                match self.docker.inspect_container(&id, None).await {
                    Ok(i) => i.state.and_then(|s| s.finished_at).and_then(|t| parse_docker_time(&t)),
                    Err(_) => continue,
                }
            };
            let seen = Leftover {
                running,
                created,
                finished,
            };
            // Another server on this engine may be removing the same one: not an error.
            if seen.is_orphan(now, longest) && self.docker.remove_container(&id, Some(force_remove())).await.is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The longest a live server keeps a sandbox: a warm container's idle time, then the
    /// longest job of any language and mode, then setting up and stopping.
    pub fn longest_life(&self) -> Duration {
        let idle = self.pool.as_ref().map_or(Duration::ZERO, |p| p.max_idle());
        let job = self
            .registry
            .languages()
            .flat_map(|lang| [Mode::Run, Mode::Debug].map(|mode| step_limits(lang, mode, &LimitsOverride::default())))
            .filter_map(|steps| steps.ok())
            .map(|(first, run, compiles)| sandbox::job_lifetime(&first, &run, compiles))
            .max()
            .unwrap_or(Duration::ZERO);
        idle + job + SETUP_TIMEOUT + STOP_TIMEOUT + KILL_DRAIN
    }

    /// The ids of the warm containers idle right now for `language` in `mode`.
    pub fn warm_ids(&self, language: &str, mode: Mode) -> Vec<String> {
        self.pool
            .as_ref()
            .map_or(Vec::new(), |p| p.idle_ids(&PoolKey::new(language, mode)))
    }

    /// Warm containers idle right now for `language` in `mode` (0 without a pool).
    pub fn warm_count(&self, language: &str, mode: Mode) -> usize {
        self.pool
            .as_ref()
            .map_or(0, |p| p.idle_count(&PoolKey::new(language, mode)))
    }

    /// The Docker client.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The image this runner uses for `lang`.
    pub fn image_for<'a>(&self, lang: &'a Language) -> Result<&'a str> {
        match self.images {
            ImageSource::Public => Ok(&lang.image),
            ImageSource::Local => lang.local_image.as_deref().ok_or_else(|| Error::ImageMissing {
                image: "(none)".into(),
                hint: format!("language {:?} has no local_image in the registry", lang.id),
            }),
        }
    }

    /// Starts a run. Everything about the job is checked before any container exists; a
    /// failure while setting up removes the container before returning the error. A warm
    /// container is used when the pool has one for the job's language, mode and limits.
    pub async fn run(&self, job: Job) -> Result<Run> {
        let plan = self.plan(&job)?;
        let archive = files::tar_archive(&job.files)?;
        if let Some(pool) = &self.pool {
            let key = PoolKey::new(&plan.lang.id, job.mode);
            if let Some(warm) = pool.take(self, &key, &plan.first) {
                return Ok(self.launch(warm, plan, archive, job));
            }
        }
        let cold = start_container(&self.docker, &plan.lang, job.mode, &plan.image, &plan.first).await?;
        Ok(self.launch(cold, plan, archive, job))
    }

    /// Keeps warm containers ready for `language` in `mode` from now on (the pool also
    /// starts warming a language on its first run). Does nothing without a pool.
    pub fn warm(&self, language: &str, mode: Mode) -> Result<()> {
        if let Some(pool) = &self.pool {
            self.registry.get(language)?;
            pool.ensure_refill(self, &PoolKey::new(language, mode));
        }
        Ok(())
    }

    /// Removes every idle warm container and stops refilling. Runs already started go on.
    pub async fn shutdown(&self) {
        if let Some(pool) = &self.pool {
            pool.drain().await;
        }
    }

    /// Checks the job and works out its limits and image.
    fn plan(&self, job: &Job) -> Result<Plan> {
        let lang = self.registry.get(&job.language)?.clone();
        files::validate(&job.files)?;
        if !job.files.iter().any(|f| f.path == lang.main_file) {
            return Err(Error::BadFile {
                path: lang.main_file.clone(),
                problem: format!("the {} entry file is missing", lang.name),
            });
        }
        let (first, run_limits, compiles) = step_limits(&lang, job.mode, &job.limits)?;
        let image = self.image_for(&lang)?.to_owned();
        Ok(Plan {
            lang,
            image,
            first,
            run_limits,
            compiles,
        })
    }

    /// Hands a started container to a supervisor; the job's files go in on its stdin.
    fn launch(&self, container: Started, plan: Plan, archive: Vec<u8>, job: Job) -> Run {
        let nonce = new_nonce();
        let (go_tx, go_rx) = match plan.compiles {
            true => {
                let (tx, rx) = oneshot::channel();
                (Some(tx), Some(rx))
            }
            false => (None, None),
        };
        let Started {
            guard, input, output, ..
        } = container;
        let lifetime = sandbox::job_lifetime(&plan.first, &plan.run_limits, plan.compiles);
        let mut control = format!(
            "{nonce}\n{}\n{}\n{}\n",
            job.mode.as_str(),
            archive.len(),
            lifetime.as_secs()
        )
        .into_bytes();
        control.extend_from_slice(&archive);
        let feeder = tokio::spawn(feed_stdin(input, control, go_rx, job.stdin));
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        let container_id = guard.id.clone();
        let supervisor = Supervisor {
            docker: self.docker.clone(),
            guard,
            tx,
            scanner: MarkerScanner::new(&nonce),
            stage: if plan.compiles { Stage::Compile } else { Stage::Run },
            limits: plan.first,
            run_limits: plan.run_limits,
            go: go_tx,
            emitted: 0,
            killed: None,
            started: Instant::now(),
            ended: None,
            compile_status: None,
        };
        tokio::spawn(async move {
            supervisor.supervise(output).await;
            feeder.abort();
        });
        Run {
            container_id,
            events: rx,
        }
    }
}

/// A checked job: its language, image, and the limits of its steps.
struct Plan {
    lang: Language,
    image: String,
    /// The first step's limits (the container is created with them).
    first: Limits,
    /// The program's (or the debug adapter's) limits.
    run_limits: Limits,
    /// Whether a compile step comes first.
    compiles: bool,
}

/// The first step's limits, the run step's, and whether there is a compile step, for a
/// job of `lang` in `mode` tightened by `tighten`.
pub(crate) fn step_limits(lang: &Language, mode: Mode, tighten: &LimitsOverride) -> Result<(Limits, Limits, bool)> {
    let (compile, run_limits) = match mode {
        Mode::Run => (lang.compile.is_some(), lang.limits),
        Mode::Debug => {
            let debug = lang
                .debug
                .as_ref()
                .ok_or_else(|| Error::NotDebuggable(lang.name.clone()))?;
            (debug.compile.is_some(), debug.limits)
        }
    };
    let run_limits = tighten.tighten(run_limits);
    let first = if compile {
        tighten.tighten(lang.compile_limits)
    } else {
        run_limits
    };
    Ok((first, run_limits, compile))
}

/// A container that is created, attached and started, its runner waiting on stdin.
pub(crate) struct Started {
    pub(crate) guard: ContainerGuard,
    input: Pin<Box<dyn AsyncWrite + Send>>,
    pub(crate) output: Pin<Box<dyn Stream<Item = std::result::Result<LogOutput, DockerError>> + Send>>,
    /// The limits it was created with.
    pub(crate) limits: Limits,
    pub(crate) created: Instant,
}

/// Creates, attaches and starts a sandbox for `lang`; on any failure nothing is left.
pub(crate) async fn start_container(
    docker: &Docker,
    lang: &Language,
    mode: Mode,
    image: &str,
    limits: &Limits,
) -> Result<Started> {
    let config = sandbox::container_config(lang, mode, image, limits);
    let created = tokio::time::timeout(SETUP_TIMEOUT, docker.create_container(None, config))
        .await
        .map_err(|_| Error::Protocol(format!("Docker did not create a container within {SETUP_TIMEOUT:?}")))?
        .map_err(|e| match e {
            DockerError::DockerResponseServerError {
                status_code: 404,
                message,
            } => Error::ImageMissing {
                image: image.to_owned(),
                hint: format!("{message}; build it with `scripts/build-images {}` or pull it", lang.id),
            },
            other => Error::from_docker(other),
        })?;
    let guard = ContainerGuard::new(docker.clone(), created.id.clone());
    let setup = async {
        let attach = AttachContainerOptionsBuilder::new()
            .stream(true)
            .stdin(true)
            .stdout(true)
            .stderr(true)
            .build();
        let attached = docker.attach_container(&guard.id, Some(attach)).await?;
        docker.start_container(&guard.id, None).await?;
        Ok::<_, DockerError>(attached)
    };
    match tokio::time::timeout(SETUP_TIMEOUT, setup).await {
        Ok(Ok(attached)) => Ok(Started {
            guard,
            input: attached.input,
            output: attached.output,
            limits: *limits,
            created: Instant::now(),
        }),
        Ok(Err(e)) => {
            guard.remove().await;
            Err(Error::from_docker(e))
        }
        Err(_) => {
            guard.remove().await;
            Err(Error::Protocol(format!(
                "Docker did not start the container within {SETUP_TIMEOUT:?}"
            )))
        }
    }
}

/// What the sweep knows of one labelled container (times in Unix seconds).
#[derive(Debug, Clone, Copy)]
struct Leftover {
    running: bool,
    created: i64,
    /// When a stopped container stopped, if Docker says.
    finished: Option<i64>,
}

impl Leftover {
    /// A container younger than the grace cannot be a stopped leftover yet.
    fn could_be(created: i64, now: i64) -> bool {
        now - created >= STOPPED_GRACE.as_secs() as i64
    }

    /// True when no live supervisor can be holding it. A running one outlived every job;
    /// a stopped one stopped long ago; one created and never started (no end time) is judged
    /// by its creation.
    fn is_orphan(&self, now: i64, longest_life: Duration) -> bool {
        if self.running {
            return now - self.created > longest_life.as_secs() as i64;
        }
        let grace = STOPPED_GRACE.as_secs() as i64;
        match self.finished {
            Some(end) if end > 0 => now - end >= grace,
            _ => now - self.created >= grace,
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Docker's RFC 3339 times (`2026-12-05T00:31:02.123456789Z`); its "never" is year 1.
fn parse_docker_time(text: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    Some(t.unix_timestamp())
}

fn new_nonce() -> String {
    let bits: u128 = rand::random();
    format!("{bits:032x}")
}

/// Writes the runner's control lines (nonce, mode, archive size, lifetime), the files' archive, later
/// `run` after a compile, then the program's stdin, then closes stdin.
async fn feed_stdin(
    mut input: Pin<Box<dyn AsyncWrite + Send>>,
    control: Vec<u8>,
    go: Option<oneshot::Receiver<()>>,
    stdin: Stdin,
) {
    // Write errors mean the container is gone; the supervisor reports that.
    async fn write(input: &mut Pin<Box<dyn AsyncWrite + Send>>, bytes: &[u8]) -> std::io::Result<()> {
        input.write_all(bytes).await?;
        input.flush().await
    }
    if write(&mut input, &control).await.is_err() {
        return;
    }
    if let Some(go) = go {
        // Dropped without a signal: the compile failed or the run was killed.
        if go.await.is_err() || write(&mut input, b"run\n").await.is_err() {
            return;
        }
    }
    match stdin {
        Stdin::Empty => {}
        Stdin::Bytes(b) => {
            if write(&mut input, &b).await.is_err() {
                return;
            }
        }
        Stdin::Channel(mut rx) => {
            while let Some(b) = rx.recv().await {
                if write(&mut input, &b).await.is_err() {
                    return;
                }
            }
        }
    }
    // Half-closes the attach connection; with `stdin_once` Docker closes the program's stdin.
    let _ = input.shutdown().await;
}

/// Removes its container when dropped, unless [`ContainerGuard::remove`] did it already:
/// a panic or a cancelled future never leaves a sandbox behind.
pub(crate) struct ContainerGuard {
    docker: Docker,
    pub(crate) id: String,
    armed: bool,
}

impl ContainerGuard {
    fn new(docker: Docker, id: String) -> Self {
        Self {
            docker,
            id,
            armed: true,
        }
    }

    /// Force-removes the container (and any volume), and waits for Docker to confirm.
    pub(crate) async fn remove(mut self) {
        self.armed = false;
        remove_container(&self.docker, &self.id).await;
    }
}

/// Force-removes a container and its anonymous volumes.
fn force_remove() -> bollard::query_parameters::RemoveContainerOptions {
    RemoveContainerOptionsBuilder::new().force(true).v(true).build()
}

async fn remove_container(docker: &Docker, id: &str) {
    match docker.remove_container(id, Some(force_remove())).await {
        Ok(()) | Err(DockerError::DockerResponseServerError { status_code: 404, .. }) => {}
        Err(e) => tracing::error!(container = %id, error = %e, "could not remove a sandbox container"),
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (docker, id) = (self.docker.clone(), std::mem::take(&mut self.id));
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move { remove_container(&docker, &id).await });
            }
            Err(_) => tracing::error!(container = %id, "sandbox container leaked: no runtime to remove it"),
        }
    }
}

/// The task that owns one run's container.
struct Supervisor {
    docker: Docker,
    guard: ContainerGuard,
    tx: mpsc::Sender<RunEvent>,
    scanner: MarkerScanner,
    stage: Stage,
    /// Limits of the current step.
    limits: Limits,
    run_limits: Limits,
    /// Tells the stdin feeder that the compile step succeeded.
    go: Option<oneshot::Sender<()>>,
    /// Output bytes of the current step so far.
    emitted: u64,
    /// Set once we kill the container, with the reason.
    killed: Option<Limit>,
    /// Start of the current step.
    started: Instant,
    /// End of the current step (kill, or the container's streams closing).
    ended: Option<Instant>,
    /// The compiler's status, once the marker was seen.
    compile_status: Option<i64>,
}

/// What the supervisor's loop waits for.
enum Event {
    Output(Option<std::result::Result<LogOutput, DockerError>>),
    Deadline,
    ConsumerGone,
}

impl Supervisor {
    async fn supervise(
        mut self,
        mut output: Pin<Box<dyn Stream<Item = std::result::Result<LogOutput, DockerError>> + Send>>,
    ) {
        let mut deadline = tokio::time::Instant::from_std(self.started + self.limits.wall());
        let mut consumer_gone = false;
        loop {
            let event = tokio::select! {
                item = output.next() => Event::Output(item),
                _ = tokio::time::sleep_until(deadline) => Event::Deadline,
                _ = self.tx.closed(), if !consumer_gone => Event::ConsumerGone,
            };
            // After a kill the loop keeps reading (and dropping) output until the stream ends:
            // Docker finishes a kill only once the container's output is drained, so a
            // supervisor that stopped reading a flood would wait for the client's timeout
            // (measured: 120 s on Docker 20.10). KILL_DRAIN bounds that wait.
            match event {
                Event::Output(None) => break,
                Event::Output(Some(Err(e))) => {
                    tracing::warn!(container = %self.guard.id, error = %e, "attach stream failed");
                    break;
                }
                Event::Output(Some(Ok(log))) => {
                    let step_before = self.stage;
                    self.on_output(log).await;
                    if self.stage != step_before {
                        deadline = tokio::time::Instant::from_std(self.started + self.limits.wall());
                    }
                }
                Event::Deadline if self.killed.is_some() => {
                    tracing::warn!(container = %self.guard.id, "output still open {KILL_DRAIN:?} after the kill");
                    break;
                }
                Event::Deadline => {
                    let limit = self.timeout_cause().await;
                    self.kill(limit).await;
                }
                Event::ConsumerGone => {
                    consumer_gone = true;
                    self.kill(Limit::Time).await;
                }
            }
            if self.killed.is_some() {
                deadline = tokio::time::Instant::from_std(self.ended.unwrap_or_else(Instant::now) + KILL_DRAIN);
            }
        }
        drop(output);
        let ended = self.ended.unwrap_or_else(Instant::now);
        let verdict = self.verdict().await;
        let Supervisor {
            guard,
            tx,
            stage,
            started,
            killed,
            compile_status,
            ..
        } = self;
        guard.remove().await;
        if consumer_gone {
            return;
        }
        let event = match verdict {
            Ok((code, oom)) => {
                // Our own kill names its reason; otherwise an OOM kill is the memory limit.
                let limit_hit = match killed {
                    Some(Limit::Output) => Some(Limit::Output),
                    _ if oom => Some(Limit::Memory),
                    k => k,
                };
                let code = match (stage, compile_status) {
                    (Stage::Compile, Some(status)) if limit_hit.is_none() => Some(status),
                    _ => code,
                };
                RunEvent::Exited(Exit {
                    stage,
                    code,
                    duration: ended - started,
                    limit_hit,
                })
            }
            Err(e) => RunEvent::Failed(e),
        };
        let _ = tx.send(event).await;
    }

    async fn on_output(&mut self, log: LogOutput) {
        let (is_stderr, bytes) = match log {
            LogOutput::StdOut { message } => (false, message),
            LogOutput::StdErr { message } => (true, message),
            LogOutput::StdIn { .. } | LogOutput::Console { .. } => return,
        };
        if self.stage == Stage::Compile && self.compile_status.is_none() {
            if !is_stderr {
                // The runner folds compiler stdout into stderr; anything else is compiler
                // output too.
                self.emit(RunEvent::Compile(bytes)).await;
                return;
            }
            for scan in self.scanner.push(&bytes) {
                match scan {
                    Scan::Output(b) => self.emit(RunEvent::Compile(b.into())).await,
                    Scan::Marker { before, status } => {
                        if !before.is_empty() {
                            self.emit(RunEvent::Compile(before.into())).await;
                        }
                        self.compile_status = Some(status);
                        if status == 0 && self.killed.is_none() {
                            self.start_run_step().await;
                        }
                    }
                }
            }
            if self.stage == Stage::Run {
                let rest = self.scanner.finish();
                if !rest.is_empty() {
                    self.emit(RunEvent::Stderr(rest.into())).await;
                }
            }
            return;
        }
        let event = if is_stderr {
            RunEvent::Stderr(bytes)
        } else {
            RunEvent::Stdout(bytes)
        };
        self.emit(event).await;
    }

    /// After a successful compile: narrow the limits to the run step's, tell the runner to go.
    async fn start_run_step(&mut self) {
        let duration = self.started.elapsed();
        if self.run_limits != self.limits {
            let update = ContainerUpdateBody {
                memory: Some(self.run_limits.memory_bytes()),
                memory_swap: Some(self.run_limits.memory_bytes()),
                pids_limit: Some(i64::from(self.run_limits.pids)),
                nano_cpus: Some((self.run_limits.cpus * 1e9) as i64),
                ..Default::default()
            };
            if let Err(e) = self.docker.update_container(&self.guard.id, update).await {
                // Running with the compile step's wider limits would be a silent hole.
                tracing::warn!(container = %self.guard.id, error = %e, "could not narrow limits for the run step");
                let _ = self
                    .tx
                    .send(RunEvent::Failed(format!("could not apply the run limits: {e}")))
                    .await;
                self.kill(Limit::Time).await;
                return;
            }
        }
        let _ = self.tx.send(RunEvent::Compiled { duration }).await;
        self.stage = Stage::Run;
        self.limits = self.run_limits;
        self.emitted = 0;
        self.started = Instant::now();
        if let Some(go) = self.go.take() {
            let _ = go.send(());
        }
    }

    /// Sends output, cut at the step's cap; reaching the cap kills the container.
    async fn emit(&mut self, event: RunEvent) {
        if self.killed.is_some() {
            return;
        }
        let (bytes, rebuild): (&Bytes, fn(Bytes) -> RunEvent) = match &event {
            RunEvent::Compile(b) => (b, RunEvent::Compile),
            RunEvent::Stdout(b) => (b, RunEvent::Stdout),
            RunEvent::Stderr(b) => (b, RunEvent::Stderr),
            _ => unreachable!("emit is only called with output"),
        };
        let room = self.limits.output_bytes.saturating_sub(self.emitted);
        if (bytes.len() as u64) <= room {
            self.emitted += bytes.len() as u64;
            let _ = self.tx.send(event).await;
            return;
        }
        let cut = bytes.slice(..room as usize);
        self.emitted += room;
        if !cut.is_empty() {
            let _ = self.tx.send(rebuild(cut)).await;
        }
        self.kill(Limit::Output).await;
    }

    /// At the deadline: a step that also exhausted its process limit is reported as `Pids`.
    async fn timeout_cause(&self) -> Limit {
        let opts = StatsOptionsBuilder::new().stream(false).one_shot(true).build();
        let mut stats = self.docker.stats(&self.guard.id, Some(opts));
        let pids = match tokio::time::timeout(STATS_TIMEOUT, stats.next()).await {
            Ok(Some(Ok(s))) => s.pids_stats.and_then(|p| p.current),
            _ => None,
        };
        // tini and the runner take a process or two; "near the limit" is a bomb.
        match pids {
            Some(n) if n + 2 >= u64::from(self.limits.pids) => Limit::Pids,
            _ => Limit::Time,
        }
    }

    async fn kill(&mut self, reason: Limit) {
        if self.killed.is_some() {
            return;
        }
        self.killed = Some(reason);
        self.ended = Some(Instant::now());
        self.go.take();
        // Not awaited here: the kill completes only once the output is drained, which is
        // the supervisor loop's job.
        let (docker, id) = (self.docker.clone(), self.guard.id.clone());
        tokio::spawn(async move {
            let opts = KillContainerOptionsBuilder::new().signal("SIGKILL").build();
            if let Err(e) = docker.kill_container(&id, Some(opts)).await {
                // 409: it stopped on its own meanwhile.
                tracing::debug!(container = %id, error = %e, "kill");
            }
        });
    }

    /// Waits for the container to stop, then reads its exit code and OOM flag.
    async fn verdict(&mut self) -> std::result::Result<(Option<i64>, bool), String> {
        let opts = WaitContainerOptionsBuilder::new().condition("not-running").build();
        let mut wait = self.docker.wait_container(&self.guard.id, Some(opts));
        if tokio::time::timeout(STOP_TIMEOUT, wait.next()).await.is_err() {
            tracing::warn!(container = %self.guard.id, "container did not stop; killing it");
            self.kill(Limit::Time).await;
        }
        let inspect = self
            .docker
            .inspect_container(&self.guard.id, None)
            .await
            .map_err(|e| format!("inspect: {e}"))?;
        let state = inspect.state.unwrap_or_default();
        Ok((state.exit_code, state.oom_killed.unwrap_or(false)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn seen(running: bool, created: i64, finished: Option<i64>) -> Leftover {
        Leftover {
            running,
            created,
            finished,
        }
    }

    #[test]
    fn a_running_sandbox_is_left_alone_for_the_longest_life() {
        let now = 100_000;
        assert!(!seen(true, now - 3599, None).is_orphan(now, HOUR));
        assert!(seen(true, now - 3601, None).is_orphan(now, HOUR));
    }

    #[test]
    fn a_stopped_sandbox_is_removed_once_its_supervisor_would_have() {
        let now = 100_000;
        let grace = STOPPED_GRACE.as_secs() as i64;
        // Created long ago (a warm container that waited), stopped a moment ago: a supervisor
        // may be reading its verdict.
        assert!(!seen(false, now - 5000, Some(now - 10)).is_orphan(now, HOUR));
        assert!(seen(false, now - 5000, Some(now - grace)).is_orphan(now, HOUR));
        // Never started (Docker's "never" parses to year 1): judged by its creation.
        assert!(!seen(false, now - 10, Some(-62135596800)).is_orphan(now, HOUR));
        assert!(seen(false, now - grace, None).is_orphan(now, HOUR));
        assert!(!Leftover::could_be(now - 10, now));
    }

    #[test]
    fn docker_times_parse() {
        assert_eq!(parse_docker_time("1970-01-01T00:01:40.5Z"), Some(100));
        assert_eq!(parse_docker_time("2026-12-05T00:31:02.123456789Z"), Some(1_796_430_662));
        assert!(parse_docker_time("0001-01-01T00:00:00Z").is_some_and(|t| t < 0));
        assert_eq!(parse_docker_time("yesterday"), None);
    }
}
