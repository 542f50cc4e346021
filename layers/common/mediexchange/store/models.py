"""The tables. `template.yaml` declares the same keys and indexes; a test holds the two together.

* Clinics: one item per clinic (settings, counters, the import lease).
* ClientKeys: SHA-256 of a client key -> clinic; up to two live keys per clinic (rotation).
* Records: what the MIS syncs (groups, resources, schedules, appointments), each item carrying
  the hash of its content. The partition key is `clinic#kind#shard` with the shard taken from
  the record's own key, so a big clinic's writes spread over many partitions and any record can
  still be found directly; the `by_resource` index serves the busy time of one resource.
* Orders: patients' booking requests; the `by_last_changed` index serves the export window.
* Holds: the time the orders of one resource hold on one day, the unit of booking concurrency.
* Imports: every document a clinic sent, its state and its answer (status.php); raw documents in S3.
* Sessions: the console's sessions and one-time sign-in links, keyed by the SHA-256 of their token.
* History: what happened to an order (booked, changed by the MIS) and the clinic's export calls.

The classes here name no table and no endpoint: `bind` makes subclasses for one store's settings,
so two stores (a test's and the next test's) never share a table name or a connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from pynamodb.attributes import (
    Attribute,
    BinaryAttribute,
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from mediexchange.config import Settings
from mediexchange.protocol.sections import ORDERS, SYNCED
from mediexchange.records import ORDER_FIELDS, Codec

M = TypeVar("M", bound=Model)

# The sections whose last import a clinic item keeps (the console's health per section).
SEEN_SECTIONS: tuple[str, ...] = tuple(s.name for s in (*SYNCED, ORDERS))


SEEN_PREFIX = "seen_"  # of the clinic item's attributes that note finished imports


def seen_attribute(section: str) -> str:
    """The clinic item's attribute for the last import carrying a section."""
    return f"{SEEN_PREFIX}{section.lower()}"


class SeenAttribute(MapAttribute[str, Any]):
    """An import that finished: when (unix seconds), which, and how (ok | partial | error)."""

    at = NumberAttribute()
    import_id = UnicodeAttribute()
    outcome = UnicodeAttribute()


class ClinicModel(Model):
    clinic_id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    timezone = UnicodeAttribute()
    enabled = BooleanAttribute(default=True)
    key_hashes = UnicodeSetAttribute(null=True)
    created_at = NumberAttribute()
    next_order_id = NumberAttribute(default=0)
    next_resource_id = NumberAttribute(default=0)
    # The import queue, per lane (store.imports): the imports received and not finished (their ids sort
    # in the order received) and the lease of the one being applied (its id, and when the lease runs out).
    sync_queue = UnicodeSetAttribute(null=True)
    sync_lease = UnicodeAttribute(null=True)
    sync_lease_expires = NumberAttribute(null=True)
    orders_queue = UnicodeSetAttribute(null=True)
    orders_lease = UnicodeAttribute(null=True)
    orders_lease_expires = NumberAttribute(null=True)
    # Settings (`clinic set`); missing means the default of records.Clinic, so older clinics keep working.
    export_names = UnicodeAttribute(null=True)
    stale_after_hours = NumberAttribute(null=True)
    appointments_synced_at = NumberAttribute(null=True)  # the last import carrying Appointments
    # The last finished import of any lane, and one attribute per section for the last import carrying
    # it: each lane writes only its own sections' attributes, so the two lanes never overwrite each other.
    seen_import = SeenAttribute(null=True)
    locals().update({seen_attribute(name): SeenAttribute(null=True) for name in SEEN_SECTIONS})


class ClientKeyModel(Model):
    key_hash = UnicodeAttribute(hash_key=True)
    clinic_id = UnicodeAttribute()
    created_at = NumberAttribute()


class ByResourceIndex(GlobalSecondaryIndex["RecordModel"]):
    class Meta:
        index_name = "by_resource"
        projection = AllProjection()

    rk = UnicodeAttribute(hash_key=True)
    at = UnicodeAttribute(range_key=True)


class RecordModel(Model):
    """The item layout itself is written by `store.synced` (bulk writes go around PynamoDB)."""

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    h = UnicodeAttribute()  # content hash
    d = UnicodeAttribute()  # content as canonical JSON
    rk = UnicodeAttribute(null=True)  # clinic#MIS resource id, for schedules and appointments
    at = UnicodeAttribute(null=True)  # kind code#local date or start time, sortable
    v = NumberAttribute(null=True)  # 1: the sort key is the record's position, '#' and its key (store.synced)
    by_resource = ByResourceIndex()


class ResourceIdentityModel(Model):
    """The portal's stable id of an MIS resource; kept when the resource is dropped, never reused."""

    pk = UnicodeAttribute(hash_key=True)  # clinic#RID
    sk = UnicodeAttribute(range_key=True)  # MIS resource id
    portal_id = NumberAttribute()


class PortalIdModel(Model):
    """The other way round, beside the identities: a portal id's MIS resource id, so that the portal
    finds one resource by a GetItem. Written with its identity, in the same transaction (store.synced)."""

    pk = UnicodeAttribute(hash_key=True)  # clinic#RID
    sk = UnicodeAttribute(range_key=True)  # p#portal id
    mis_id = NumberAttribute()


class ByLastChangedIndex(GlobalSecondaryIndex["OrderModel"]):
    class Meta:
        index_name = "by_last_changed"
        projection = AllProjection()

    clinic_id = UnicodeAttribute(hash_key=True)
    last_changed = NumberAttribute(range_key=True)


class ByWaitingIndex(GlobalSecondaryIndex["OrderModel"]):
    class Meta:
        index_name = "by_waiting"
        projection = KeysOnlyProjection()

    clinic_id = UnicodeAttribute(hash_key=True)
    waiting_since = NumberAttribute(range_key=True)


class ByReceptionIndex(GlobalSecondaryIndex["OrderModel"]):
    class Meta:
        index_name = "by_reception"
        projection = AllProjection()

    clinic_id = UnicodeAttribute(hash_key=True)
    reception = UnicodeAttribute(range_key=True)  # local ISO text: sorts by time


def _order_attribute(codec: Codec, optional: bool) -> Attribute[Any]:
    """Numbers as numbers, dates and local times as ISO text; what may be left out (a patient's
    optional field, the service's own bookkeeping) has an empty default."""
    if codec in (Codec.INT, Codec.STATUS, Codec.INSTANT):
        return NumberAttribute(default=0) if optional else NumberAttribute()
    return UnicodeAttribute(default="") if optional else UnicodeAttribute()


class OrderModel(Model):
    """Keyed by clinic and order id; every other attribute is a field of `records.Order`, made from it."""

    clinic_id = UnicodeAttribute(hash_key=True)
    order_id = NumberAttribute(range_key=True)
    last_changed = NumberAttribute()  # unix seconds; named here too for the index and the change condition
    expires_at = NumberAttribute(null=True)  # unix seconds: DynamoDB's TTL deletes the order after it
    # Unix seconds since the order waits for the MIS's decision (status RECEIVED); absent once decided,
    # so by_waiting holds only the waiting orders.
    waiting_since = NumberAttribute(null=True)
    by_last_changed = ByLastChangedIndex()
    by_waiting = ByWaitingIndex()
    by_reception = ByReceptionIndex()
    locals().update(
        {
            name: _order_attribute(field.codec, field.patient is not None or not field.exported)
            for name, field in ORDER_FIELDS
            if field.stored and name not in ("id", "last_changed")
        }
    )


class HoldDayModel(Model):
    """The time one MIS resource's orders hold on one local day: {order id: [start, end]} in unix seconds.

    Every booking and every MIS change to an order rewrites the day under a version condition,
    so two patients can never both take one slot, whatever the step of the schedule.
    """

    pk = UnicodeAttribute(hash_key=True)  # clinic#MIS resource id
    day = UnicodeAttribute(range_key=True)  # local ISO date of the holds' starts
    holds = JSONAttribute(default=dict)
    version = NumberAttribute(default=0)
    expires_at = NumberAttribute(null=True)  # unix seconds: DynamoDB's TTL deletes the day after it


class ImportModel(Model):
    """One document a clinic sent: when, what became of it, and its answer (gzipped ImportResult XML)."""

    clinic_id = UnicodeAttribute(hash_key=True)
    import_id = UnicodeAttribute(range_key=True)  # sortable by time
    received_at = NumberAttribute()
    state = UnicodeAttribute()  # queued | running | done | failed
    lane = UnicodeAttribute(default="sync")
    background = BooleanAttribute(default=False)  # handed to the worker by its request (202)
    error_code = UnicodeAttribute(null=True)  # why it failed (the answer's Error code); none once done
    size = NumberAttribute()
    result = BinaryAttribute(null=True, legacy_encoding=False)
    expires = TTLAttribute()  # DynamoDB removes the entry when its raw document expires
    # Once finished: ok | partial (records rejected) | error, the answer's counts, the sections it carried.
    outcome = UnicodeAttribute(null=True)
    errors = NumberAttribute(null=True)
    warnings = NumberAttribute(null=True)
    sections = ListAttribute[str](null=True)  # section names, in document order


class SessionModel(Model):
    """A console session or a one-time sign-in link; the token itself is never stored."""

    token_hash = UnicodeAttribute(hash_key=True)  # SHA-256 hex of the token
    kind = UnicodeAttribute()  # session | sign_in_link
    role = UnicodeAttribute(null=True)  # operator | integrator (sessions)
    who = UnicodeAttribute(null=True)  # the operator's user name, or clinic:<id>
    clinic_id = UnicodeAttribute(null=True)  # an integrator's clinic
    csrf = UnicodeAttribute(null=True)
    created_at = NumberAttribute()
    expires_at = NumberAttribute()  # unix seconds: DynamoDB's TTL deletes it after, reads refuse it from then


class HistoryModel(Model):
    """One event of an order (pk clinic#order) or one export call of a clinic (pk clinic#exports)."""

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)  # unix ms, 13 digits, then # and 4 random hex: sorts by time
    expires_at = NumberAttribute()  # unix seconds: DynamoDB's TTL deletes it after
    # An order event: what happened, whose doing, the order as it was after it.
    kind = UnicodeAttribute(null=True)  # booked | changed
    by = UnicodeAttribute(null=True)  # portal | mis
    status = NumberAttribute(null=True)
    reception = UnicodeAttribute(null=True)  # local ISO text, as the order keeps it
    duration = NumberAttribute(null=True)
    resource_name = UnicodeAttribute(null=True)
    mw_resource_id = NumberAttribute(null=True)
    last_changed = NumberAttribute(null=True)  # the version the event made: what an export window covers
    import_id = UnicodeAttribute(null=True)  # the import that carried an MIS change
    # An export call: its window (end absent: open) and how many orders it answered with.
    start = NumberAttribute(null=True)
    end = NumberAttribute(null=True)
    answered = NumberAttribute(null=True)  # orders in the answer


@dataclass(frozen=True, slots=True)
class Tables:
    """The models of one store, bound to its table names, endpoint and retry policy."""

    clinics: type[ClinicModel]
    client_keys: type[ClientKeyModel]
    records: type[RecordModel]
    identities: type[ResourceIdentityModel]
    portal_ids: type[PortalIdModel]
    orders: type[OrderModel]
    holds: type[HoldDayModel]
    imports: type[ImportModel]
    sessions: type[SessionModel]
    history: type[HistoryModel]

    def all(self) -> tuple[type[Model], ...]:
        return (
            self.clinics,
            self.client_keys,
            self.records,
            self.identities,
            self.portal_ids,
            self.orders,
            self.holds,
            self.imports,
            self.sessions,
            self.history,
        )


def bind(settings: Settings) -> Tables:
    """The models named after the settings' tables; their connection is the store's (store.backend)."""

    def bound(model: type[M], table_name: str) -> type[M]:
        namespace: dict[str, Any] = {"Meta": type("Meta", (), {"table_name": table_name}), "__module__": __name__}
        # Indexes anew for each binding: PynamoDB points an index at the last model class that holds it.
        for name in dir(model):
            index = getattr(model, name, None)
            if isinstance(index, GlobalSecondaryIndex):
                namespace[name] = type(index)()
        return type(model.__name__, (model,), namespace)

    return Tables(
        clinics=bound(ClinicModel, settings.clinics_table),
        client_keys=bound(ClientKeyModel, settings.client_keys_table),
        records=bound(RecordModel, settings.records_table),
        identities=bound(ResourceIdentityModel, settings.records_table),
        portal_ids=bound(PortalIdModel, settings.records_table),
        orders=bound(OrderModel, settings.orders_table),
        holds=bound(HoldDayModel, settings.holds_table),
        imports=bound(ImportModel, settings.imports_table),
        sessions=bound(SessionModel, settings.sessions_table),
        history=bound(HistoryModel, settings.history_table),
    )


def _keys(attributes: dict[str, Attribute[Any]]) -> dict[str, str]:
    keys = {}
    for name, attribute in attributes.items():
        if attribute.is_hash_key:
            keys["HASH"] = name
        if attribute.is_range_key:
            keys["RANGE"] = name
    return keys


def describe(tables: Tables) -> dict[str, dict[str, Any]]:
    """{table name: its keys, indexes and key attribute types} as the models declare them; template.yaml
    must declare the same (a test compares the two)."""
    described: dict[str, dict[str, Any]] = {}
    for model in tables.all():
        attributes = model.get_attributes()
        indexes = {index.Meta.index_name: _keys(index.Meta.attributes) for index in model._indexes.values()}
        keyed = {name for key in (_keys(attributes), *indexes.values()) for name in key.values()}
        entry = described.setdefault(model.Meta.table_name, {"keys": _keys(attributes), "indexes": {}, "types": {}})
        assert entry["keys"] == _keys(attributes), f"{model.__name__} disagrees on {model.Meta.table_name}'s keys"
        entry["indexes"].update(indexes)
        entry["types"].update({name: attributes[name].attr_type for name in keyed})
    return described
