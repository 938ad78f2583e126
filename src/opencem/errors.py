"""The error the user's input causes: a file, an option or a value OpenCEM cannot work with.

The CLI shows an InputError as one line (exit code 2) and keeps the traceback of anything else, which is
a bug. It is a ValueError, so callers that catch ValueError keep working.
"""


class InputError(ValueError):
    """A problem with what the user gave; the message says which file, option or value, and why."""
