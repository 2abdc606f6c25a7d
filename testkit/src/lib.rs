//! The test harness of mesh: a real `mesh-server` process on an ephemeral port, and real
//! Yjs clients that speak the room protocol over real sockets. Every integration suite of
//! the workspace uses these, so a test reads as a scenario, not as plumbing.

pub mod attacks;
pub mod cli;
pub mod client;
pub mod docker_tls;
pub mod lsp;
pub mod net;
pub mod oidc;
pub mod postgres;
pub mod process;
pub mod provider;
pub mod redis;
pub mod server;
pub mod soak;
pub mod tls;
pub mod wsframe;

pub use client::{ConnectOptions, Welcome, YClient};
pub use lsp::LspClient;
pub use net::NetGate;
pub use postgres::TestPostgres;
pub use redis::TestRedis;
pub use server::{Session, TestServer};

use std::time::Duration;

/// How long a test waits for an expected event before failing. Generous, because CI
/// machines are shared; a passing test never waits this long.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(20);
