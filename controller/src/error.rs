//! The controller's error type and its one mapping to gRPC status codes.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    /// A concurrent change won; the caller may retry.
    #[error("{0}")]
    Aborted(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    DeadlineExceeded(String),
    /// A decider's write was refused because it no longer owns the account.
    #[error("fenced: {0}")]
    Fenced(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> tonic::Status {
        use tonic::Status;
        let msg = e.to_string();
        match e {
            Error::NotFound(_) => Status::not_found(msg),
            Error::InvalidArgument(_) => Status::invalid_argument(msg),
            Error::AlreadyExists(_) => Status::already_exists(msg),
            Error::FailedPrecondition(_) => Status::failed_precondition(msg),
            Error::Aborted(_) | Error::Fenced(_) => Status::aborted(msg),
            Error::Unavailable(_) | Error::Store(StoreError::Unavailable(_)) => {
                Status::unavailable(msg)
            }
            Error::DeadlineExceeded(_) => Status::deadline_exceeded(msg),
            Error::Store(StoreError::Rejected(_) | StoreError::Compacted { .. })
            | Error::Internal(_) => Status::internal(msg),
        }
    }
}
