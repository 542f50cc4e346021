"""The console's REQUEST authorizer: API Gateway asks it about every console route but sign-in and the
stylesheet (no result cache: a signed-out session is refused at once); it answers Allow with the session
as context, or Deny (mediexchange.console.auth.authorize). Lean on purpose: it runs before every page."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from mediexchange.config import Settings
from mediexchange.console.auth import authorize
from mediexchange.store import Store

_store: Store | None = None


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    global _store
    if _store is None:  # built from the environment on the first request, as every function builds it
        _store = Store(Settings.from_env())
    return authorize(_store, event)
