"""Clinic-local wall-clock time <-> instants. Pure."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TIMEZONE = "Europe/Moscow"


class NonexistentLocalTime(ValueError):
    """A wall-clock time skipped by a daylight-saving change."""


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def is_valid_zone(name: str) -> bool:
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def localize(local: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The instant of a local time; a repeated time means the occurrence its `fold` names (0, the first,
    unless said otherwise), a skipped one is an error."""
    aware = local.replace(tzinfo=tz)
    if aware.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None) != local:
        raise NonexistentLocalTime(f"{local:%d.%m.%Y %H:%M:%S} does not exist in {tz.key} (daylight-saving change)")
    return aware


def epochs_of(local: dt.datetime, tz: ZoneInfo) -> tuple[int, ...]:
    """Every instant (unix seconds) a local time may mean: two in the repeated hour of a clock change."""
    return tuple(sorted({int(local.replace(tzinfo=tz, fold=fold).timestamp()) for fold in (0, 1)}))


def to_epoch(local: dt.datetime, tz: ZoneInfo) -> int:
    return int(localize(local, tz).timestamp())


def from_epoch(seconds: int, tz: ZoneInfo) -> dt.datetime:
    """The clinic's local wall-clock time of an instant, naive."""
    return dt.datetime.fromtimestamp(seconds, tz).replace(tzinfo=None)


def local_text(local: dt.datetime) -> str:
    """A local time as stored: ISO 8601, and `/1` after the second occurrence of a repeated time."""
    return local.isoformat() + ("/1" if local.fold else "")


def from_local_text(text: str) -> dt.datetime:
    written, _, fold = text.partition("/")
    return dt.datetime.fromisoformat(written).replace(fold=int(fold or 0))
