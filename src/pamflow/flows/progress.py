"""Progress callbacks of a running build, kept apart from the task module.

A callback often holds a terminal display (locks, file handles) that cannot be pickled;
living here, it is never reachable from what Dask ships to workers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

_listeners: list[Callable[[dict[str, Any]], None]] = []


@contextlib.contextmanager
def listening(fn: Callable[[dict[str, Any]], None] | None) -> Iterator[None]:
    if fn is None:
        yield
        return
    _listeners.append(fn)
    try:
        yield
    finally:
        _listeners.remove(fn)


def report(info: dict[str, Any]) -> None:
    for fn in list(_listeners):
        fn(info)
