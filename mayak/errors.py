"""The one error type the CLI turns into a clear one-line message (with what to do next)."""


class MayakError(RuntimeError):
    """A failure the user can act on; the message says what to do next."""
