"""The fast path of reading: the records of a big section are read column by column, many at a time,
rather than element by element and attribute by attribute.

`sections` keeps the one definition of what a record means (its `read_*` functions, which
`reading.DocumentReader` calls); this path only takes the common case faster and must agree with it
exactly (tests/unit/test_fast_reading.py reads documents both ways). A record it cannot read with
certainty, one that would bring a warning or an error, it leaves to the full reader, which reads that
record again and says what is wrong, as it always did.

What costs time in the full reader is Python's work per element and per attribute: an attribute
dictionary, a regular expression and a few small objects for each value. Here libxml2 writes the
section out as one string and one regular expression cuts a few thousand records at a time into their
values (both in C); then each column is checked and converted at once: integers by one regular
expression over the joined column and `map(int, ...)`; a column that repeats its values (a table name,
dates and times: a clinic's appointments start at a few thousand distinct times) once per distinct
value, by the full reader's own code; text by `map(str.strip, ...)`.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from operator import attrgetter
from typing import Generic, TypeVar

from lxml import etree

from mediexchange.protocol.attributes import INTEGER, MAX_TEXT, Attributes, RecordError

R = TypeVar("R")
T = TypeVar("T")

CHUNK = 1 << 18  # characters of the written section cut into values at a time (about 2,000 records)
# A column of integers joined by NUL, which no XML value can hold: every value in INTEGER's form at once.
_INTEGERS = re.compile(f"(?:{INTEGER.pattern}\x00)*{INTEGER.pattern}")
_FEW, _SAMPLE = 4, 1000  # a column whose first 1,000 values hold at most 250 distinct ones repeats its values
_SOURCELINE = attrgetter("sourceline")


@dataclass(frozen=True, slots=True)
class FastRead(Generic[R]):
    """A section read the fast way: for each of its child elements, in order, its record, or None where
    the full reader must read that element."""

    records: list[R | None]
    clean: bool  # every record read, every key once and short: the section's valid records are `records`


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Python's cycle collector paused while a section's records are made.

    Making 10^5 records triggers it over and over, and its runs walk what was made so far: the big
    clinic's appointments took a fifth longer. Nothing made here holds a cycle, and reference counting
    still frees all garbage at once; the collector runs again as soon as the section is read.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass(frozen=True, slots=True)
class Columns:
    """The attribute values of some records of a section (up to CHUNK characters of them), by column."""

    children: list[etree._Element]  # the record elements
    values: dict[str, list[str]]  # by lower-case name, one value per record; attributes not written are absent
    inner: list[str]  # each record's content as libxml2 writes it ("" for none)
    failed: set[int]  # positions of records the full reader must read: readers add those they cannot read

    def column(self, name: str) -> list[str]:
        """One attribute's values; an attribute not written reads as empty, as the full reader takes it."""
        return self.values.get(name) or [""] * len(self.children)

    def lines(self) -> list[int]:
        lines: list[int | None] = list(map(_SOURCELINE, self.children))
        return [line or 0 for line in lines]


def plain_known(spelled: list[str], known: frozenset[str], aliases: dict[str, str] | None = None) -> bool:
    """Whether attributes spelled so are all known, none in a namespace, and none given twice (in
    another case or by an alias): then the full reader reads them without a warning or such an error."""
    names = [name.lower() for name in spelled]
    if aliases:
        names = [aliases.get(name, name) for name in names]
    return not any(name[:1] == "{" for name in spelled) and len(set(names)) == len(names) and known.issuperset(names)


@lru_cache(maxsize=64)
def _record_pattern(tag: str, spelled: tuple[str, ...], inner: str | None) -> re.Pattern[str]:
    """A record element as libxml2 writes it with exactly these attributes in this order, each value a
    group (no value holds a quote: libxml2 writes &quot;), then its ending as a group: `/>`, or `>`, the
    `inner` content (a group of its own) and the end tag. Any other element of the tag matches only its
    first characters, with every group empty: each record element of the section is one match."""
    head = "<" + re.escape(tag) + "".join(f' {re.escape(name)}="([^"]*)"' for name in spelled)
    content = f"|>({inner})</{re.escape(tag)}>" if inner is not None else ""
    return re.compile(f"{head}(/>{content})|<{re.escape(tag)}[ />]")


def read_columns(
    element: etree._Element,
    tag: str,
    known: frozenset[str],
    make: Callable[[Columns], list[R]],
    inner: str | None = None,
) -> tuple[list[R], set[int]] | None:
    """The section's records, made by `make` from their values a chunk at a time, and the positions of
    those it could not read. None unless every child is a `tag` element (that very name: no namespace,
    no other case) and the first one's attributes are all known. A record written otherwise than the
    first one (other attributes, another order) or with content other than `inner` (a regular
    expression of what libxml2 writes; None: no content) is left to the full reader."""
    children = iter(element)
    first = next(children, None)
    # Every child a `tag` element: XPath counts them in C, where asking each child's tag makes 10^5 proxies.
    if first is None or first.tag != tag or element.xpath(f"count({tag})") != len(element):
        return None
    spelled = first.keys()
    if not spelled or not plain_known(spelled, known):
        return None
    # Neither text nor an attribute value holds a `<` as libxml2 writes them (it is &lt;): each `<tag`
    # starts an element, so a chunk may end before any of them.
    text = etree.tostring(element, encoding=str, with_tail=False)
    pattern = _record_pattern(tag, tuple(spelled), inner)
    children = iter(element)
    records: list[R] = []
    failed: set[int] = set()
    start = 0
    while start < len(text):
        end = text.find(f"<{tag}", start + CHUNK)
        end = len(text) if end < 0 else end
        found = pattern.findall(text, start, end)
        escaped = text.find("&", start, end) >= 0  # some value written with a reference (&amp;, &#10;...)
        start = end
        if not found:
            continue
        chunk = list(islice(children, len(found)))
        if len(chunk) != len(found):  # a record element within a record: leave the section to the full reader
            return None
        written = list(zip(*found, strict=True))
        del found
        endings = written[len(spelled)]
        columns = Columns(
            chunk,
            {name.lower(): list(values) for name, values in zip(spelled, written, strict=False)},
            list(written[-1]) if inner is not None else [],
            {i for i, ending in enumerate(endings) if not ending} if "" in endings else set(),
        )
        if escaped:  # those values as the tree has them
            for name in spelled:
                values = columns.values[name.lower()]
                for i in [i for i, value in enumerate(values) if "&" in value]:
                    values[i] = chunk[i].get(name) or ""
        offset = len(records)
        records += make(columns)
        failed.update(offset + i for i in columns.failed)
    if next(children, None) is not None:
        return None
    return records, failed


def finished(records: list[R], failed: set[int], keys_clean: Callable[[], bool]) -> FastRead[R]:
    """The records made (those at the positions in `failed` are dropped for the full reader); `keys_clean`
    tells whether every key is distinct and short (asked only when nothing failed)."""
    kept: list[R | None] = list(records)
    if not failed:
        return FastRead(kept, keys_clean())
    for index in failed:
        kept[index] = None
    return FastRead(kept, False)


class Distinct(Generic[T]):
    """Values read once each for a whole section (all its chunks) by the full reader's own code."""

    def __init__(self, unread: T) -> None:
        self.unread = unread  # in place of a value refused (its record goes to the full reader)
        self.table: dict[str, T] = {}
        self.refused: set[str] = set()

    def column(self, values: list[str], failed: set[int], read: Callable[[str], T]) -> list[T]:
        """The values as `read` reads them; the positions of those it refuses are added to `failed`."""
        table = self.table
        for value in set(values).difference(table):
            try:
                table[value] = read(value)
            except RecordError:
                table[value] = self.unread
                self.refused.add(value)
        if self.refused and not self.refused.isdisjoint(values):
            failed.update(i for i, value in enumerate(values) if value in self.refused)
        return list(map(table.__getitem__, values))


def _few_distinct(values: list[str]) -> bool:
    """Whether a column seems to repeat its values (judged by its first ones): then reading each distinct
    value once is quickest. Either way each value is read exactly as the full reader reads it."""
    sample = values[:_SAMPLE]
    return len(set(sample)) * _FEW <= len(sample)


class Texts:
    """A column of text, as `Attributes.text` reads each value: trimmed, maybe required, not too long."""

    def __init__(self, name: str, required: bool = False, max_length: int = MAX_TEXT) -> None:
        self.name, self.required, self.max_length = name, required, max_length
        self.distinct = Distinct("")

    def read_one(self, raw: str) -> str:
        return Attributes.detached(self.name, raw).text(self.name, self.required, self.max_length)

    def column(self, columns: Columns) -> list[str]:
        values, failed = columns.column(self.name), columns.failed
        if _few_distinct(values):
            return self.distinct.column(values, failed, self.read_one)
        trimmed = list(map(str.strip, values))
        if (self.required and "" in trimmed) or max(map(len, trimmed)) > self.max_length:
            failed.update(i for i, value in enumerate(trimmed) if self.refuses(value))
        return trimmed

    def refuses(self, trimmed: str) -> bool:
        return (self.required and not trimmed) or len(trimmed) > self.max_length


class Integers:
    """A column of integers, as `Attributes.integer` reads each value (0 where one cannot be read)."""

    def __init__(self, name: str, low: int, high: int) -> None:
        self.name, self.low, self.high = name, low, high
        self.distinct = Distinct(0)

    def read_one(self, raw: str) -> int:
        return Attributes.detached(self.name, raw).integer(self.name, self.low, self.high)

    def column(self, columns: Columns) -> list[int]:
        values = columns.column(self.name)
        if not _few_distinct(values):
            joined = "\x00".join(values)
            if _INTEGERS.fullmatch(joined) and joined.count("\x00") == len(values) - 1:
                numbers = list(map(int, values))
                if self.low <= min(numbers) and max(numbers) <= self.high:
                    return numbers
        return self.distinct.column(values, columns.failed, self.read_one)


class Values(Generic[T]):
    """A column of any other form, read once per distinct value by `read` (`unread` for a value refused)."""

    def __init__(self, name: str, read: Callable[[str], T], unread: T) -> None:
        self.name, self.read = name, read
        self.distinct = Distinct(unread)

    def column(self, columns: Columns) -> list[T]:
        return self.distinct.column(columns.column(self.name), columns.failed, self.read)
