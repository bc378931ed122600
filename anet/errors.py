"""The one exception type for problems a user must fix (bad input, missing files, bad config)."""


class AnetError(Exception):
    """A user-facing error: the CLI prints its one-line message and exits with code 2."""
