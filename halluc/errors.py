"""The one exception a user can cause: bad input (a path, a value, a file's content).

Commands turn it into one line on stderr and exit status 2 (halluc/command.py); library code raises
it with a message that names the file (and line and field where there is one) and says what to do.
"""


class BadInput(Exception):
    """A bad input line under --strict, or an input that cannot be read or written at all."""
