"""Figures and their one-line summaries: ``name value unit ratio=<hub/baseline>``."""

from __future__ import annotations

import math
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Figure", "Report", "percentile"]


@dataclass
class Figure:
    """One reported figure: the hub's value and its ratio to the baseline measured in the same run.

    ``samples`` holds ``(hub, baseline)`` per repetition; the value is the median of the hub's
    values, the ratio the median of the per-repetition ratios (each pair measured back to back).
    """

    name: str
    unit: str
    baseline_name: str
    samples: list[tuple[float, float]] = field(default_factory=list)
    note: str = ""

    def add(self, hub: float, baseline: float) -> None:
        self.samples.append((hub, baseline))

    @property
    def value(self) -> float:
        return statistics.median(h for h, _ in self.samples)

    @property
    def baseline(self) -> float:
        return statistics.median(b for _, b in self.samples)

    @property
    def ratio(self) -> float:
        return statistics.median(h / b if b else float("nan") for h, b in self.samples)

    def line(self) -> str:
        return f"{self.name} {_number(self.value)} {self.unit} ratio={self.ratio:.2f}"

    def detail(self) -> str:
        runs = len(self.samples)
        spread = ""
        if runs > 1:
            spread = " (ratios " + ", ".join(f"{h / b:.2f}" if b else "nan" for h, b in self.samples) + ")"
        note = f"; {self.note}" if self.note else ""
        return (
            f"# {self.name}: hub {_number(self.value)} {self.unit}, {self.baseline_name} "
            f"{_number(self.baseline)} {self.unit}, median of {runs}{spread}{note}"
        )


def _number(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100) by nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class Report:
    """Collects figures; prints each summary line on stdout and the details on stderr."""

    figures: list[Figure] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def publish(self, figure: Figure) -> None:
        if not figure.samples:
            return
        self.figures.append(figure)
        print(figure.detail(), file=sys.stderr, flush=True)
        print(figure.line(), flush=True)

    def summary(self) -> str:
        return "\n".join(f.line() for f in self.figures)
