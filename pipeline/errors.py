"""User-facing errors: each carries one line that says what went wrong and where."""


class PipelineError(Exception):
    """A problem with the user's input (config, source, model), reported as one line with exit code 2."""

    exit_code = 2


class ConfigError(PipelineError):
    """A config file or CLI override is invalid."""


class SourceError(PipelineError):
    """A video, image folder or stream cannot be opened or read."""


class ModelError(PipelineError):
    """Model weights cannot be found or loaded."""


class OutputError(PipelineError):
    """An output cannot be written: a folder that is a file or read-only, a full disk, another run's outputs."""
