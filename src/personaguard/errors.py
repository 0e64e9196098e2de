"""One exception type for every mistake a user can make.

The CLI prints these as a single line and exits 2; anything else is a bug and keeps its traceback.
"""


class PersonaguardError(Exception):
    """A problem with the user's input or environment, with a message that says how to fix it."""
