"""Errors a user can cause. The CLI turns them into one line and exit code 1."""


class LTBenchError(Exception):
    """A problem with the user's input or environment; the message says what to fix."""


class CacheError(LTBenchError):
    """A feature cache that is missing, of another format, incomplete or mismatched."""


def known(names) -> str:
    """Format a list of known names for an error message."""
    return ", ".join(sorted(names))
