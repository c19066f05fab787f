"""Numbers for the SVG charts the templates draw: score histograms and training curves. Only
coordinates are computed here; the markup is in the templates."""

from __future__ import annotations

from dataclasses import dataclass

WIDTH, HEIGHT = 480, 200
PAD = 36


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # the bin's range
    count: int


@dataclass(frozen=True)
class Series:
    name: str
    points: str  # "x1,y1 x2,y2 ..." for an SVG polyline
    color: str
    last: float


@dataclass(frozen=True)
class Chart:
    title: str
    width: int
    height: int
    pad: int
    y_max: float
    x_max: float
    bars: tuple[Bar, ...] = ()
    series: tuple[Series, ...] = ()


# Okabe-Ito, in an order that keeps neighbouring lines apart.
SERIES_COLORS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#d55e00", "#56b4e9", "#000000")


def histogram(scores: list[float], max_score: float, bins: int = 10) -> Chart:
    """Counts of scores in `bins` equal ranges of 0..max_score (the top range includes max_score)."""
    max_score = max_score or 1.0
    counts = [0] * bins
    for s in scores:
        counts[min(bins - 1, max(0, int(s / max_score * bins)))] += 1
    top = max(counts) or 1
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    step = inner_w / bins
    bars = tuple(Bar(PAD + k * step + 1, PAD + inner_h * (1 - c / top), step - 2, inner_h * c / top,
                     f"{max_score * k / bins:g}–{max_score * (k + 1) / bins:g}", c) for k, c in enumerate(counts))
    return Chart("Scores", WIDTH, HEIGHT, PAD, float(top), max_score, bars=bars)


def curves(history: tuple[tuple[str, tuple[float, ...]], ...], x_column: str = "epoch") -> tuple[Chart, ...]:
    """Training curves, losses and scores apart (their scales differ): one chart per group that has
    columns, a line per numeric history column, against the epoch column or the row number."""
    columns = dict(history)
    xs = columns.pop(x_column, None)
    losses = {name: values for name, values in columns.items() if "loss" in name.lower()}
    scores = {name: values for name, values in columns.items() if name not in losses}
    # Scores (Dice, IoU, accuracy) keep a 0..1 axis when they fit it, so 0.9 looks like 0.9.
    charts = [("Losses", losses, 0.0), ("Scores", scores, 1.0)]
    return tuple(_line_chart(title, group, xs, y_top) for title, group, y_top in charts if group)


def _line_chart(title: str, columns: dict[str, tuple[float, ...]], xs: tuple[float, ...] | None,
                y_top: float) -> Chart:
    """One chart; the y axis runs from 0 to `y_top` or to the largest value, whichever is higher."""
    n = max(len(v) for v in columns.values())
    xs = xs or tuple(range(1, n + 1))
    y_max = max(y_top, *(max(v) for v in columns.values())) or 1.0
    x_lo, x_hi = min(xs), max(xs)
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD

    def px(x: float, y: float) -> str:
        fx = (x - x_lo) / (x_hi - x_lo) if x_hi > x_lo else 0.5
        return f"{PAD + fx * inner_w:.1f},{PAD + inner_h * (1 - max(0.0, y) / y_max):.1f}"

    series = tuple(Series(name, " ".join(px(x, y) for x, y in zip(xs, values)), SERIES_COLORS[k % len(SERIES_COLORS)],
                          values[-1]) for k, (name, values) in enumerate(columns.items()))
    return Chart(title, WIDTH, HEIGHT, PAD, y_max, float(x_hi), series=series)
