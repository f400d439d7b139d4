"""vidapter's own error types. Every error a user can cause (a bad setting, an unreadable or misfit file, a run that
cannot go on) is a ``VidapterError`` whose message is one line naming the field, file or line and what was expected;
the command line prints those as one line. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class VidapterError(Exception):
    """Base of the errors the user can act on; ``str()`` is one line that says what is wrong and what to do."""


class ConfigError(VidapterError, ValueError):
    """A bad setting, override or config file: names the field and what is allowed."""


class MissingDependency(ConfigError, ImportError):
    """An optional package (or system library) a chosen setting needs is not installed: says what to install."""
