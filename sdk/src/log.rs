//! Log lines that reach the cell's log, not its output.

use crate::abi::Level;
use crate::host;

/// Logs `message` at `level`.
pub fn log(level: Level, message: &str) {
    host::log(level, message);
}

/// Logs an error.
pub fn error(message: &str) {
    log(Level::Error, message);
}

/// Logs a warning.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Logs progress.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Logs detail.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}
