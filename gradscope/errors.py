"""The one exception type gradscope raises for problems a user can fix."""


class GradscopeError(Exception):
    """A problem with the user's input or files, with a message that says how to fix it.

    The CLI prints the message on one line and exits non-zero instead of showing a traceback.

    Example:
        >>> raise GradscopeError("unknown activation 'sigmod'; did you mean 'sigmoid'?")
        Traceback (most recent call last):
        ...
        gradscope.errors.GradscopeError: unknown activation 'sigmod'; did you mean 'sigmoid'?
    """
