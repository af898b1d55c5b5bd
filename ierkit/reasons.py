"""Why a recipient has no Individual Email Result: the codes the diagnosis and the demo share.

The demo org plants each of these at a known rate and records it in its ground truth; the
sync-health diagnosis (``ierkit.sync_health``) must give every recipient without an IER exactly
one of them.
"""

from typing import Final

#: Recipient has an IER where it belongs.
HEALTHY: Final = "healthy"
#: Subscriber Key is an email address, not a Contact or Lead Id.
EMAIL_KEY: Final = "email_key"
#: Subscriber Key is a 15-character Id; the 18-character form would match.
ID15_KEY: Final = "id15_key"
#: Subscriber Key is an 18-character Id of no Contact or Lead in the org.
UNKNOWN_ID: Final = "unknown_id"
#: The send had individual tracking switched off.
TRACKING_OFF: Final = "tracking_off"
#: The audience was not from Salesforce (an imported list): no IERs are ever written.
NOT_SALESFORCE_AUDIENCE: Final = "not_salesforce_audience"
#: The send is still inside the tracking sync window: its IERs are still arriving.
IN_SYNC_WINDOW: Final = "in_sync_window"
#: The IER is on a Lead that was later converted: the recipient is now a Contact.
LEAD_CONVERTED: Final = "lead_converted"
#: The contact was deleted in Marketing Cloud: its opens and clicks arrive with a blank key.
DELETED_IN_MARKETING_CLOUD: Final = "deleted_in_marketing_cloud"
#: "Dedupe Subscribers" was on: another recipient with the same email address was sent to.
DEDUPLICATED: Final = "deduplicated"
#: None of the above explains the missing IER.
UNEXPLAINED: Final = "unexplained"

ALL: Final = (
    HEALTHY,
    EMAIL_KEY,
    ID15_KEY,
    UNKNOWN_ID,
    TRACKING_OFF,
    NOT_SALESFORCE_AUDIENCE,
    IN_SYNC_WINDOW,
    LEAD_CONVERTED,
    DELETED_IN_MARKETING_CLOUD,
    DEDUPLICATED,
    UNEXPLAINED,
)

#: What a RevOps lead should do about each reason, in words.
#: Each reason in words, as a report shows it.
LABEL: Final = {
    HEALTHY: "Healthy",
    EMAIL_KEY: "Email address as Subscriber Key",
    ID15_KEY: "15-character Id as Subscriber Key",
    UNKNOWN_ID: "Key is no Contact or Lead",
    TRACKING_OFF: "Tracking off for the send",
    NOT_SALESFORCE_AUDIENCE: "Audience not from Salesforce",
    IN_SYNC_WINDOW: "Still syncing",
    LEAD_CONVERTED: "Lead converted",
    DELETED_IN_MARKETING_CLOUD: "Deleted in Marketing Cloud",
    DEDUPLICATED: "Deduplicated (shared email address)",
    UNEXPLAINED: "Unexplained",
}

FIX: Final = {
    HEALTHY: "Nothing to do.",
    EMAIL_KEY: "Use the 18-character Contact or Lead Id as Subscriber Key in the audience.",
    ID15_KEY: "Convert the 15-character Id to its 18-character form in the audience.",
    UNKNOWN_ID: "The Id matches no Contact or Lead: it was deleted or is another object's Id.",
    TRACKING_OFF: "Turn on 'Send Tracking Results to Sales Cloud' for this send.",
    NOT_SALESFORCE_AUDIENCE: (
        "Send to a Salesforce data extension, Campaign or Report, not an import."
    ),
    IN_SYNC_WINDOW: "Wait: the tracking sync is still bringing results in.",
    LEAD_CONVERTED: "The result stays on the converted Lead; report on the Lead too.",
    DELETED_IN_MARKETING_CLOUD: "The subscriber was deleted in Marketing Cloud; nothing to repair.",
    DEDUPLICATED: (
        "By design: one email per address. Give each person their own address, or turn "
        "'Dedupe Subscribers' off on the send if each should get a copy."
    ),
    UNEXPLAINED: "Check the send's audience and the Marketing Cloud Connect sync log.",
}
