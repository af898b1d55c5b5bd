"""The base of every error a user can cause and fix: the CLI prints its message as one line."""


class IerkitError(Exception):
    """A problem with the user's input, data or environment, explained in the message."""
