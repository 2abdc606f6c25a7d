//! `mesh-proxy`: the local side of mesh. A Language Server that bridges an editor's buffers
//! into a room, a Debug Adapter that bridges an editor's debugger into the room's shared
//! debug session, a Model Context Protocol server through which a coding agent joins a room
//! (`mcp`), and the command line (`share`, `join`, `status`, ...).
//!
//! Invariant: only this crate knows editors; `sync`, `pending` and `text` are sans-IO.

pub mod account;
pub mod ask_cli;
pub mod config;
pub mod dap;
pub mod host_api;
pub mod host_cli;
pub mod link;
pub mod lsp;
pub mod lsp_ext;
pub mod mcp;
pub mod merge;
pub mod mesh_dir;
pub mod pending;
pub mod room;
pub mod run_cli;
pub mod session;
pub mod sync;
pub mod text;
pub mod tls;
pub mod workspace;

/// How many times a buffer was found to differ from the proxy's shadow and was repaired.
pub static DESYNCS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
