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
"""

from __future__ import annotations

from pynamodb.attributes import (
    BinaryAttribute,
    BooleanAttribute,
    JSONAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from mediexchange.config import settings


class _Meta:
    region = settings.region
    host = settings.endpoint_url
    # Conditional and single-item calls; the bulk path retries with backoff of its own (store.batch).
    max_retry_attempts = 3
    base_backoff_ms = 50


class ClinicModel(Model):
    class Meta(_Meta):
        table_name = settings.clinics_table

    clinic_id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    timezone = UnicodeAttribute()
    enabled = BooleanAttribute(default=True)
    key_hashes = UnicodeSetAttribute(null=True)
    created_at = NumberAttribute()
    next_order_id = NumberAttribute(default=0)
    next_resource_id = NumberAttribute(default=0)
    lease_owner = UnicodeAttribute(null=True)
    lease_expires = NumberAttribute(null=True)


class ClientKeyModel(Model):
    class Meta(_Meta):
        table_name = settings.client_keys_table

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
    class Meta(_Meta):
        table_name = settings.records_table

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    h = UnicodeAttribute()  # content hash
    d = UnicodeAttribute()  # content as canonical JSON
    rk = UnicodeAttribute(null=True)  # clinic#MIS resource id, for schedules and appointments
    at = UnicodeAttribute(null=True)  # local date or start time, sortable
    by_resource = ByResourceIndex()


class ResourceIdentityModel(Model):
    """The portal's stable id of an MIS resource; kept when the resource is dropped, never reused."""

    class Meta(_Meta):
        table_name = settings.records_table

    pk = UnicodeAttribute(hash_key=True)  # clinic#RID
    sk = UnicodeAttribute(range_key=True)  # MIS resource id
    portal_id = NumberAttribute()


class ByLastChangedIndex(GlobalSecondaryIndex["OrderModel"]):
    class Meta:
        index_name = "by_last_changed"
        projection = AllProjection()

    clinic_id = UnicodeAttribute(hash_key=True)
    last_changed = NumberAttribute(range_key=True)


class OrderModel(Model):
    class Meta(_Meta):
        table_name = settings.orders_table

    clinic_id = UnicodeAttribute(hash_key=True)
    order_id = NumberAttribute(range_key=True)
    status = NumberAttribute()
    order_date = UnicodeAttribute()  # local ISO date
    resource_id = NumberAttribute()
    mw_resource_id = NumberAttribute()
    resource_name = UnicodeAttribute()
    reception = UnicodeAttribute()  # local ISO date-time
    duration = NumberAttribute()
    last_changed = NumberAttribute()  # unix seconds
    user_id = UnicodeAttribute(default="")
    user_name = UnicodeAttribute(default="")
    name1 = UnicodeAttribute(default="")
    name2 = UnicodeAttribute(default="")
    name3 = UnicodeAttribute(default="")
    aim = UnicodeAttribute(default="")
    phone = UnicodeAttribute(default="")
    city = UnicodeAttribute(default="")
    address = UnicodeAttribute(default="")
    email = UnicodeAttribute(default="")
    comment = UnicodeAttribute(default="")
    by_last_changed = ByLastChangedIndex()


class HoldDayModel(Model):
    """The time one MIS resource's orders hold on one local day: {order id: [start, end]} in unix seconds.

    Every booking and every MIS change to an order rewrites the day under a version condition,
    so two patients can never both take one slot, whatever the step of the schedule.
    """

    class Meta(_Meta):
        table_name = settings.holds_table

    pk = UnicodeAttribute(hash_key=True)  # clinic#MIS resource id
    day = UnicodeAttribute(range_key=True)  # local ISO date of the holds' starts
    holds = JSONAttribute(default=dict)
    version = NumberAttribute(default=0)


class ImportModel(Model):
    """One document a clinic sent: when, what became of it, and its answer (gzipped ImportResult XML)."""

    class Meta(_Meta):
        table_name = settings.imports_table

    clinic_id = UnicodeAttribute(hash_key=True)
    import_id = UnicodeAttribute(range_key=True)  # sortable by time
    received_at = NumberAttribute()
    state = UnicodeAttribute()  # running | done | failed
    http_status = NumberAttribute(null=True)
    size = NumberAttribute()
    result = BinaryAttribute(null=True, legacy_encoding=False)
    expires = TTLAttribute()  # DynamoDB removes the entry when its raw document expires


ALL_MODELS: tuple[type[Model], ...] = (
    ClinicModel,
    ClientKeyModel,
    RecordModel,
    OrderModel,
    HoldDayModel,
    ImportModel,
)
