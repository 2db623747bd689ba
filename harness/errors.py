"""One error type a user can act on. Only the CLI turns it into stderr + exit 2."""


def first_line(exc: BaseException, limit: int = 200, with_type: bool = False) -> str:
    """The first non-empty line of an exception's message (a library's multi-line error as one line)."""
    text = str(exc).strip()
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "") or type(exc).__name__
    return f"{type(exc).__name__}: {line[:limit]}" if with_type else line[:limit]


class HarnessError(Exception):
    """A problem the user can fix: bad input, missing file, bad option."""


class DataError(HarnessError):
    """A task or data file is unknown, malformed or inconsistent."""


class CheckpointError(HarnessError):
    """A checkpoint is unreadable, corrupt or of another architecture."""


class ModelFileError(HarnessError):
    """An ONNX file is unreadable, corrupt, or its external data is missing."""


class ParityError(HarnessError):
    """ONNX Runtime disagrees with PyTorch past the tolerance."""


class OptionError(HarnessError):
    """A command-line or config option has a bad value."""


class SchemaError(HarnessError):
    """A results file is missing, corrupt or of another schema version."""


class MissingPackageError(OptionError):
    """An optional extra (openvino, ...) that a chosen backend or suite needs is not installed."""
