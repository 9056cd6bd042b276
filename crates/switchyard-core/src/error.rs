//! Errors with stable codes. The `Display` form is `[SWITCHYARD_ERR_X] message`,
//! which the TypeScript side parses into a typed error class.

use std::fmt;

/// Stable error codes shared with the control plane (`ts/errors.ts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// A listener could not bind its address.
    Bind,
    /// The configuration handed to the data plane is invalid.
    Config,
    /// The runtime could not start, or another I/O failure outside a connection.
    Runtime,
    /// The engine was used after `close()`.
    Closed,
}

impl ErrorCode {
    /// The code as the control plane sees it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Bind => "SWITCHYARD_ERR_BIND",
            ErrorCode::Config => "SWITCHYARD_ERR_CONFIG",
            ErrorCode::Runtime => "SWITCHYARD_ERR_RUNTIME",
            ErrorCode::Closed => "SWITCHYARD_ERR_CLOSED",
        }
    }
}

/// An error from the data plane: a code and a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Config, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for Error {}

/// Result alias for the data plane.
pub type Result<T> = std::result::Result<T, Error>;
