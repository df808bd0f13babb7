"""The shape every codec error shares: what is wrong (``reason``) and where (``offset``)."""

from __future__ import annotations


class PositionedError(Exception):
    """An input error tied, where possible, to a byte offset.

    ``reason`` says what is wrong, without the position; ``offset`` is the byte offset in the
    input (``None`` when the problem is not tied to a position, e.g. a bad argument).
    ``str(err)`` is ``"offset N: <reason>"`` (or just the reason). Subclasses that take other
    constructor arguments override ``__reduce__`` to keep pickling working.
    """

    def __init__(self, reason: str, offset: int | None = None) -> None:
        self.reason = reason
        self.offset = offset
        super().__init__(self.__str__())

    def __str__(self) -> str:
        if self.offset is None:
            return self.reason
        return f"offset {self.offset}: {self.reason}"

    def __reduce__(self):  # keep pickling (multiprocessing, pytest-xdist) working
        return (type(self), (self.reason, self.offset))
