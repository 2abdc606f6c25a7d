//! The fuzz targets. Each is a function of one input that must not crash, hang or grow
//! without bound; a panic is a finding too (in the server it would end a room or a request).
//!
//! A target also reports coarse *features* of what its input reached (which decoder error,
//! which message kind, how many updates applied). The driver keeps an input that shows a new
//! feature and mutates it further: a cheap stand-in for coverage guidance on stable Rust.

use crate::rng::fnv1a;

pub mod bus;
pub mod dap;
pub mod debug_hub;
pub mod lsp;
pub mod mcp_edit;
pub mod mesh_json;
pub mod provider_stream;
pub mod rest;
pub mod room;
pub mod runner_control;
pub mod selftest;
pub mod websocket;

/// How a target reads its input (see [`crate::framing`]); the mutator follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One message, as bytes.
    Raw,
    /// A byte stream; the first byte picks how it is cut into chunks.
    Stream,
    /// A sequence of length-prefixed records.
    Sequence,
}

/// One fuzz target.
pub struct Target {
    /// The name on the command line and of its corpus, found and regressions folders.
    pub name: &'static str,
    /// What it covers, for `mesh-fuzz list`.
    pub about: &'static str,
    /// Runs one input. Must not crash, hang or grow without bound.
    pub run: fn(&[u8], &mut Features),
    /// How its input is read.
    pub shape: Shape,
    /// Tokens the mutator may insert: the words of the format.
    pub dictionary: &'static [&'static [u8]],
    /// The largest input the mutator makes.
    pub max_len: usize,
}

/// Features an input reached, as hashes of short labels.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Features(Vec<u64>);

/// Most features one input reports; more add nothing to guidance and cost pipe bytes.
const MAX_FEATURES_PER_INPUT: usize = 64;

impl Features {
    /// The input reached `label`.
    pub fn hit(&mut self, label: &str) {
        if self.0.len() < MAX_FEATURES_PER_INPUT {
            self.0.push(fnv1a(label.as_bytes()));
        }
    }

    /// The input reached `label` `n` times; counts are bucketed by powers of two, so that
    /// "more of the same" is new only when it is much more.
    pub fn count(&mut self, label: &str, n: usize) {
        let bucket = usize::BITS - n.leading_zeros();
        self.hit(&format!("{label}#{bucket}"));
    }

    /// The feature hashes.
    pub fn hashes(&self) -> &[u64] {
        &self.0
    }

    /// The wire form (see [`crate::child`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|h| h.to_le_bytes()).collect()
    }

    /// Reads the wire form.
    pub fn from_bytes(bytes: &[u8]) -> Features {
        Features(
            bytes
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("chunks of 8")))
                .collect(),
        )
    }
}

/// Every target that `mesh-fuzz run all` runs, in the order it runs them.
pub fn all() -> &'static [&'static Target] {
    &[
        &room::TARGET,
        &mesh_json::TARGET,
        &dap::TARGET,
        &debug_hub::TARGET,
        &lsp::TARGET,
        &rest::TARGET,
        &runner_control::TARGET,
        &provider_stream::TARGET,
        &mcp_edit::TARGET,
        &websocket::TARGET,
        &bus::TARGET,
        &room::CONVERGENCE,
    ]
}

/// A target by name, including the driver's own `selftest` (which is not in [`all`]).
pub fn by_name(name: &str) -> Option<&'static Target> {
    all()
        .iter()
        .copied()
        .chain(std::iter::once(&selftest::TARGET))
        .find(|t| t.name == name)
}

/// Tokens of JSON, shared by the targets whose input is JSON somewhere.
pub const JSON_TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"null",
    b"true",
    b"false",
    b"0",
    b"-1",
    b"1e308",
    b"18446744073709551616",
    b"\\u0000",
    b"\\ud800",
    b"\"type\"",
    b"{}",
    b"[]",
    b"\"\"",
];
