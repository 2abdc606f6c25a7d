//! `mesh-runner`: mesh's run service. It runs a room's code in one fresh, hardened Docker
//! container per run and streams the output back.
//!
//! - [`registry`]: the language registry (`images/languages.toml`), parsed into closed types.
//! - [`files`]: a job's files, validated before anything starts, packed into a tar archive.
//! - [`sandbox`]: the container's configuration and the tiny runner script inside it.
//! - [`run`]: [`Runner::run`] and the supervisor task that owns each run's container.
//!
//! *Invariants:* a container is used for one run and removed when it ends, however it ends
//! (a guard removes it on panic or cancellation); nothing from a job reaches Docker before
//! it is validated; no host path is ever mounted into a sandbox; output is capped on the
//! stream, not only at the end.
//!
//! ```no_run
//! # async fn demo() -> mesh_runner::Result<()> {
//! use mesh_runner::{ImageSource, Job, JobFile, Registry, Runner};
//! let runner = Runner::connect(Registry::builtin()?, ImageSource::Local).await?;
//! let run = runner.run(Job::new("python", vec![JobFile::new("main.py", "print(42)")])).await?;
//! let out = run.collect().await;
//! assert_eq!(out.stdout, b"42\n");
//! # Ok(()) }
//! ```
//!
//! # Warm pool (design; not built yet)
//!
//! A cold run costs a container create, an upload, an attach and a start (about 0.2-0.3 s
//! on Docker 20.10). The pool takes those off the critical path, and the runner protocol
//! (see [`sandbox`]) is already shaped for it:
//!
//! - `Pool` is an actor per language (bounded inbox, cloneable handle) holding `N` *warm*
//!   containers: created with the language's configuration, attached, started, the runner
//!   blocked on `read nonce`. Nothing of any job is in them yet.
//! - `take()` pops one and hands it to the same `Supervisor` a cold run uses, after
//!   uploading the job's archive into `/job` (uploads into a volume work on a running
//!   container) and writing the nonce line. A job whose tightened limits differ from the
//!   pool's gets a `docker update` first, or a cold container if that fails.
//! - Each warm container is used once and removed like any other; the pool refills in the
//!   background (one create at a time, so a burst cannot starve the machine), replaces a
//!   container that dies while idle, and caps an idle container's age (e.g. 10 minutes) so
//!   image updates are picked up. An empty pool falls back to a cold start, never waits.
//! - Warm containers hold memory reservations only in name (limits, not reservations), so
//!   the cost of idling is a few MiB each for tini and `sh`.
//! - The wall clock starts when the nonce is written, not when the container was created.

#![warn(missing_docs)]

pub mod files;
pub mod registry;
pub mod run;
pub mod sandbox;

pub use files::JobFile;
pub use registry::{Language, Limits, LimitsOverride, Registry};
pub use run::{Collected, Exit, ImageSource, Job, Limit, Run, RunEvent, Runner, Stage, Stdin};

/// Errors of the run service. Each message says what is wrong and, where it can, what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The language registry is malformed or breaks a rule.
    #[error("language registry: {0}")]
    Registry(String),
    /// The job names a language the registry does not have.
    #[error("unknown language {0:?}")]
    UnknownLanguage(String),
    /// A job file is refused.
    #[error("file {path:?}: {problem}")]
    BadFile {
        /// The offending path, as given.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The job has too many files.
    #[error("{count} files is over the limit of {max}")]
    TooManyFiles {
        /// Files in the job.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The job's files are too large together.
    #[error("the files total {bytes} bytes, over the limit of {max}")]
    JobTooLarge {
        /// Bytes in the job.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// Docker does not answer.
    #[error("Docker is unreachable ({0}); start it (as root: scripts/install-docker) or set DOCKER_HOST")]
    DockerUnreachable(String),
    /// The language's image is not on this machine.
    #[error("image {image} is missing: {hint}")]
    ImageMissing {
        /// The image reference.
        image: String,
        /// How to get it.
        hint: String,
    },
    /// Docker refused or failed a request.
    #[error("Docker: {0}")]
    Docker(#[source] bollard::errors::Error),
    /// Something in the run service itself went wrong.
    #[error("run service: {0}")]
    Protocol(String),
}

impl Error {
    /// Classifies a Docker client error: a connection failure means Docker is unreachable.
    pub(crate) fn from_docker(e: bollard::errors::Error) -> Self {
        use bollard::errors::Error as D;
        match e {
            D::IOError { .. } | D::SocketNotFoundError(_) | D::HyperResponseError { .. } => {
                Error::DockerUnreachable(e.to_string())
            }
            other => Error::Docker(other),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
