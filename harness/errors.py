"""One error type a user can act on. Only the CLI turns it into stderr + exit 2."""


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
