"""Pricing arithmetic: daily usage sums and the pricing versions in force -> priced lines. No database access.

Tiers are graduated and count from the start of the priced period (a calendar month for invoices): the
units from a tier's `tier_from` up to the next tier's cost that tier's price. A pricing version is in force
from its `valid_from` day (Europe/Istanbul) until the next version's; when the price changes mid-month the
days before are priced by the old version and the days after by the new one, and the tier count runs on
across the change (the 1001st call of the month is the 1001st, whichever version prices it).
All amounts are Decimal; a line's amount is quantity × unit price rounded half-up to the kuruş (cent).
"""

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0")


class PeriodError(ValueError):
    pass


@dataclass(frozen=True)
class Rate:
    metric: str
    dimension: str
    tier_from: Decimal
    unit_price: Decimal


@dataclass(frozen=True)
class Version:
    version: int
    currency: str
    valid_from: dt.date
    rates: tuple[Rate, ...]

    def tiers(self, metric: str, dimension: str) -> list[Rate]:
        """The tiers pricing `metric`/`dimension`: the dimension's own, else the metric's blank-dimension ones."""
        own = [r for r in self.rates if r.metric == metric and r.dimension == dimension]
        chosen = own or [r for r in self.rates if r.metric == metric and r.dimension == ""]
        return sorted(chosen, key=lambda r: r.tier_from)


@dataclass(frozen=True)
class LineKey:
    metric: str
    dimension: str
    usage_month: str
    version: int
    tier_from: Decimal
    unit_price: Decimal


@dataclass
class Priced:
    """Priced lines (quantity per key), the currency, and the exact cost per day and metric (for charts)."""

    quantities: dict = field(default_factory=lambda: defaultdict(Decimal))
    daily_cost: dict = field(default_factory=lambda: defaultdict(Decimal))
    currencies: set = field(default_factory=set)

    def lines(self) -> list[dict]:
        out = []
        for key in sorted(self.quantities, key=_line_order):
            qty = self.quantities[key]
            if qty == 0:
                continue
            out.append(
                {
                    "metric": key.metric,
                    "dimension": key.dimension,
                    "usage_month": key.usage_month,
                    "pricing_version": key.version,
                    "tier_from": key.tier_from,
                    "quantity": qty,
                    "unit_price": key.unit_price,
                    "amount": amount(qty, key.unit_price),
                }
            )
        return out


def _line_order(key: LineKey):
    return (key.usage_month, key.metric, key.dimension, key.version, key.tier_from, key.unit_price)


def amount(quantity: Decimal, unit_price: Decimal) -> Decimal:
    return (quantity * unit_price).quantize(CENT, rounding=ROUND_HALF_UP)


def in_force(versions: list[Version], day: dt.date) -> Version | None:
    current = None
    for v in sorted(versions, key=lambda v: v.valid_from):
        if v.valid_from <= day:
            current = v
    return current


def _slices(tiers: list[Rate], start: Decimal, quantity: Decimal):
    """(tier, units) of the units from `start` to `start + quantity` (negative quantity: back from `start`)."""
    if not tiers:
        return  # no rate for this metric in the version: the caller prices the units at 0
    sign = 1 if quantity >= 0 else -1
    lo_q, hi_q = (start, start + quantity) if sign > 0 else (start + quantity, start)
    bounds = [t.tier_from for t in tiers[1:]] + [None]
    first = tiers[0].tier_from if tiers else None
    if first is not None and first > lo_q:
        # Units below the first tier cost nothing (a free allowance).
        free = min(hi_q, first) - lo_q
        if free > 0:
            yield None, free * sign
    for tier, hi in zip(tiers, bounds, strict=True):
        top = hi_q if hi is None else min(hi, hi_q)
        units = top - max(tier.tier_from, lo_q)
        if units > 0:
            yield tier, units * sign


def price_daily(daily: dict, versions: list[Version], *, offsets: dict | None = None) -> Priced:
    """Price `daily` ({(day, metric, dimension): quantity}) day by day with the version in force each day.

    `offsets` ({(metric, dimension): units already used this period}) lets a caller continue a tier count.
    Usage on a day before every version is priced at 0 under version 0.
    """
    priced = Priced()
    used = defaultdict(Decimal, offsets or {})
    for day, metric, dimension in sorted(daily):
        qty = daily[(day, metric, dimension)]
        if qty == 0:
            continue
        version = in_force(versions, day)
        tiers = version.tiers(metric, dimension) if version else []
        number = version.version if version else 0
        if version:
            priced.currencies.add(version.currency)
        month = f"{day:%Y-%m}"
        for tier, units in _slices(tiers, used[(metric, dimension)], qty):
            unit_price = tier.unit_price if tier else ZERO
            tier_from = tier.tier_from if tier else ZERO
            priced.quantities[LineKey(metric, dimension, month, number, tier_from, unit_price)] += units
            priced.daily_cost[(day, metric)] += units * unit_price
        if not tiers:
            priced.quantities[LineKey(metric, dimension, month, number, ZERO, ZERO)] += qty
        used[(metric, dimension)] += qty
    return priced


@dataclass(frozen=True)
class Period:
    label: str
    grain: str  # day | week | month | quarter
    start: dt.date
    end: dt.date  # exclusive

    def days(self):
        day = self.start
        while day < self.end:
            yield day
            day += dt.timedelta(days=1)


_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")


def month_after(day: dt.date) -> dt.date:
    return dt.date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def parse_period(text: str) -> Period:
    """`2026-11` (month), `2026-W47` (ISO week), `2026-11-05` (day) or `2026-Q4`; PeriodError otherwise."""
    text = (text or "").strip()
    try:
        if m := _MONTH.match(text):
            start = dt.date(int(m[1]), int(m[2]), 1)
            return Period(text, "month", start, month_after(start))
        if m := _WEEK.match(text):
            start = dt.date.fromisocalendar(int(m[1]), int(m[2]), 1)
            return Period(text, "week", start, start + dt.timedelta(days=7))
        if m := _DAY.match(text):
            start = dt.date(int(m[1]), int(m[2]), int(m[3]))
            return Period(text, "day", start, start + dt.timedelta(days=1))
        if m := _QUARTER.match(text):
            start = dt.date(int(m[1]), 3 * int(m[2]) - 2, 1)
            end = month_after(month_after(month_after(start)))
            return Period(text, "quarter", start, end)
    except ValueError:
        pass
    if text and (_MONTH.match(text) or _WEEK.match(text) or _DAY.match(text)):
        raise PeriodError(f"{text!r} is not a calendar date")
    raise PeriodError("Use a period like 2026-11, 2026-W47, 2026-11-05 or 2026-Q4")
