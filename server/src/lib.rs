//! `mesh-server`: hosts rooms — shared projects as Yjs documents — over WebSocket, keeps them
//! durable in a store, and serves a small REST API.
//!
//! Invariants: the server never speaks LSP or DAP to editors; a room's state is touched only
//! by its own task; nothing is sent to a client before the update behind it is durable.

pub mod accounts;
pub mod admission;
pub mod api;
pub mod app;
pub mod auth;
pub mod bus;
pub mod client_addr;
pub mod config;
pub mod debug;
pub mod drain;
pub mod edge;
pub mod engines;
pub mod limits;
pub mod room;
pub mod run_gate;
pub mod runs;
pub mod store;
pub mod tls;
pub mod web;
pub mod ws;
