"""Keep the signal, drop the records: the engagement summary written onto Contacts and Leads."""

from ierkit.writeback._summary import CLICK_WINDOW, SUMMARY_COLUMNS, SUMMARY_SCHEMA, summarise

__all__ = ["CLICK_WINDOW", "SUMMARY_COLUMNS", "SUMMARY_SCHEMA", "summarise"]
