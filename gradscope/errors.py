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


def describe_exception(exc: BaseException, limit: int = 500) -> str:
    """An exception as one line for ``run.json``: its type and message, without terminal colour codes.

    Example:
        >>> describe_exception(RuntimeError("Exception in call.\\n\\n\\x1b[1mdisk full\\x1b[0m\\n"))
        'RuntimeError: Exception in call. disk full'
    """
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    text = " ".join(text.split())
    line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."
