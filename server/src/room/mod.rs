//! Rooms: the sans-IO [`core`], the task that owns each loaded room ([`actor`]) and the
//! registry that loads rooms on first use ([`registry`]).

pub mod access;
pub mod actor;
pub mod core;
pub mod guard;
pub mod registry;

pub use registry::Rooms;
