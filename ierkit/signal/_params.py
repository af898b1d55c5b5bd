"""The windows and counts that tell a machine's opens and clicks from a person's."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

#: Link intent weights of the engagement score, matched (ignoring case) against the link's name
#: and URL, first match wins. Buying signals (pricing, a demo, a trial, a quote) weigh most;
#: evaluation content (case studies, webinars, docs) next; reading (blog, news) least. The
#: order follows the usual B2B lead-scoring practice of weighting "hand-raiser" pages above
#: content pages; the numbers are a starting point to tune, shown in every explanation.
DEFAULT_LINK_WEIGHTS: Final[Mapping[str, float]] = MappingProxyType(
    {
        "pricing|price|quote|buy|trial|demo": 3.0,
        "case.?stud|customer|webinar|event|docs|getting.?started|whats.?new|what's new": 1.5,
        "blog|news|article": 0.5,
    }
)


@dataclasses.dataclass(frozen=True)
class SignalParams:
    """How engagement is classified and scored; every default says where it comes from.

    Attributes:
        scanner_seconds: A click (or open) at most this long after the recipient's delivery is a
            machine's. Security gateways follow links "within seconds" of delivery (Salesforce
            KB 000271790); observed gateways act 2-10 s after delivery. A person needs longer to
            see, open and click an email, so 20 s leaves margin both ways: a person who clicks
            50 s after delivery stays human.
        burst_seconds: Several different links of one email clicked within this span are a
            machine's (KB 000271790: "every link is clicked almost at once"). A person opens one
            link, reads, and comes back; 10 s covers a scanner's 2-10 s sweep.
        burst_min_links: Distinct links that make a burst (two: one link alone is no pattern).
        domain_min_recipients: This many recipients of one email domain clicking one send in
            the same second are a gateway (people of one company do not click in lockstep; a
            gateway scans every mailbox it protects at once). Three: two could be chance.
        machine_open_seconds: An open at most this long after delivery with nothing after it
            (no click, no later open) is a possible machine open: Apple Mail Privacy Protection
            loads the pixel when the mail reaches the device (KB 000389505), within a minute.
        half_life_days: The engagement score halves for every this many days since the event
            (two weeks: a sales follow-up window; last month's click counts half).
        click_weight: Score of one human click on a link of intent weight 1.
        open_weight: Score of one human open (low: opens are weak evidence since Apple MPP).
        link_weights: Intent weight per link, regular expression (ignoring case) -> weight,
            matched against the link's name and URL, first match wins.
        default_link_weight: Intent weight of a link no pattern matches.
    """

    scanner_seconds: float = 20.0
    burst_seconds: float = 10.0
    burst_min_links: int = 2
    domain_min_recipients: int = 3
    machine_open_seconds: float = 60.0
    half_life_days: float = 14.0
    click_weight: float = 1.0
    open_weight: float = 0.2
    link_weights: Mapping[str, float] = dataclasses.field(
        default_factory=lambda: DEFAULT_LINK_WEIGHTS
    )
    default_link_weight: float = 1.0

    def __post_init__(self) -> None:
        positive = {
            "scanner_seconds": self.scanner_seconds,
            "burst_seconds": self.burst_seconds,
            "machine_open_seconds": self.machine_open_seconds,
            "half_life_days": self.half_life_days,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"SignalParams.{name} must be above 0, got {value}")
        if self.burst_min_links < 2:
            raise ValueError(
                f"SignalParams.burst_min_links must be 2 or more, got {self.burst_min_links}"
            )
        if self.domain_min_recipients < 2:
            raise ValueError(
                "SignalParams.domain_min_recipients must be 2 or more, got "
                f"{self.domain_min_recipients}"
            )

    @property
    def scanner(self) -> dt.timedelta:
        """``scanner_seconds`` as a duration."""
        return dt.timedelta(seconds=self.scanner_seconds)

    @property
    def burst(self) -> dt.timedelta:
        """``burst_seconds`` as a duration."""
        return dt.timedelta(seconds=self.burst_seconds)

    @property
    def machine_open(self) -> dt.timedelta:
        """``machine_open_seconds`` as a duration."""
        return dt.timedelta(seconds=self.machine_open_seconds)
