"""Server-rendered SVG charts for staff at a desk (issue #17 pt 9): the geometry of a bar
chart, a line chart and a gauge, computed here from the figures (int or Decimal, never float
until the coordinates) and drawn by the macros of templates/_charts.html as inline <svg> (no
script, no style attribute: the CSP forbids them; app.css colours the classes), each with a
table of the same figures for screen readers. No Flask.

The drawing is a viewBox of WIDTH × HEIGHT user units, scaled to the column by CSS. The y
axis runs from a round number at or below min(0, the least value) to a round number at or
above the greatest (steps of 1, 2 or 5 × 10ⁿ, about four of them; whole steps for whole
numbers); the points share the width in equal slots (a bar in the middle 70 % of its slot, a
line through the slots' centres); one label in every `ceil(n / LABELS)` slots on the x axis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

WIDTH, HEIGHT = 600, 220
# The plot area inside the viewBox: the y axis's labels at the left, its title above, the x
# axis's labels and title below.
LEFT, RIGHT, TOP, BOTTOM = 48, WIDTH - 8, 24, HEIGHT - 40
LABELS = 6  # at most this many labels on the x axis
TICKS = 4  # about this many steps on the y axis
BAR = Decimal("0.7")  # a bar's share of its slot

Number = int | Decimal


@dataclass(frozen=True)
class Point:
    key: Any  # what the point is labelled with: a date, a week's first day, a name
    value: Number


@dataclass(frozen=True)
class Tick:
    value: Number
    y: float


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    point: Point


@dataclass(frozen=True)
class Label:
    x: float
    point: Point


@dataclass(frozen=True)
class Chart:
    kind: str  # "bars" or "line"
    points: tuple[Point, ...]
    ticks: tuple[Tick, ...] = ()
    bars: tuple[Bar, ...] = ()
    line: str = ""  # the polyline's points, "x,y x,y …"
    labels: tuple[Label, ...] = ()
    zero: float = BOTTOM  # the y of value 0 (the x axis)
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = RIGHT
    top: int = TOP
    bottom: int = BOTTOM

    @property
    def empty(self) -> bool:
        return not self.points


@dataclass(frozen=True)
class Gauge:
    """One figure on a horizontal scale from 0 (the days left of a licence), with a mark (the
    day the renewal quote starts showing)."""

    value: Number
    bar: float  # the bar's length (0 when the value is 0 or less)
    mark: float | None  # the mark's x
    mark_value: Number | None
    ticks: tuple[Tick, ...]  # here `y` is the tick's x
    width: int = WIDTH
    height: int = 64
    left: int = 8
    right: int = WIDTH - 16
    top: int = 8
    bottom: int = 36


def at(value: float) -> float | int:
    """A coordinate as the SVG gets it: one decimal at most, a whole number without one."""
    rounded = round(value, 1)
    return int(rounded) if rounded == int(rounded) else rounded


def step_for(span: Decimal, whole: bool) -> Decimal:
    """The round step (1, 2 or 5 × 10ⁿ) that divides `span` into at most TICKS parts."""
    raw = span / TICKS
    power = Decimal(1).scaleb(raw.adjusted())
    for factor in (1, 2, 5, 10):
        step = power * factor
        if step >= raw:
            break
    if whole:
        step = max(step, Decimal(1))
    return step.normalize()


def scale(values: Sequence[Number]) -> tuple[Decimal, Decimal, Decimal]:
    """(low, high, step) of the y axis for these values."""
    whole = all(isinstance(v, int) for v in values)
    least = min(Decimal(0), *(Decimal(v) for v in values))
    most = max(Decimal(0), *(Decimal(v) for v in values))
    if most == least:
        most = least + 1
    step = step_for(most - least, whole)
    low = (least / step).to_integral_value(ROUND_FLOOR) * step
    high = (most / step).to_integral_value(ROUND_CEILING) * step
    return low, high, step


def _number(value: Decimal, whole: bool) -> Number:
    return int(value) if whole else value.normalize()


def _axis(points: Sequence[Point]) -> tuple[tuple[Tick, ...], Any, float]:
    values = [p.value for p in points]
    whole = all(isinstance(v, int) for v in values)
    low, high, step = scale(values)
    span = high - low

    def y(value: Number) -> float | int:
        return at(BOTTOM - float((Decimal(value) - low) / span) * (BOTTOM - TOP))

    count = int((span / step).to_integral_value())
    ticks = tuple(Tick(_number(low + step * i, whole), y(low + step * i)) for i in range(count + 1))
    return ticks, y, y(0)


def _slots(points: Sequence[Point]) -> tuple[float, tuple[Label, ...]]:
    slot = (RIGHT - LEFT) / len(points)
    every = math.ceil(len(points) / LABELS)
    labels = tuple(
        Label(at(LEFT + (i + 0.5) * slot), p) for i, p in enumerate(points) if i % every == 0
    )
    return slot, labels


def bars(points: Sequence[Point]) -> Chart:
    """A bar per point (stamps per day, renewals per week)."""
    points = tuple(points)
    if not points:
        return Chart("bars", points)
    ticks, y, zero = _axis(points)
    slot, labels = _slots(points)
    width = slot * float(BAR)
    drawn = []
    for i, p in enumerate(points):
        top = y(max(p.value, 0))
        x = LEFT + i * slot + (slot - width) / 2
        drawn.append(Bar(at(x), top, at(width), at(y(min(p.value, 0)) - top), p))
    return Chart("bars", points, ticks, tuple(drawn), "", labels, zero)


def line(points: Sequence[Point]) -> Chart:
    """A line through the points (the credits' balance at the end of each day)."""
    points = tuple(points)
    if not points:
        return Chart("line", points)
    ticks, y, zero = _axis(points)
    slot, labels = _slots(points)
    path = " ".join(f"{at(LEFT + (i + 0.5) * slot)},{y(p.value)}" for i, p in enumerate(points))
    return Chart("line", points, ticks, (), path, labels, zero)


def gauge(value: Number, least_top: Number, mark: Number | None = None) -> Gauge:
    """`value` on a scale from 0 to a round number at or above both it and `least_top`."""
    _, high, step = scale([max(value, 0), least_top])
    left, right = 8, WIDTH - 16

    def x(v: Number) -> float | int:
        return at(left + float(Decimal(v) / high) * (right - left))

    whole = isinstance(value, int) and isinstance(least_top, int)
    count = int((high / step).to_integral_value())
    ticks = tuple(Tick(_number(step * i, whole), x(step * i)) for i in range(count + 1))
    return Gauge(
        value=value,
        bar=at(x(max(value, 0)) - left),
        mark=None if mark is None else x(mark),
        mark_value=mark,
        ticks=ticks,
    )
