"""Vendor scorecards and before/after comparisons."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import attrs

from potrack._metrics.facts import (
    _CENT,
    _HUNDRED,
    _ZERO,
)
from potrack._metrics.results import (
    KpiResult,
    Rate,
    Summary,
    text_table,
)
from potrack.exceptions import Problem, ValidationError
from potrack.money import DEFAULT_LOCALE

# -- vendor scorecard -------------------------------------------------------------------------------------

DEFAULT_BANDS = (
    (Decimal(0), "Very Poor"),
    (Decimal(30), "Poor"),
    (Decimal(50), "Average"),
    (Decimal(80), "Excellent"),
)


@attrs.frozen
class SupplierScore:
    """One supplier's score for one period, with the evidence behind it.

    ``score`` is None (standing ``no data``) when no weighted criterion had a value; ``missing``
    names the weighted criteria without a value (scored per the card's ``missing`` rule); ``n``
    is the smallest sample size behind the criteria given as :class:`Rate` s (None: unknown) —
    a 100 % on-time rate over 2 deliveries is weak evidence, and the card says so.
    """

    supplier: str
    period: str
    score: Decimal | None
    standing: str
    n: int | None = None
    missing: tuple[str, ...] = ()


@attrs.frozen
class ScorecardResult:
    """Each supplier's weighted score (0–100, two decimals) and standing, per period."""

    scores: tuple[SupplierScore, ...]

    @property
    def rows(self) -> tuple[tuple[str, str, Decimal | None, str], ...]:
        """(supplier, period, score, standing) — the scores without their evidence."""
        return tuple((r.supplier, r.period, r.score, r.standing) for r in self.scores)

    def to_rows(self) -> list[dict[str, object]]:
        return [
            {
                "supplier": r.supplier,
                "period": r.period,
                "score": r.score,
                "standing": r.standing,
                "n": r.n,
                "missing": ", ".join(r.missing),
            }
            for r in self.scores
        ]

    def trend(self, supplier: str) -> tuple[tuple[str, Decimal | None], ...]:
        """A supplier's score per period, oldest first."""
        return tuple((r.period, r.score) for r in self.scores if r.supplier == supplier)

    def table(self, locale: str = DEFAULT_LOCALE) -> str:
        return text_table(self.to_rows(), locale, title="vendor scorecard")


Criterion = Decimal | Rate | None
"""A criterion's value: a score from 0 to 100, a :class:`Rate` (its percent, and its
denominator as the sample size), or None (no data)."""

SCORECARD_MISSING = ("zero", "reweight")


@attrs.frozen
class Scorecard:
    """Weighted criteria mapped to standings.

    ``weights`` per criterion must sum to exactly 100; ``bands`` are (lowest score, standing),
    ascending from 0.  Criterion values are scores from 0 to 100 (an on-time rate, a match rate,
    a quality score the host computes), :class:`Rate` s or None.  A supplier lacking a criterion
    (absent, None, or a rate with no data) has it listed in ``missing`` and, by ``missing=``,
    scores 0 on it (``zero``, the default: a supplier earns its score) or has the other weights
    scaled up to 100 (``reweight``).  A supplier with no criterion at all has no score.

    >>> card = Scorecard({"on_time": Decimal(60), "quality": Decimal(40)})
    >>> card.score({"ACME": {"on_time": Decimal(90), "quality": Decimal(70)}}).rows
    (('ACME', '', Decimal('82.00'), 'Excellent'),)
    >>> card.score({"ACME": {"on_time": Decimal(90)}}).scores[0].missing
    ('quality',)

    Example (``reweight``): on-time 90 with weight 60, quality missing — 90 × 60 ÷ 60 = 90.00;
    with ``zero`` it is 90 × 60 ÷ 100 = 54.00.

    Raises:
        ValidationError: weights not summing to 100, a negative weight, bands not starting at 0
            or not ascending.
    """

    weights: Mapping[str, Decimal]
    bands: tuple[tuple[Decimal, str], ...] = DEFAULT_BANDS

    def __attrs_post_init__(self) -> None:
        problems = []
        total = sum(self.weights.values(), _ZERO)
        if total != _HUNDRED:
            problems.append(Problem("weights", f"must sum to 100, they sum to {total}"))
        problems += [
            Problem(f"weights.{k}", f"must not be negative, got {w}")
            for k, w in self.weights.items()
            if w < 0
        ]
        lows = [low for low, _ in self.bands]
        if not lows or lows[0] != 0 or lows != sorted(set(lows)):
            problems.append(Problem("bands", "must start at 0 and ascend strictly"))
        if problems:
            raise ValidationError("Scorecard", problems)

    def standing(self, score: Decimal | None) -> str:
        if score is None:
            return "no data"
        found = self.bands[0][1]
        for low, name in self.bands:
            if score >= low:
                found = name
        return found

    def score(
        self,
        values: Mapping[str, Mapping[str, Criterion]],
        period: str = "",
        *,
        missing: str = "zero",
    ) -> ScorecardResult:
        """Scores for one period: ``values`` maps supplier → criterion → 0–100, Rate or None.

        Raises:
            ValidationError: a value outside 0–100, a criterion without a weight, an unknown
                ``missing`` rule.
        """
        problems = []
        if missing not in SCORECARD_MISSING:
            problems.append(Problem("missing", f"'zero' or 'reweight', got {missing!r}"))
        rows = []
        for supplier in sorted(values):
            criteria = values[supplier]
            given: dict[str, Decimal] = {}
            sizes: list[int] = []
            for name, raw in criteria.items():
                value = raw.percent if isinstance(raw, Rate) else raw
                if isinstance(raw, Rate):
                    sizes.append(int(raw.denominator))
                if name not in self.weights:
                    problems.append(Problem(f"{supplier}.{name}", "criterion has no weight"))
                elif value is not None and not 0 <= value <= 100:
                    problems.append(Problem(f"{supplier}.{name}", f"{value} is outside 0–100"))
                elif value is not None:
                    given[name] = value
            absent = tuple(name for name in self.weights if name not in given)
            weight = sum((w for name, w in self.weights.items() if name in given), _ZERO)
            score: Decimal | None = None
            if given and weight:
                points = sum((given[name] * self.weights[name] for name in given), _ZERO)
                scale = weight if missing == "reweight" else _HUNDRED
                score = (points / scale).quantize(_CENT, ROUND_HALF_EVEN)
            rows.append(
                SupplierScore(
                    supplier,
                    period,
                    score,
                    self.standing(score),
                    min(sizes) if sizes else None,
                    absent,
                )
            )
        if problems:
            raise ValidationError("Scorecard.score", problems)
        return ScorecardResult(tuple(rows))

    def over_periods(
        self,
        values: Mapping[str, Mapping[str, Mapping[str, Criterion]]],
        *,
        missing: str = "zero",
    ) -> ScorecardResult:
        """Scores per period (``values``: period → supplier → criterion → value), for trends."""
        rows: list[SupplierScore] = []
        for period in sorted(values):
            rows.extend(self.score(values[period], period, missing=missing).scores)
        rows.sort(key=lambda r: (r.supplier, r.period))
        return ScorecardResult(tuple(rows))


# -- comparison -------------------------------------------------------------------------------------------


@attrs.frozen
class Comparison:
    """A KPI before and after (the article's baseline): per group, the headline number of each
    and the change — percentage points for rates, the same unit for medians and amounts."""

    name: str
    measure: str
    group_by: tuple[str, ...]
    rows: tuple[tuple[tuple[str, ...], Decimal | None, Decimal | None, Decimal | None], ...]

    def to_rows(self) -> list[dict[str, object]]:
        out = []
        for key, before, after, change in self.rows:
            row: dict[str, object] = {"kpi": self.name}
            row.update(zip(self.group_by, key, strict=True))
            row.update(
                {f"{self.measure} before": before, f"{self.measure} after": after, "change": change}
            )
            out.append(row)
        return out

    def table(self, locale: str = DEFAULT_LOCALE) -> str:
        return text_table(self.to_rows(), locale, title=f"{self.name}: before → after")


def _headline(value: Any) -> tuple[str, Decimal | None]:
    if isinstance(value, Summary):
        return "median", value.median
    if isinstance(value, Rate):
        return "percent", value.percent
    return "amount", value.amount


def compare(before: KpiResult, after: KpiResult) -> Comparison:
    """Two results of the same KPI side by side, per group and overall (``*``).

    Raises:
        ValidationError: the results are of different KPIs or groupings.
    """
    if before.name != after.name or before.group_by != after.group_by:
        raise ValidationError(
            "compare",
            [
                Problem(
                    "results",
                    f"{before.name!r} by {before.group_by} vs {after.name!r} by {after.group_by}",
                )
            ],
        )
    a = dict(before.rows)
    b = dict(after.rows)
    measure, _ = _headline(before.total)
    rows = []
    for key in sorted(set(a) | set(b)):
        x = _headline(a[key])[1] if key in a else None
        y = _headline(b[key])[1] if key in b else None
        rows.append((key, x, y, None if x is None or y is None else y - x))
    x, y = _headline(before.total)[1], _headline(after.total)[1]
    rows.append((("*",) * len(before.group_by), x, y, None if x is None or y is None else y - x))
    return Comparison(before.name, measure, before.group_by, tuple(rows))
