"""The reference client's error names, mapped onto fs-bus's hierarchy."""

from fs_bus.errors import (
    FsBusError as FsError,
    FunctionAlreadyExists as ConflictError,
    FunctionNotFound as NotFoundError,
    InvalidConfig as BadRequestError,
    KafkaUnavailable as NetworkError,
    WaitTimeout as FunctionStreamTimeoutError,
)

ClientError = FsError
ServerError = FsError

__all__ = ["FsError", "ClientError", "ServerError", "ConflictError", "NotFoundError", "BadRequestError",
           "NetworkError", "FunctionStreamTimeoutError"]
