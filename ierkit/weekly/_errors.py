"""The weekly run's errors."""

from __future__ import annotations

from ierkit.errors import IerkitError


class WeeklyRunError(IerkitError):
    """The weekly run failed; the message names the notebook or step and what to look at."""


class DeliveryError(WeeklyRunError):
    """Email delivery stopped part-way; the message says who got their email and who did not.

    Attributes:
        sent: Recipients whose message the server accepted (in this run or an earlier one).
        not_sent: Recipients still without their message; a rerun sends these only.
    """

    def __init__(self, message: str, *, sent: list[str], not_sent: list[str]) -> None:
        super().__init__(message)
        self.sent = sent
        self.not_sent = not_sent
