//! The bounds on clients' connections, the same flags for `kiln serve` and `kiln executor`.

use std::time::Duration;

use clap::Args;
use kiln_http::ConnectionLimits;

/// How many connections are served at once and how long a client may take to send a request.
#[derive(Debug, Clone, Args)]
pub(crate) struct ConnectionArgs {
    /// How many connections are served at once; more wait (in the kernel's backlog) until one
    /// closes.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    max_connections: usize,
    /// How long a client may take to send a request's head, from opening its connection.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    header_read_timeout: Duration,
    /// How long a client may take to send a request's body, from its head.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    body_read_timeout: Duration,
}

impl ConnectionArgs {
    /// The limits these flags ask for.
    pub(crate) fn limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: self.max_connections,
            header_read_timeout: self.header_read_timeout,
            body_read_timeout: self.body_read_timeout,
        }
    }
}
