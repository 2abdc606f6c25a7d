//! mesh's ghost: an AI participant. It joins a room over the public protocol (a join link, a
//! seat and a role like anyone's), reads `@ghost ...` requests from the room's chat, asks an
//! OpenAI-compatible provider with the room's files, last run and conversation as context,
//! and answers in chat (see `docs/decisions/013-ghost-agent.md`).
//!
//! `desk`, `context` and `sse` are sans-IO and unit-tested; `provider` and `room` do the IO;
//! `ghost` is the one loop that ties them together.

pub mod board;
pub mod config;
pub mod context;
pub mod desk;
pub mod edits;
pub mod ghost;
pub mod provider;
pub mod room;
pub mod sse;
pub mod typist;
