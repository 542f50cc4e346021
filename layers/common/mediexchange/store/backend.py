"""What every part of the store shares: the bound tables, the AWS clients, the one retry policy, and the
translation of store failures into the service's own errors.
"""

from __future__ import annotations

import functools
import inspect
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as StoreConnectionError
from pynamodb.connection import Connection
from pynamodb.connection.base import MetaTable

from mediexchange.config import Settings
from mediexchange.errors import StoreUnavailable
from mediexchange.store.models import Tables, bind

RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
    }
)
# Timeouts and broken connections (not botocore's other errors, such as invalid parameters: bugs).
UNREACHABLE = (StoreConnectionError, HTTPClientError)

C = TypeVar("C", bound=type)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently the store asks again. Each call is retried by exactly one layer:
    single calls by botocore's standard mode, bulk calls (whose partial answers botocore cannot
    retry) by `store.batch` alone, with botocore's retries off."""

    single_call_attempts: int = 3
    bulk_attempts: int = 8
    base_delay: float = 0.05
    max_delay: float = 5.0
    # Optimistic concurrency (a hold day or a counter changed under us): read again, decide again.
    conflict_attempts: int = 8

    def backoff(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Full jitter: a random delay up to an exponentially growing cap."""
        return rand() * min(self.max_delay, self.base_delay * 2.0**attempt)


RETRY = RetryPolicy()


def is_transient(exc: BaseException) -> bool:
    """A store failure that waiting may cure (throttling, timeouts, the service's own errors)."""
    cause = getattr(exc, "cause", None) or exc  # PynamoDB wraps the botocore error
    if isinstance(cause, ClientError):
        return cause.response.get("Error", {}).get("Code") in RETRYABLE_CODES
    return isinstance(cause, UNREACHABLE)


def busy(cause: BaseException | None = None) -> StoreUnavailable:
    unreachable = isinstance(getattr(cause, "cause", None) or cause, UNREACHABLE)
    state = "cannot be reached" if unreachable else "is busy"
    return StoreUnavailable(f"the store {state}; nothing accepted was lost, try again later", retry_after=5)


def guarded(cls: C) -> C:
    """Every public method of a store class answers a transient store failure with StoreUnavailable,
    so nothing above the store needs to know botocore."""

    def guard(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except StoreUnavailable:
                raise
            except Exception as exc:
                if is_transient(exc):
                    raise busy(exc) from exc
                raise

        return call

    for name, method in list(vars(cls).items()):
        if inspect.isfunction(method) and not name.startswith("_"):
            setattr(cls, name, guard(method))
    return cls


class Backend:
    """The bound tables and the clients of one store, made on first use (threads may ask at once).

    Every client comes from one botocore session: a session loads botocore's data (endpoints, service
    models) once for all its clients, where PynamoDB on its own makes a session, and so loads them anew,
    for each model's connection."""

    def __init__(self, settings: Settings, retry: RetryPolicy = RETRY) -> None:
        self.settings = settings
        self.retry = retry
        self.tables: Tables = bind(settings)
        self._lock = threading.Lock()  # a botocore session makes one client at a time
        self._clients: dict[str, Any] = {}
        self._hooks: list[tuple[str, Callable[..., Any]]] = []
        self._session = botocore.session.get_session()
        if settings.credentials:
            self._session.set_credentials(*settings.credentials)
        self._connection = _Connection(self)
        for model in self.tables.all():
            table = model._get_connection()  # PynamoDB's, with the table's description; the connection is ours
            table.connection = _Connection(self, self._connection, table.get_meta_table())

    @property
    def pool_size(self) -> int:
        """Connections a client keeps: room for every call in flight (store_parallelism each, several at once)."""
        return 4 * self.settings.store_parallelism

    def _client(self, name: str, service: str, attempts: int, options: Config | None = None) -> Any:
        with self._lock:
            if name not in self._clients:
                config = Config(
                    retries={"mode": "standard", "total_max_attempts": attempts}, max_pool_connections=self.pool_size
                )
                config = config.merge(options) if options else config
                client = self._session.create_client(
                    service, region_name=self.settings.region, endpoint_url=self.settings.endpoint_url, config=config
                )
                for event, handler in self._hooks:
                    client.meta.events.register(event, handler)
                self._clients[name] = client
            return self._clients[name]

    @property
    def dynamodb(self) -> Any:
        """For single calls (queries, gets): botocore retries them."""
        return self._client("dynamodb", "dynamodb", self.retry.single_call_attempts)

    @property
    def bulk(self) -> Any:
        """For BatchWriteItem and BatchGetItem: no botocore retries, `store.batch` retries them."""
        return self._client("bulk", "dynamodb", 1)

    @property
    def s3(self) -> Any:
        return self._client("s3", "s3", self.retry.single_call_attempts)  # a local store serves S3 too

    @property
    def s3_presigner(self) -> Any:
        """For presigned URLs only: SigV4 and, in AWS, the bucket's regional virtual host
        (`https://<bucket>.s3.<region>.amazonaws.com/…`), which works from the first minute of a bucket in
        any region; against a local store, path style on its endpoint (`http://127.0.0.1:<port>/<bucket>/…`)."""
        style = "path" if self.settings.endpoint_url else "virtual"
        options = Config(signature_version="s3v4", s3={"addressing_style": style})
        return self._client("s3-presigner", "s3", self.retry.single_call_attempts, options)

    @property
    def sqs(self) -> Any:
        return self._client("sqs", "sqs", self.retry.single_call_attempts)

    def transactions(self) -> Connection:
        """A PynamoDB connection for TransactWrite, configured as the models' are (it is theirs)."""
        return self._connection

    def instrument(self, event: str, handler: Callable[..., Any]) -> None:
        """Register a botocore event handler (e.g. `before-call.dynamodb.*`) on every client of the store,
        those made already and those made later: for counting calls and injecting faults."""
        with self._lock:
            self._hooks.append((event, handler))
            clients = list(self._clients.values())
        for client in [*clients, self._connection.client]:  # the models' client is made now if need be
            client.meta.events.register(event, handler)


class _Connection(Connection):
    """A PynamoDB connection on the store's botocore session. The store's models and its transactions share
    one client, made as PynamoDB makes its own (its retries, timeouts and checks), by the `shared` connection;
    each model's connection keeps its table's description (`table`)."""

    def __init__(self, backend: Backend, shared: _Connection | None = None, table: MetaTable | None = None) -> None:
        super().__init__(  # no credentials: the session has them (or finds them, in AWS)
            region=backend.settings.region,
            host=backend.settings.endpoint_url,
            # botocore's standard retry mode, which PynamoDB configures from this: the one retry layer
            # of single-item calls (the bulk path retries on its own, see store.batch).
            max_retry_attempts=backend.retry.single_call_attempts - 1,
            max_pool_connections=backend.pool_size,
        )
        self._backend, self._shared = backend, shared
        if table is not None:
            self.add_meta_table(table)

    @property
    def session(self) -> botocore.session.Session:
        return self._backend._session

    @property
    def client(self) -> Any:
        if self._shared is not None:
            return self._shared.client
        with self._backend._lock:
            return super().client
