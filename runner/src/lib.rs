//! `mesh-runner`: mesh's run service. It runs a room's code in one fresh, hardened Docker
//! container per run and streams the output back.
//!
//! - [`registry`]: the language registry (`images/languages.toml`), parsed into closed types.
//! - [`files`]: a job's files, validated before anything starts, packed into a tar archive.
//! - [`sandbox`]: the container's configuration and the tiny runner script inside it.
//! - [`run`]: [`Runner::run`] and the supervisor task that owns each run's container.
//! - [`pool`]: warm containers, started ahead of time, each used for one run.
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
//! # Warm pool
//!
//! A cold run costs a container create, an attach, a start and an upload before the
//! program can begin. [`Runner::with_pool`] takes the first three off the critical path:
//! see [`pool`].

#![warn(missing_docs)]

pub mod files;
pub mod pool;
pub mod registry;
pub mod run;
pub mod sandbox;

pub use files::JobFile;
pub use registry::{DebugRequest, DebugSpec, Language, Limits, LimitsOverride, Registry};
pub use run::{Collected, Exit, ImageSource, Job, Limit, Mode, Run, RunEvent, Runner, Stage, Stdin};

/// Errors of the run service. Each message says what is wrong and, where it can, what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The language registry is malformed or breaks a rule.
    #[error("language registry: {0}")]
    Registry(String),
    /// The job names a language the registry does not have.
    #[error("unknown language {0:?}")]
    UnknownLanguage(String),
    /// The language has no debug adapter in the registry.
    #[error("{0} cannot be debugged: its registry entry has no [debug] table")]
    NotDebuggable(String),
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
