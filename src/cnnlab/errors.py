"""The errors cnnlab raises. Each also inherits the matching builtin, so callers may catch either."""


class CnnlabError(Exception):
    """Base class: the CLI prints these as one line, without a traceback (unless --debug)."""


class ConfigError(CnnlabError, ValueError):
    """A config file, a flag or an argument is invalid."""


class UnknownModelError(CnnlabError, KeyError):
    """A model name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class DuplicateModelError(CnnlabError, ValueError):
    """Two builders registered under one name."""


class InputShapeError(CnnlabError, ValueError):
    """An input tensor the model cannot take (too small, wrong channels, wrong rank)."""


class CheckpointMismatchError(CnnlabError, ValueError):
    """A weights file whose keys or shapes do not fit the model."""


class InvalidCheckpointError(CnnlabError, ValueError):
    """A weights or checkpoint file that is corrupt, hostile or unreadable."""


class CheckpointWriteError(CnnlabError, OSError):
    """A checkpoint could not be written (disk full, quota); the previous one is intact."""


class InvalidImageError(CnnlabError, ValueError):
    """An image file that cannot be decoded."""


class DataError(CnnlabError, ValueError):
    """A data set path or layout that cannot be used."""
