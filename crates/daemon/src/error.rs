//! The one error type of this crate, for the daemon's API answers.

/// What went wrong. Each variant maps to one HTTP status in the API.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// No container by that id, id prefix or name (404).
    #[error("no such container `{0}`")]
    NoSuchContainer(String),
    /// Something named is missing: an image, an app file (404).
    #[error("{0}")]
    NotFound(String),
    /// The name is taken, or the container's state does not allow the action (409).
    #[error("{0}")]
    Conflict(String),
    /// The request is malformed or asks for something invalid (400).
    #[error("{0}")]
    BadRequest(String),
    /// The request body is over the limit (413).
    #[error("request body too large (over {0} bytes)")]
    TooLarge(usize),
    /// A TCP client did not send its request in time (408).
    #[error("{0}")]
    RequestTimeout(String),
    /// Missing or wrong bearer token on the TCP listener (401).
    #[error("unauthorized: a valid bearer token is required")]
    Unauthorized,
    /// The app cannot be loaded or linked (422).
    #[error("{0}")]
    Unrunnable(String),
    /// A registry failed or refused a pull (502).
    #[error("{0}")]
    Registry(String),
    /// The daemon failed (500): its database, its files.
    #[error("{0}")]
    Internal(String),
}

impl DaemonError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            DaemonError::NoSuchContainer(_) | DaemonError::NotFound(_) => 404,
            DaemonError::Conflict(_) => 409,
            DaemonError::BadRequest(_) => 400,
            DaemonError::Unauthorized => 401,
            DaemonError::RequestTimeout(_) => 408,
            DaemonError::TooLarge(_) => 413,
            DaemonError::Unrunnable(_) => 422,
            DaemonError::Registry(_) => 502,
            DaemonError::Internal(_) => 500,
        }
    }
}

impl From<rusqlite::Error> for DaemonError {
    fn from(e: rusqlite::Error) -> Self {
        DaemonError::Internal(format!("state database: {e}"))
    }
}

/// The checks and settings shared with the client: a refused socket is a conflict, a
/// bad setting a bad request.
impl From<wedge_client::ClientError> for DaemonError {
    fn from(e: wedge_client::ClientError) -> Self {
        use wedge_client::ClientError;
        match e {
            ClientError::Refused(m) => DaemonError::Conflict(m),
            ClientError::Invalid(m) => DaemonError::BadRequest(m),
            other => DaemonError::Internal(other.to_string()),
        }
    }
}
