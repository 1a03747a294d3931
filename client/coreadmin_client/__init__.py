"""coreadmin_client: the scraper-side package of coreadmin (httpx only). See docs/client.md."""

from .batching import Batcher, Delivered
from .cache import LRUCache
from .circuits import CircuitView, circuit_protected
from .client import Client, default_client
from .datasets import BatchWriter
from .errors import (
    ApiError,
    AuthenticationError,
    BackpressureError,
    CircuitOpenError,
    ConflictError,
    CoreadminError,
    NetworkError,
    NoProxyAvailableError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    ServerError,
    ValidationError,
)
from .logs import LogHandler, StructlogProcessor
from .proxies import AsyncProxyPool, ProxyPool
from .ratelimit import RateLimiter
from .tracing import Tracker, current_thread_id, is_sampled
from .transport import RetryPolicy

__version__ = "0.1.0"
__all__ = [
    "ApiError",
    "AsyncProxyPool",
    "AuthenticationError",
    "BackpressureError",
    "BatchWriter",
    "Batcher",
    "CircuitOpenError",
    "CircuitView",
    "Client",
    "ConflictError",
    "CoreadminError",
    "Delivered",
    "LRUCache",
    "LogHandler",
    "NetworkError",
    "NoProxyAvailableError",
    "NotFoundError",
    "PayloadTooLargeError",
    "ProxyPool",
    "RateLimitError",
    "RateLimiter",
    "RetryPolicy",
    "ServerError",
    "StructlogProcessor",
    "Tracker",
    "ValidationError",
    "circuit_protected",
    "current_thread_id",
    "default_client",
    "is_sampled",
]
