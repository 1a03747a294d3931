"""Ship log lines to ``POST /api/v1/logs`` through the same Batcher as BatchWriter.

Every line is journaled before ``ship`` returns (the Batcher's write-ahead journal), and
each batch carries a ``batch_id`` the server dedupes by, so a retry or a replay after a
lost answer or a crash stores a line once. The caller never blocks: when the queue is
full, lines stay in the journal only and are read back when their turn comes. Lines
logged by coreadmin_client itself are not shipped (no feedback loop when the server is down).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .batching import Batcher, Delivered
from .datasets import open_batcher

if TYPE_CHECKING:
    from .client import Client

__all__ = ["LogHandler", "LogShipper", "StructlogProcessor"]

_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys() | {"message", "asctime"}
)


def _now_iso(ts: float | None = None) -> str:
    when = dt.datetime.now(dt.UTC) if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC)
    return when.isoformat()


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    return repr(value)


class LogShipper:
    """One per client: the batcher that both the Handler and the structlog processor use."""

    def __init__(
        self,
        client: Client,
        *,
        batch_size: int = 200,
        interval: float = 1.0,
        max_queue: int = 10_000,
        spool_dir: str | Path | None = None,
        fsync: bool = False,
    ) -> None:
        self.client = client
        self.batcher: Batcher = open_batcher(
            client,
            "logs",
            client.service or "default",
            spool_dir,
            send=self._send,
            batch_size=batch_size,
            interval=interval,
            max_queue=max_queue,
            overflow="spool",
            fsync=fsync,
        )
        client._register_batcher(self.batcher)

    def _send(self, records: list[Any], batch_id: str) -> Delivered:
        body = self.client.transport.request(
            "POST", "/api/v1/logs", json={"batch_id": batch_id, "records": records}
        )
        return Delivered(written=int(body.get("accepted", len(records))))

    def ship(
        self,
        level: str,
        logger: str,
        message: str,
        context: Mapping[str, Any] | None = None,
        ts: float | None = None,
        thread_id: str | None = None,
    ) -> None:
        from .tracing import current_thread_id

        self.batcher.put(
            {
                "ts": _now_iso(ts),
                "level": level.lower(),
                "logger": logger,
                "message": message,
                "service": self.client.service,
                "thread_id": thread_id or current_thread_id() or "",
                "context": _jsonable(dict(context or {})),
            }
        )


class LogHandler(logging.Handler):
    """``logging.getLogger().addHandler(client.log_handler())``: ships every record at or
    above the handler's level (the heartbeat's ``log_level`` moves it live)."""

    def __init__(self, shipper: LogShipper, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.shipper = shipper
        self._local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("coreadmin_client") or getattr(self._local, "busy", False):
            return
        self._local.busy = True
        try:
            context = {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS}
            thread_id = context.pop("thread_id", None)
            if record.exc_info:
                context["exc_info"] = self.format(record).split("\n", 1)[-1]
            self.shipper.ship(
                record.levelname,
                record.name,
                record.getMessage(),
                context,
                ts=record.created,
                thread_id=str(thread_id) if thread_id else None,
            )
        except Exception:
            self.handleError(record)
        finally:
            self._local.busy = False


class StructlogProcessor:
    """A structlog processor: ships a copy of the event and returns it unchanged, so it
    goes anywhere before the renderer in ``structlog.configure(processors=[...])``."""

    def __init__(self, shipper: LogShipper, level: int = logging.INFO) -> None:
        self.shipper = shipper
        self.level = level

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        level = str(event_dict.get("level") or method_name).upper()
        if level == "WARN":
            level = "WARNING"
        if logging.getLevelName(level) is not None and _level_no(level) < self.level:
            return event_dict
        context = {
            k: v
            for k, v in event_dict.items()
            if k not in {"event", "level", "logger", "timestamp", "thread_id"}
        }
        name = event_dict.get("logger") or getattr(logger, "name", None) or "structlog"
        thread_id = event_dict.get("thread_id")
        self.shipper.ship(
            level,
            str(name),
            str(event_dict.get("event", "")),
            context,
            thread_id=str(thread_id) if thread_id else None,
        )
        return event_dict


def _level_no(level: str) -> int:
    value = logging.getLevelName(level)
    return value if isinstance(value, int) else logging.INFO
