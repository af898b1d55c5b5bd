"""What the demo company sends: its programmes, the links its emails carry, and their topics."""

from __future__ import annotations

import dataclasses
from typing import Final


@dataclasses.dataclass(frozen=True)
class Programme:
    """A recurring kind of send: how often, to whom, how people engage, and who follows up."""

    name: str
    campaign_type: str
    open_rate: float
    click_rate: float
    #: Fraction of engaged recipients (see ``follow_on``) whose owner logs a follow-up Task.
    follow_rate: float
    #: "opened" or "clicked": which engagement prompts a follow-up.
    follow_on: str
    #: Follow-up delay after the engagement, in days (min, max).
    follow_days: tuple[float, float]
    list_id: int


PROGRAMMES: Final[dict[str, Programme]] = {
    p.name: p
    for p in (
        Programme("Monthly Newsletter", "Newsletter", 0.22, 0.025, 0.01, "opened", (0.5, 10), 2101),
        Programme("Product Nurture", "Nurture", 0.27, 0.045, 0.20, "clicked", (0.5, 7), 2102),
        Programme("Sales Outreach", "Sales Outreach", 0.40, 0.08, 0.55, "opened", (1, 5), 2103),
        Programme("Journey Onboarding", "Journey", 0.45, 0.07, 0.05, "clicked", (1, 7), 2104),
        Programme("Event Invite", "Event", 0.30, 0.05, 0.10, "clicked", (1, 7), 2105),
        Programme("Welcome Email", "Welcome", 0.45, 0.06, 0.03, "opened", (1, 7), 2106),
        Programme(
            "Product Announcement", "Announcement", 0.30, 0.04, 0.10, "clicked", (0.5, 3), 2107
        ),
        Programme("Webinar Follow-up", "Webinar", 0.38, 0.07, 0.30, "clicked", (1, 5), 2108),
        Programme("Partner Update", "Partner", 0.25, 0.03, 0.0, "opened", (1, 5), 2109),
    )
}
#: The recurring programmes (the other two are the one-off planted sends plus the CSV send).
RECURRING: Final = (
    "Monthly Newsletter",
    "Product Nurture",
    "Sales Outreach",
    "Journey Onboarding",
    "Event Invite",
    "Welcome Email",
)
WELCOME_TS_KEY: Final = "welcome_email_ts"

LINK_POOL: Final = (
    ("https://www.example.com/pricing", "Pricing"),
    ("https://www.example.com/customers/case-study", "Case Study"),
    ("https://www.example.com/webinars/signup", "Webinar Signup"),
    ("https://www.example.com/blog/latest", "Read the Blog"),
    ("https://www.example.com/demo", "Book a Demo"),
    ("https://www.example.com/product/whats-new", "What's New"),
    ("https://www.example.com/docs/getting-started", "Getting Started"),
    ("https://www.example.com/events", "Events"),
    ("https://www.example.com/contact-sales", "Contact Sales"),
    ("https://www.example.com/preferences", "Email Preferences"),
)
NURTURE_TOPICS: Final = (
    "Data Quality Basics",
    "Automating Reports",
    "Pipeline Forecasting",
    "Integrations Tour",
    "Security Checklist",
    "Admin Tips",
    "ROI Calculator",
    "Customer Story",
)
JOURNEY_STEPS: Final = (
    "Step 1: Welcome Aboard",
    "Step 2: Connect Your Data",
    "Step 3: Invite Your Team",
    "Step 4: First Dashboard",
)
EVENTS: Final = ("Northbeam Summit", "Data Leaders Roundtable", "Partner Day")
OUTREACH_THEMES: Final = (
    "Renewal Check-in",
    "Expansion Offer",
    "Executive Briefing",
    "Quarter-End Promotion",
    "Reference Program",
    "Upgrade Path",
    "Pilot Invitation",
    "Pricing Update",
)
