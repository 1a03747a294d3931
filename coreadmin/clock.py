"""An injectable clock: behaviour that depends on time reads it from here, so tests move
time instead of sleeping.

``clock.now()`` is an aware UTC datetime, ``clock.time()`` epoch seconds and
``clock.ms()`` epoch milliseconds (what Lua scripts in Redis receive). Tests call
``clock.freeze(at)`` / ``clock.advance(seconds=...)`` and ``clock.unfreeze()``.
In several processes each reads its own system clock; on one host they agree.
"""

from __future__ import annotations

import datetime as dt
import threading
import time as _time


class Clock:
    def __init__(self) -> None:
        self._frozen: float | None = None
        self._lock = threading.Lock()

    def time(self) -> float:
        frozen = self._frozen
        return _time.time() if frozen is None else frozen

    def ms(self) -> int:
        return int(self.time() * 1000)

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.time(), tz=dt.UTC)

    def freeze(self, at: dt.datetime | float | None = None) -> None:
        if at is None:
            value = _time.time()
        elif isinstance(at, dt.datetime):
            value = at.timestamp()
        else:
            value = float(at)
        with self._lock:
            self._frozen = value

    def advance(self, seconds: float = 0.0, *, ms: float = 0.0) -> None:
        with self._lock:
            if self._frozen is None:
                raise RuntimeError("advance() needs a frozen clock; call freeze() first")
            self._frozen += seconds + ms / 1000.0

    def unfreeze(self) -> None:
        with self._lock:
            self._frozen = None

    @property
    def frozen(self) -> bool:
        return self._frozen is not None


clock = Clock()
