//! `mesh-proxy`: the local side of mesh. A Language Server that bridges an editor's buffers
//! into a room, and the command line (`share`, `join`, `status`, ...).

pub mod sync;
pub mod text;
