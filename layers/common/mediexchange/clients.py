"""A clinic's MIS as the service's client: the ClientKey it sends names its clinic.

Small on purpose: every function a MIS calls (import, export, status) and the console's integrator
sign-in find the clinic here, without importing the import's machinery on a cold start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mediexchange.errors import UnknownClientKey
from mediexchange.records import NOT_XML, Clinic

if TYPE_CHECKING:  # the store is the caller's: importing this module imports no store
    from mediexchange.store import Store


@dataclass(frozen=True, slots=True)
class KeyOwner:
    """A ClientKey found live, and the clinic that owns it: what a caller that has already authenticated
    a document's key hands on, so the key is not looked up twice."""

    client_key: str
    clinic: Clinic


def authenticate(store: Store, client_key: str) -> Clinic:
    """The enabled clinic that owns the live `client_key`; UnknownClientKey otherwise."""
    if NOT_XML.search(client_key):  # no key holds these, and a lone surrogate cannot even be hashed
        raise UnknownClientKey()
    clinic = store.clinics.for_key(client_key)
    if clinic is None:
        raise UnknownClientKey()
    return clinic


def owner_of(store: Store, client_key: str, known: KeyOwner | None = None) -> Clinic:
    """`authenticate`, unless `known` is this very key's owner already: then its clinic, without a lookup."""
    if known is not None and known.client_key == client_key:
        return known.clinic
    return authenticate(store, client_key)
