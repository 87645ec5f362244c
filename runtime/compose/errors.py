"""The one error of compose: a message that names what is wrong, printed as one line."""

from __future__ import annotations

__all__ = ["ComposeError"]


class ComposeError(Exception):
    """Bad compose input or a failed project operation; ``str()`` is the line the user sees."""
