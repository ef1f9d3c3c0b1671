"""KPI results: summaries, rates, spend shares, tables and dataframes."""

from __future__ import annotations

import bisect
import importlib
import math
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import attrs
import babel.numbers

from potrack._metrics.facts import (
    _CENT,
    _HUNDRED,
)
from potrack.money import DEFAULT_LOCALE

# -- statistics -------------------------------------------------------------------------------------------


@attrs.frozen
class Summary:
    """A distribution of durations: how many, and the median, mean, 90th percentile and extremes.

    ``unit`` is ``days`` or ``hours``; ``basis`` ``calendar`` or ``business``.  Values are rounded
    to 0.01 (half-even).  With no observations every statistic is None.  ``negatives`` counts the
    observations that ended before they started and were kept (``negative="keep"``) or counted
    as 0 (``negative="clip"``).
    """

    count: int
    median: Decimal | None
    mean: Decimal | None
    p90: Decimal | None
    min: Decimal | None
    max: Decimal | None
    unit: str = "days"
    basis: str = "calendar"
    negatives: int = 0

    def to_row(self) -> dict[str, object]:
        return {
            "count": self.count,
            "median": self.median,
            "mean": self.mean,
            "p90": self.p90,
            "min": self.min,
            "max": self.max,
            "unit": self.unit,
            "negatives": self.negatives,
        }


def _quantile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between the closest ranks of sorted data (numpy's default).

    >>> _quantile([1.0, 2.0, 3.0, 4.0], 0.5), _quantile([1.0, 2.0, 3.0, 4.0], 0.9)
    (2.5, 3.7)
    """
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _dec(value: float) -> Decimal:
    return Decimal(repr(round(value, 6))).quantize(_CENT, rounding=ROUND_HALF_EVEN)


def summarize(
    values: Iterable[float],
    unit: str = "days",
    basis: str = "calendar",
    negatives: int | None = None,
) -> Summary:
    """The :class:`Summary` of some durations (already in ``unit``); ``negatives`` defaults to
    the number of values below 0.

    >>> summarize([1, 2, 3, 4, 10])
    Summary(count=5, median=Decimal('3.00'), mean=Decimal('4.00'), p90=Decimal('7.60'), min=Decimal('1.00'), max=Decimal('10.00'), unit='days', basis='calendar', negatives=0)
    """
    ordered = sorted(values)
    if negatives is None:
        negatives = bisect.bisect_left(ordered, 0.0)
    if not ordered:
        return Summary(0, None, None, None, None, None, unit, basis, negatives)
    return Summary(
        len(ordered),
        _dec(_quantile(ordered, 0.5)),
        _dec(math.fsum(ordered) / len(ordered)),
        _dec(_quantile(ordered, 0.9)),
        _dec(ordered[0]),
        _dec(ordered[-1]),
        unit,
        basis,
        negatives,
    )


@attrs.frozen
class Rate:
    """``numerator`` of ``denominator`` (counts, quantities or amounts), as a percent.

    ``percent`` is None when there was nothing to measure: *no data*, not 0 %.

    >>> Rate.of(17, 20).percent, Rate.of(0, 0).percent
    (Decimal('85.00'), None)
    """

    numerator: Decimal
    denominator: Decimal
    percent: Decimal | None

    @classmethod
    def of(cls, numerator: Decimal | int, denominator: Decimal | int) -> Rate:
        num, den = Decimal(numerator), Decimal(denominator)
        pct = None if not den else (num * _HUNDRED / den).quantize(_CENT, ROUND_HALF_EVEN)
        return cls(num, den, pct)

    def to_row(self) -> dict[str, object]:
        return {
            "numerator": self.numerator,
            "denominator": self.denominator,
            "percent": self.percent,
        }


@attrs.frozen
class SpendShare:
    """An amount and its share of the whole (percent, two decimals)."""

    amount: Decimal
    currency: str
    share: Decimal | None
    count: int = 0

    def to_row(self) -> dict[str, object]:
        return {
            "amount": self.amount,
            "currency": self.currency,
            "share": self.share,
            "count": self.count,
        }


Value = Summary | Rate | SpendShare


@attrs.frozen
class KpiResult:
    """One KPI: its values per group, the definition used, and what was left out and why.

    ``rows`` pairs each group (a tuple of dimension values, in ``group_by`` order; ``()`` for the
    whole) with its value; ``total`` is the value over every group.  ``excluded`` counts the
    orders (or lines, or invoices) not measured, by reason.
    """

    name: str
    definition: str
    group_by: tuple[str, ...]
    rows: tuple[tuple[tuple[str, ...], Value], ...]
    total: Any
    excluded: tuple[tuple[str, int], ...] = ()
    notes: tuple[tuple[str, str], ...] = ()

    @property
    def no_data(self) -> str:
        """Why the total measures nothing (``no data: 3 left out (no delivery data 3)``), or ``""``
        when it measures something: a KPI with nothing to measure says so and why."""
        total = self.total
        empty = (
            (isinstance(total, Summary) and total.count == 0)
            or (isinstance(total, Rate) and total.percent is None)
            or (isinstance(total, SpendShare) and total.share is None)
        )
        if not empty:
            return ""
        left = sum(n for _, n in self.excluded)
        if not left:
            return "no data: nothing to measure"
        reasons = ", ".join(f"{reason} {n}" for reason, n in self.excluded)
        return f"no data: {left} left out ({reasons})"

    def value(self, *group: str) -> Any:
        """The value of one group (the total with no arguments).

        Raises:
            KeyError: no such group.
        """
        if not group:
            return self.total
        for key, value in self.rows:
            if key == group:
                return value
        raise KeyError(group)

    def to_rows(self) -> list[dict[str, object]]:
        """One dict per group (and one for the total, group ``*``): the group's dimensions, then
        the value's fields — ready for ``csv.DictWriter`` or a dataframe."""
        out = []
        for key, value in (*self.rows, (("*",) * len(self.group_by), self.total)):
            row: dict[str, object] = {"kpi": self.name}
            row.update(zip(self.group_by, key, strict=True))
            row.update(value.to_row())
            out.append(row)
        return out

    def to_dataframe(self, library: str = "pandas") -> Any:
        """The rows as a pandas or polars DataFrame (install ``potrack[dataframe]``).

        Raises:
            ImportError: the library is not installed (the message names the extra).
            ValueError: a library other than pandas or polars.
        """
        return to_dataframe(self.to_rows(), library)

    def table(self, locale: str = DEFAULT_LOCALE) -> str:
        """The result as a text table with numbers in ``locale``, then what was left out and the
        notes (the conventions that explain a figure), one line each."""
        rows = [{k: v for k, v in row.items() if k != "kpi"} for row in self.to_rows()]
        lines = [text_table(rows, locale, title=f"{self.name} — {self.definition}")]
        if self.excluded:
            left = ", ".join(
                f"{reason} {babel.numbers.format_decimal(n, locale=locale)}"
                for reason, n in self.excluded
            )
            lines.append(f"left out: {left}")
        lines.extend(f"{name}: {text}" for name, text in self.notes)
        return "\n".join(lines)


def to_dataframe(rows: Sequence[Mapping[str, object]], library: str = "pandas") -> Any:
    """Rows as a pandas or polars DataFrame; the core never imports either on its own.

    Decimals become floats there (dataframes have no exact decimal type in common use); keep the
    rows for exact work.

    Raises:
        ImportError: the library is not installed.
        ValueError: a library other than pandas or polars.
    """
    converted = [
        {k: float(v) if isinstance(v, Decimal) else v for k, v in row.items()} for row in rows
    ]
    if library not in ("pandas", "polars"):
        raise ValueError(f"library must be 'pandas' or 'polars', got {library!r}")
    try:
        module = importlib.import_module(library)
    except ImportError as err:
        raise ImportError(
            f"to_dataframe needs {library}: pip install 'potrack[dataframe]'"
        ) from err
    return module.DataFrame(converted)


def _cell(value: object, locale: str) -> str:
    if value is None:
        return "no data"
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        digits = -exponent if isinstance(exponent, int) and exponent < 0 else 0
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return babel.numbers.format_decimal(value, format=pattern, locale=locale)
    if isinstance(value, int):
        return babel.numbers.format_decimal(value, locale=locale)
    return str(value)


def text_table(
    rows: Sequence[Mapping[str, object]], locale: str = DEFAULT_LOCALE, title: str = ""
) -> str:
    """Rows as an aligned text table, numbers formatted for ``locale`` (None shows *no data*).

    >>> print(text_table([{"supplier": "ACME", "percent": Decimal("85.5")}], "de_DE"))
    supplier | percent
    ---------+--------
    ACME     |    85,5
    """
    if not rows:
        return (title + "\n" if title else "") + "(no rows)"
    columns = list(dict.fromkeys(k for row in rows for k in row))
    cells = [[_cell(row.get(c), locale) for c in columns] for row in rows]
    numeric = [
        all(isinstance(row.get(c), Decimal | int) or row.get(c) is None for row in rows)
        for c in columns
    ]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(columns)]

    def fmt(values: Sequence[str]) -> str:
        return " | ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    lines = [title] if title else []
    lines.append(fmt(columns))
    lines.append("-+-".join("-" * w for w in widths))
    lines.extend(fmt(line) for line in cells)
    return "\n".join(lines)
