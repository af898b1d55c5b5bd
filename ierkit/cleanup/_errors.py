"""The errors a cleanup raises."""

from __future__ import annotations

from ierkit.archive import ArchiveError
from ierkit.errors import IerkitError


class CleanupError(IerkitError):
    """A cleanup cannot start or go on; the message says why and what to do."""


class VerificationError(CleanupError, ArchiveError):
    """The archive does not match the selection: nothing was deleted."""
