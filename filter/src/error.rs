//! Every way a request can fail, each with one HTTP status and a short body a human can act on.

/// A refused or failed request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FilterError {
    /// Unknown channel, endpoint, rendition, path, or the store has no such object.
    #[error("{0}")]
    NotFound(String),
    /// A malformed or invalid request (query parameters, token syntax).
    #[error("{0}")]
    BadRequest(String),
    /// Access denied: CDN identifier, IP allowlist, key token.
    #[error("{0}")]
    Forbidden(String),
    /// A method this path does not take; the second field is its `Allow` header.
    #[error("{0}")]
    MethodNotAllowed(String, &'static str),
    /// The store answered with an error or something unusable.
    #[error("{0}")]
    BadGateway(String),
    /// The store did not answer in time.
    #[error("{0}")]
    GatewayTimeout(String),
    /// A combination this version cannot produce (e.g. encrypting fMP4 segments).
    #[error("{0}")]
    NotImplemented(String),
}

impl FilterError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> u16 {
        match self {
            FilterError::NotFound(_) => 404,
            FilterError::BadRequest(_) => 400,
            FilterError::Forbidden(_) => 403,
            FilterError::MethodNotAllowed(..) => 405,
            FilterError::BadGateway(_) => 502,
            FilterError::GatewayTimeout(_) => 504,
            FilterError::NotImplemented(_) => 501,
        }
    }
}
