//! Errors with stable codes, carried to the control plane as data:
//! `{ code, message, issues: [{ path, message }] }` (JSON, see
//! [`Error::to_json`]). A configuration error names the field it is about in
//! its issue's `path` (`pools.api.backends[1].address`), so the control plane
//! reports it exactly like one of its own validation issues.

use serde::Serialize;
use std::fmt;

/// Stable error codes shared with the control plane (`ts/errors.ts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub enum ErrorCode {
    /// A listener could not bind its address.
    #[serde(rename = "SWITCHYARD_ERR_BIND")]
    Bind,
    /// The configuration handed to the data plane is invalid.
    #[serde(rename = "SWITCHYARD_ERR_CONFIG")]
    Config,
    /// The runtime could not start, or another I/O failure outside a connection.
    #[serde(rename = "SWITCHYARD_ERR_RUNTIME")]
    Runtime,
    /// The engine was used after `close()`.
    #[serde(rename = "SWITCHYARD_ERR_CLOSED")]
    Closed,
    /// A named pool or backend does not exist.
    #[serde(rename = "SWITCHYARD_ERR_NOT_FOUND")]
    NotFound,
}

impl ErrorCode {
    /// The code as the control plane sees it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Bind => "SWITCHYARD_ERR_BIND",
            ErrorCode::Config => "SWITCHYARD_ERR_CONFIG",
            ErrorCode::Runtime => "SWITCHYARD_ERR_RUNTIME",
            ErrorCode::Closed => "SWITCHYARD_ERR_CLOSED",
            ErrorCode::NotFound => "SWITCHYARD_ERR_NOT_FOUND",
        }
    }
}

/// One problem, located: `path` is the field (`listeners.web.address`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct Issue {
    pub path: String,
    pub message: String,
}

/// An error from the data plane: a code, a message a person can act on, and
/// for configuration errors the field each problem is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "NativeError"))]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
    pub issues: Vec<Issue>,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), issues: Vec::new() }
    }

    /// A configuration error about the field at `path`.
    pub fn config_at(path: impl Into<String>, message: impl Into<String>) -> Self {
        let (path, message) = (path.into(), message.into());
        Self { code: ErrorCode::Config, message: format!("{path}: {message}"), issues: vec![Issue { path, message }] }
    }

    /// A configuration error from `"path: message"` text (every configuration
    /// message of the data plane starts with the field it is about).
    pub fn config(text: impl Into<String>) -> Self {
        let text = text.into();
        match text.split_once(": ") {
            Some((path, message)) if !path.contains(' ') => Self::config_at(path, message),
            _ => Self::config_at("(engine)", text),
        }
    }

    /// The error as the control plane receives it.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| format!("{{\"code\":\"{}\",\"message\":\"\",\"issues\":[]}}", self.code.as_str()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crosses_as_json_with_its_path() {
        let e = Error::config_at("pools.api.backends[1].weight", "expected 0..1000, got 5000");
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["code"], "SWITCHYARD_ERR_CONFIG");
        assert_eq!(v["issues"][0]["path"], "pools.api.backends[1].weight");
        assert_eq!(v["issues"][0]["message"], "expected 0..1000, got 5000");
        assert_eq!(e.to_string(), "[SWITCHYARD_ERR_CONFIG] pools.api.backends[1].weight: expected 0..1000, got 5000");
    }
}
