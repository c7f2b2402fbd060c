"""A mixin for objects that hold a thread, a file or a socket: ``with obj:`` closes it on the way out."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Closing:
    """``with obj: ...`` returns ``obj`` and calls ``obj.close()`` on the way out, after an error too.

    Example:
        >>> class Resource(Closing):
        ...     def close(self) -> None:
        ...         print("closed")
        >>> with Resource():
        ...     pass
        closed
    """

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
