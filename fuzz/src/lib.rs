//! `mesh-fuzz`: a mutation-based, crash-isolated fuzzing driver for every decoder and apply
//! path of mesh that takes network or editor input. It runs on stable Rust (no libFuzzer).
//!
//! - [`targets`]: the fuzz targets, each a function of one input that must not crash, hang
//!   or grow without bound, and the framing its inputs use.
//! - [`mutate`]: the mutator (bit and byte flips, interesting integers, varint tweaks,
//!   range insert/delete/duplicate, splicing, dictionary tokens; frame-aware for sequences).
//! - [`driver`]: the parent process. It never runs a target itself: inputs go in batches
//!   over a pipe to a child process ([`child`]), so a segfault, abort, stack overflow, hang
//!   or runaway memory of the child is a *found case*, saved with the exact input.
//! - [`seeds`]: generates the seed corpus from real code (a yrs client typing, awareness
//!   as mesh-proxy publishes it, mesh, DAP, LSP and REST messages, a runner job).
//!
//! *Invariant:* the driver's own process never calls into a target, so nothing a target does
//! can end a fuzzing run; every finding names the exact input that caused it.

pub mod child;
pub mod driver;
pub mod framing;
pub mod mutate;
pub mod rng;
pub mod seeds;
pub mod targets;
