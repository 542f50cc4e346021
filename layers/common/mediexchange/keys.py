"""Client keys: the shape the original portal issued, and the one form a key is stored and found in. Pure."""

from __future__ import annotations

import re
import uuid

_HEX = "[0-9A-Fa-f]"
GUID = re.compile(rf"(\{{)?({_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}})(?(1)\}})")


def canonical_client_key(client_key: str) -> str:
    """The form a client key is stored and looked up in: a GUID (8-4-4-4-12 hex digits, with or
    without surrounding braces) in upper case without braces, since MIS software writes GUIDs in
    either case; any other key exactly as given."""
    guid = GUID.fullmatch(client_key)
    return guid.group(2).upper() if guid else client_key


def new_client_key() -> str:
    """A key in the shape the original portal issued: an upper-case GUID."""
    return str(uuid.uuid4()).upper()
