"""The Fever partner feed: `eventList/output/base_event/event` or, in the newer vocabulary,
`planList/output/base_plan/plan`, with the same attributes renamed. Parsed as a stream, one base at
a time, so memory does not grow with the feed."""

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any
from urllib.parse import quote
from xml.parsers.expat import ExpatError

import xmltodict

from marquee import FeedError, InvalidItem, ParsedEvent, ParseResult, iterate_pushed

READ_SIZE = 64 * 1024
# The prolog (declaration, comments, processing instructions, DOCTYPE) before the root element.
_PROLOG = re.compile(rb"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>|\s+)*", re.S)
_ROOT = re.compile(rb"<([^\s/>]+)")
BASE_DEPTH = 3  # <root>/<output>/<base_…>


@dataclass(frozen=True, slots=True)
class Vocabulary:
    root: str
    base: str
    item: str

    @property
    def base_id(self) -> str:
        return f"@{self.base}_id"

    @property
    def item_id(self) -> str:
        return f"@{self.item}_id"

    @property
    def item_start(self) -> str:
        return f"@{self.item}_start_date"

    @property
    def item_end(self) -> str:
        return f"@{self.item}_end_date"


VOCABULARIES = {
    "eventList": Vocabulary(root="eventList", base="base_event", item="event"),
    "planList": Vocabulary(root="planList", base="base_plan", item="plan"),
}


def _attribute(node: dict[str, Any], name: str) -> str:
    value = node.get(name)
    if value is None or not str(value).strip():
        raise ValueError(f"missing attribute {name.lstrip('@')}")
    return str(value).strip()


def _timestamp(node: dict[str, Any], name: str) -> datetime:
    raw = _attribute(node, name)
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"invalid {name.lstrip('@')} {raw!r}") from None


def _price(zone: Any) -> float:
    if not isinstance(zone, dict):
        raise ValueError("zone without attributes")
    raw = _attribute(zone, "@price")
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"non-numeric zone price {raw!r}") from None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _key(base_id: str, item: Any, words: Vocabulary) -> str:
    """`<base id>/<item id>`, each part percent-encoded so that ids holding "/" cannot collide."""
    raw = item.get(words.item_id) if isinstance(item, dict) else None
    item_id = str(raw).strip() if raw is not None else ""
    return f"{quote(base_id, safe='')}/{quote(item_id, safe='') if item_id else '?'}"


def parse_base(words: Vocabulary, base: Any) -> Iterator[ParseResult]:
    """One ParsedEvent per item of a base, or an InvalidItem for each item that cannot be read."""
    if not isinstance(base, dict):
        yield InvalidItem(None, f"empty <{words.base}>")
        return
    try:
        base_id = _attribute(base, words.base_id)
        title = _attribute(base, "@title")
        on_sale = _attribute(base, "@sell_mode") == "online"
    except ValueError as exc:
        yield InvalidItem(base.get(words.base_id), str(exc))
        return
    for item in _as_list(base.get(words.item)):
        key = _key(base_id, item, words)
        try:
            if not isinstance(item, dict):
                raise ValueError(f"<{words.item}> without attributes")
            _attribute(item, words.item_id)
            prices = [_price(zone) for zone in _as_list(item.get("zone"))]
            yield ParsedEvent(
                key=key,
                title=title,
                start=_timestamp(item, words.item_start),
                end=_timestamp(item, words.item_end),
                on_sale=on_sale,
                min_price=min(prices) if prices else None,
                max_price=max(prices) if prices else None,
            )
        except ValueError as exc:
            yield InvalidItem(key, str(exc))


def _chunks(source: IO[bytes], first: list[bytes]) -> Iterator[bytes]:
    while chunk := source.read(READ_SIZE):
        if not first:
            first.append(chunk)
        yield chunk


def _check_root(first: list[bytes]) -> None:
    """A well-formed document with no base in it must still be a Fever feed (an empty one)."""
    head = first[0] if first else b""
    match = _ROOT.match(head, _PROLOG.match(head).end())  # type: ignore[union-attr]
    root = match.group(1).decode(errors="replace") if match else None
    if root not in VOCABULARIES:
        raise FeedError(f"not a Fever feed: root element <{root}>")


def _push_bases(source: IO[bytes], emit: Callable[[ParseResult], None]) -> None:
    seen_base = False

    def on_base(path: list[tuple[str, Any]], base: Any) -> bool:
        nonlocal seen_base
        words = VOCABULARIES.get(path[0][0])
        if words is None:
            raise FeedError(f"not a Fever feed: root element <{path[0][0]}>")
        if path[-1][0] == words.base:
            seen_base = True
            for result in parse_base(words, base):
                emit(result)
        return True

    first: list[bytes] = []
    try:
        xmltodict.parse(
            _chunks(source, first),
            item_depth=BASE_DEPTH,
            item_callback=on_base,
            force_list=("event", "plan", "zone"),
            disable_entities=True,
        )
    except ExpatError as exc:
        raise FeedError(f"feed is not well-formed XML: {exc}") from exc
    except ValueError as exc:
        if "entities" in str(exc):
            raise FeedError("feed declares XML entities, which are refused") from exc
        raise
    if not seen_base:
        _check_root(first)


def parse_feed(source: IO[bytes]) -> Iterator[ParseResult]:
    """Yield a result per <event>/<plan> of a Fever feed read from `source`."""
    return iterate_pushed(lambda emit: _push_bases(source, emit))
