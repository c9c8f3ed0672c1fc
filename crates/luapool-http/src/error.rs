//! The error type of the server crate.

/// A specialized [`Result`](std::result::Result) for the server.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while starting, reloading or configuring a [`Server`](crate::Server).
///
/// Errors while serving a request never reach this type: they become an HTTP status (see
/// [`status_for`](crate::status_for)) and a log line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The app failed to load: it does not compile, its top level raised an error, or
    /// it could not be read.
    #[error("{0}")]
    App(#[from] luapool::Error),
    /// The app runs but defines no global function `handle`.
    #[error("{path}: the app does not define a global function `handle(req)`")]
    NoHandler {
        /// The app's file.
        path: String,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The configuration is invalid.
    #[error("invalid configuration: {message}")]
    Config {
        /// What is wrong.
        message: String,
    },
    /// A configuration file could not be read or parsed.
    #[error("{path}: {message}")]
    ConfigFile {
        /// The file.
        path: String,
        /// What is wrong, with the line where known.
        message: String,
    },
    /// The TLS certificate or key could not be used: a file is missing, holds no PEM
    /// certificate or key, or the key does not match the certificate.
    #[error("TLS: {path}: {message}")]
    Tls {
        /// The certificate or key file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A worker thread could not be started.
    #[error("cannot start worker {index}: {message}")]
    Worker {
        /// The worker's index.
        index: usize,
        /// Why.
        message: String,
    },
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    #[test]
    fn error_is_send_sync_static() {
        fn check<T: Send + Sync + 'static>() {}
        check::<super::Error>();
    }
}
