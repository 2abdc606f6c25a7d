//! Error codes shared by the room socket and the REST API.

use serde::{Deserialize, Serialize};

/// What went wrong, as a stable machine-readable code. Every error on the wire carries one of
/// these plus a human message that says what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request or frame could not be parsed.
    BadRequest,
    /// A frame or body exceeded a size limit.
    TooLarge,
    /// The message type is not known to this server.
    UnknownMessage,
    /// The client's protocol version is not supported.
    UnsupportedVersion,
    /// No valid token was presented.
    Unauthorized,
    /// The token is valid but its role does not allow this.
    Forbidden,
    /// The room (or another resource) does not exist.
    NotFound,
    /// Too many requests; slow down.
    RateLimited,
    /// The update could not be applied to the room's document.
    InvalidUpdate,
    /// Something failed on the server; the request may be retried.
    Internal,
    /// The server is shutting down or the room is unloading; reconnect.
    Unavailable,
}

impl ErrorCode {
    /// The WebSocket close code used when this error ends a connection (4000-4999 is the
    /// range RFC 6455 leaves to applications; the last three digits follow HTTP).
    pub fn close_code(self) -> u16 {
        match self {
            ErrorCode::BadRequest | ErrorCode::UnknownMessage | ErrorCode::InvalidUpdate => 4400,
            ErrorCode::Unauthorized => 4401,
            ErrorCode::Forbidden => 4403,
            ErrorCode::NotFound => 4404,
            ErrorCode::TooLarge => 4413,
            ErrorCode::UnsupportedVersion => 4426,
            ErrorCode::RateLimited => 4429,
            ErrorCode::Internal => 4500,
            ErrorCode::Unavailable => 4503,
        }
    }

    /// The HTTP status used when this error answers a REST request.
    pub fn http_status(self) -> u16 {
        self.close_code() - 4000
    }
}
