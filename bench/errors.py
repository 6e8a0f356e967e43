"""The one exception type that means "the user asked for something invalid"."""


class UserError(Exception):
    """Bad input from the user: the CLI prints its message as one line and exits 2."""
