"""The Fever partner feed: `eventList/output/base_event/event` or, in the newer vocabulary,
`planList/output/base_plan/plan`, with the same attributes renamed.

Read as a stream of expat events in the caller's thread: each `<event>` is yielded as it closes,
with its base's attributes kept from the base's start tag and its zones folded into a min and max
price as they pass, so memory holds one tag at a time, whatever the size of a base or the feed.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO
from xml.parsers import expat

from marquee import FeedError, InvalidItem, ParsedEvent, ParseResult
from providers.fever.values import key_part, read_price, read_sell_mode, read_timestamp, required

READ_SIZE = 64 * 1024
# A Fever feed is five elements deep; expat keeps every open element, so nesting is capped.
MAX_DEPTH = 32
# Expat holds a tag (or comment, or declaration) whole until it ends: none may be larger.
MAX_TOKEN_BYTES = 1 << 20
_PRICE_CACHE_SIZE = 4096
EVENTS_PER_BASE = 100_000
ZONES_PER_EVENT = 10_000


@dataclass(frozen=True, slots=True)
class Vocabulary:
    root: str
    base: str
    item: str

    @property
    def base_id(self) -> str:
        return f"{self.base}_id"

    @property
    def item_id(self) -> str:
        return f"{self.item}_id"

    @property
    def item_start(self) -> str:
        return f"{self.item}_start_date"

    @property
    def item_end(self) -> str:
        return f"{self.item}_end_date"


VOCABULARIES = {
    "eventList": Vocabulary(root="eventList", base="base_event", item="event"),
    "planList": Vocabulary(root="planList", base="base_plan", item="plan"),
}


@dataclass(frozen=True, slots=True)
class Limits:
    """How large one base and one event may be; what is over is skipped with a reason."""

    events_per_base: int = EVENTS_PER_BASE
    zones_per_event: int = ZONES_PER_EVENT


class _Reader:
    """Expat's handlers: they collect the results of the bytes fed so far into `results`."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.results: list[ParseResult] = []
        self.depth = 0
        self.words: Vocabulary | None = None
        self.in_output = False
        self.in_base = False
        self.base_key = "?"
        self.title = ""
        self.on_sale = False
        self.base_problem: str | None = None
        self.base_items = 0
        self.item: dict[str, str] | None = None
        self.item_problem: str | None = None
        # The raw prices of the open event's zones, read when it closes: a list append is the
        # cheapest thing to do a million times.
        self.raw_prices: list[str | None] = []
        self.zone_limit = limits.zones_per_event
        self.too_many_zones = False
        self.prices: dict[str | None, float | str] = {}

    def start(self, name: str, attrs: dict[str, str]) -> None:
        depth = self.depth = self.depth + 1
        if depth == 5:
            if name == "zone" and self.item is not None:
                if len(self.raw_prices) < self.zone_limit:
                    self.raw_prices.append(attrs.get("price"))
                else:
                    self.too_many_zones = True
        elif depth > 5:
            if depth > MAX_DEPTH:
                raise FeedError(f"feed nests elements deeper than {MAX_DEPTH} levels")
        elif depth == 4:
            if self.in_base and name == self.words.item:  # type: ignore[union-attr]
                self._open_item(attrs)
        elif depth == 3:
            if self.in_output and name == self.words.base:  # type: ignore[union-attr]
                self._open_base(attrs)
        elif depth == 2:
            self.in_output = name == "output"
        else:
            self.words = VOCABULARIES.get(name)
            if self.words is None:
                raise FeedError(f"not a Fever feed: root element <{name}>")

    def end(self, name: str) -> None:
        depth = self.depth
        self.depth = depth - 1
        if depth == 4:
            if self.item is not None:
                self._close_item()
        elif depth == 3:
            self.in_base = False
        elif depth == 2:
            self.in_output = False

    def _open_base(self, attrs: dict[str, str]) -> None:
        words = self.words
        assert words is not None
        self.in_base = True
        self.base_items = 0
        self.base_key = key_part(attrs.get(words.base_id, "").strip())
        self.base_problem = None
        try:
            required(attrs, words.base_id)
            self.title = required(attrs, "title")
            self.on_sale = read_sell_mode(attrs)
        except ValueError as exc:
            self.base_problem = str(exc)

    def _open_item(self, attrs: dict[str, str]) -> None:
        self.item = attrs
        self.item_problem = None
        self.raw_prices = []
        self.too_many_zones = False
        self.base_items += 1
        if self.base_items > self.limits.events_per_base:
            self.item_problem = (
                f"base holds more than {self.limits.events_per_base} "
                f"{self.words.item}s (MAX_EVENTS_PER_BASE)"  # type: ignore[union-attr]
            )

    def _price_range(self) -> tuple[float, float] | None:
        """The open event's lowest and highest zone price; None without zones. Raises ValueError
        for a price that is none, or too many zones."""
        if self.too_many_zones:
            raise ValueError(
                f"{self.words.item} has more than "  # type: ignore[union-attr]
                f"{self.zone_limit} zones (MAX_ZONES_PER_EVENT)"
            )
        if not self.raw_prices:
            return None
        cache = self.prices
        prices = []
        for raw in set(self.raw_prices):
            price = cache.get(raw)
            if price is None:
                price = self._read_price(raw)
            if type(price) is str:
                raise ValueError(price)
            prices.append(price)
        return min(prices), max(prices)  # type: ignore[type-var]

    def _read_price(self, raw: str | None) -> float | str:
        """The price, or the reason it is none; remembered, as feeds repeat their prices."""
        try:
            price: float | str = read_price(raw)
        except ValueError as exc:
            price = str(exc)
        if len(self.prices) >= _PRICE_CACHE_SIZE:
            self.prices.clear()
        self.prices[raw] = price
        return price

    def _close_item(self) -> None:
        words, attrs = self.words, self.item
        assert words is not None and attrs is not None
        self.item = None
        key = f"{self.base_key}/{key_part(attrs.get(words.item_id, '').strip())}"
        problem = self.base_problem or self.item_problem
        if problem is not None:
            self.results.append(InvalidItem(key, problem))
            return
        try:
            prices = self._price_range()
            required(attrs, words.item_id)
            start = read_timestamp(attrs, words.item_start)
            end = read_timestamp(attrs, words.item_end)
        except ValueError as exc:
            self.results.append(InvalidItem(key, str(exc)))
            return
        low, high = prices or (None, None)
        self.results.append(
            ParsedEvent(
                key=key,
                title=self.title,
                start=start,
                end=end,
                on_sale=self.on_sale,
                min_price=low,
                max_price=high,
            )
        )


def _refuse_dtd(name: str, system_id: str | None, public_id: str | None, internal: int) -> None:
    if internal:
        raise FeedError(
            "feed declares XML entities or other DTD declarations inside the document, "
            "which are refused"
        )


def _refuse_entity(*_args: object) -> None:
    raise FeedError("feed declares XML entities, which are refused")


def _parser(reader: _Reader) -> "expat.XMLParserType":
    parser = expat.ParserCreate()
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_entity
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    return parser


def parse_feed(source: IO[bytes], *, limits: Limits | None = None) -> Iterator[ParseResult]:
    """Yield a result per <event>/<plan> of a Fever feed read from `source`, as it is read."""
    reader = _Reader(limits or Limits())
    parser = _parser(reader)
    fed = 0
    try:
        while chunk := source.read(READ_SIZE):
            fed += len(chunk)
            parser.Parse(chunk, False)
            # Outside a handler, the index is where expat's unfinished token begins.
            if fed - parser.CurrentByteIndex > MAX_TOKEN_BYTES:
                raise FeedError(
                    f"feed has a tag, comment or declaration over {MAX_TOKEN_BYTES} bytes long"
                )
            if reader.results:
                done, reader.results = reader.results, []
                yield from done
        parser.Parse(b"", True)
    except expat.ExpatError as exc:
        raise FeedError(f"feed is not well-formed XML: {exc}") from exc
    yield from reader.results
