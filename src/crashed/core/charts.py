"""ROC, precision-recall and calibration charts: Mermaid ``xychart-beta`` blocks and PNG bytes.

Mermaid's xychart places a line's values evenly along the x-axis (one per band label), so every
curve is first read at evenly spaced x values (``points`` of them, ≤ ~25 for Markdown). GitLab
renders the blocks inside merge request descriptions: no image link to rot (cml#1478). The
series colours are fixed with an init directive so a caption can name them (older Mermaid
versions draw no legend). Values are written in fixed-point notation: the xychart grammar
accepts no exponent.
"""

from __future__ import annotations

import io
import json
import re
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from crashed.core.calibration import Calibration

COLOURS = {
    "blue": "#1f77b4",
    "orange": "#ff7f0e",
    "light blue": "#9ecae1",
    "light orange": "#fdbe85",
    "grey": "#999999",
}
"""Named so a caption can tell the reader which line is which."""
Colour = Literal["blue", "orange", "light blue", "light orange", "grey"]
REFERENCE_LINES = ("chance", "base rate")
_CLIP = 1e-7


class Line(BaseModel):
    """One series: its name and its y value at each of the chart's x values."""

    model_config = ConfigDict(frozen=True)

    name: str
    y: tuple[float, ...]
    colour: Colour = "blue"


class Chart(BaseModel):
    """A line chart on a shared, evenly spaced x grid; JSON-ready and renderer-neutral."""

    model_config = ConfigDict(frozen=True)

    title: str
    x_label: str
    y_label: str
    x: tuple[float, ...]
    lines: tuple[Line, ...]
    y_max: float = 1.0

    def legend(self) -> str:
        """'blue = candidate, orange = production' (the colours of ``to_mermaid``/``to_png``)."""
        return ", ".join(f"{line.colour} = {line.name}" for line in self.lines)


def _prepare(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=np.int64)
    p = np.clip(np.asarray(p, dtype=np.float64), _CLIP, 1 - _CLIP)
    if y.shape != p.shape or not 0 < y.sum() < len(y):
        raise ValueError("curves need labels with both classes and scores of the same length")
    return y, p


def _counts(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative TP and FP at each distinct threshold (descending), starting from (0, 0)."""
    order = np.argsort(-p, kind="stable")
    sorted_p, sorted_y = p[order], y[order]
    last = np.r_[sorted_p[1:] != sorted_p[:-1], True]
    return np.r_[0, np.cumsum(sorted_y)[last]], np.r_[0, np.cumsum(1 - sorted_y)[last]]


def roc_at(y: np.ndarray, p: np.ndarray, fpr_grid: np.ndarray) -> np.ndarray:
    """True-positive rate at each false-positive rate of the grid (linear between thresholds)."""
    y, p = _prepare(y, p)
    tp, fp = _counts(y, p)
    return np.interp(fpr_grid, fp / fp[-1], tp / tp[-1])


def precision_at(y: np.ndarray, p: np.ndarray, recall_grid: np.ndarray) -> np.ndarray:
    """Interpolated precision: the best precision of any threshold reaching each recall."""
    y, p = _prepare(y, p)
    tp, fp = _counts(y, p)
    tp, fp = tp[1:], fp[1:]
    precision = tp / (tp + fp)
    recall = tp / tp[-1]
    best_from = np.maximum.accumulate(precision[::-1])[::-1]  # max precision at recall ≥ r
    idx = np.searchsorted(recall, recall_grid - 1e-12, side="left")
    return best_from[np.minimum(idx, len(best_from) - 1)]


def _grid(points: int) -> np.ndarray:
    if points < 2:
        raise ValueError("a chart needs at least 2 points")
    return np.linspace(0.0, 1.0, points)


def roc_chart(
    y: np.ndarray, candidate: np.ndarray, production: np.ndarray | None = None, points: int = 21
) -> Chart:
    """ROC curves (TPR against FPR) of candidate and production, plus the chance diagonal."""
    grid = _grid(points)
    lines = [Line(name="candidate", y=tuple(roc_at(y, candidate, grid)))]
    if production is not None:
        lines.append(Line(name="production", y=tuple(roc_at(y, production, grid)), colour="orange"))
    lines.append(Line(name="chance", y=tuple(grid), colour="grey"))
    return Chart(
        title="ROC curve",
        x_label="false positive rate",
        y_label="true positive rate",
        x=tuple(grid),
        lines=tuple(lines),
    )


def pr_chart(
    y: np.ndarray, candidate: np.ndarray, production: np.ndarray | None = None, points: int = 21
) -> Chart:
    """Precision-recall curves of candidate and production, plus the base rate."""
    grid = _grid(points)
    lines = [Line(name="candidate", y=tuple(precision_at(y, candidate, grid)))]
    if production is not None:
        lines.append(
            Line(name="production", y=tuple(precision_at(y, production, grid)), colour="orange")
        )
    base = float(np.mean(np.asarray(y)))
    lines.append(Line(name="base rate", y=(base,) * len(grid), colour="grey"))
    return Chart(
        title="Precision-recall curve",
        x_label="recall",
        y_label="precision",
        x=tuple(grid),
        lines=tuple(lines),
    )


def calibration_chart(candidate: Calibration, production: Calibration | None = None) -> Chart:
    """Observed rate and mean predicted probability per decile of predicted risk."""
    lines = [
        Line(name="candidate observed", y=tuple(b.observed_rate for b in candidate.bins)),
        Line(
            name="candidate predicted",
            y=tuple(b.mean_predicted for b in candidate.bins),
            colour="light blue",
        ),
    ]
    if production is not None and len(production.bins) == len(candidate.bins):
        lines += [
            Line(
                name="production observed",
                y=tuple(b.observed_rate for b in production.bins),
                colour="orange",
            ),
            Line(
                name="production predicted",
                y=tuple(b.mean_predicted for b in production.bins),
                colour="light orange",
            ),
        ]
    top = max((v for line in lines for v in line.y), default=1.0)
    return Chart(
        title="Calibration by decile of predicted risk",
        x_label="decile",
        y_label="rate",
        x=tuple(float(b.bin) for b in candidate.bins),
        lines=tuple(lines),
        y_max=min(1.0, float(np.ceil(top * 20) / 20) or 0.05),
    )


def _labels(xs: tuple[float, ...]) -> str:
    """Quoted x labels: integers as such (deciles), otherwise two decimals for every label."""
    whole = all(float(x).is_integer() for x in xs)
    return ", ".join(f'"{x:g}"' if whole else f'"{x:.2f}"' for x in xs)


def to_mermaid(chart: Chart) -> str:
    """A fenced ```mermaid block (xychart-beta): band x-axis of quoted numbers, one line each."""
    palette = ", ".join(COLOURS[line.colour] for line in chart.lines)
    init = json.dumps({"themeVariables": {"xyChart": {"plotColorPalette": palette}}})
    labels = _labels(chart.x)
    out = [
        "```mermaid",
        f"%%{{init: {init}}}%%",
        "xychart-beta",
        f'    title "{_quote(chart.title)}"',
        f'    x-axis "{_quote(chart.x_label)}" [{labels}]',
        f'    y-axis "{_quote(chart.y_label)}" 0 --> {chart.y_max:.2f}',
    ]
    for line in chart.lines:
        values = ", ".join(f"{min(max(v, 0.0), 1.0):.3f}" for v in line.y)
        out.append(f'    line "{_quote(line.name)}" [{values}]')
    out.append("```")
    return "\n".join(out)


def _quote(text: str) -> str:
    return text.replace('"', "'")


_XY = re.compile(r'^\s*x-axis\s+"([^"]*)"\s+\[([^\]]*)\]\s*$')
_YY = re.compile(r'^\s*y-axis\s+"([^"]*)"\s+([0-9.]+)\s+-->\s+([0-9.]+)\s*$')
_LINE = re.compile(r'^\s*line\s+"([^"]*)"\s+\[([^\]]*)\]\s*$')
_TITLE = re.compile(r'^\s*title\s+"([^"]*)"\s*$')
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d+)?|\.\d+)$")  # xychart's NUMBER_WITH_DECIMAL


def parse_mermaid(block: str) -> Chart:
    """Parse a block written by ``to_mermaid`` back (structure checks for tests and reports).

    Raises ValueError when a statement is malformed, a number is not in the grammar's
    fixed-point form, or a line's length differs from the x-axis.
    """
    lines = [line for line in block.strip().splitlines() if line.strip()]
    if lines[:1] != ["```mermaid"] or lines[-1:] != ["```"]:
        raise ValueError("not a fenced mermaid block")
    body = [line for line in lines[1:-1] if not line.lstrip().startswith("%%")]
    colours = _palette(lines[1:-1])
    if not body or body[0].strip() != "xychart-beta":
        raise ValueError("not an xychart-beta block")
    title = x_label = y_label = None
    x: list[float] = []
    y_max = None
    series: list[Line] = []
    for statement in body[1:]:
        if m := _TITLE.match(statement):
            title = m.group(1)
        elif m := _XY.match(statement):
            x_label, x = m.group(1), _numbers(m.group(2).replace('"', ""))
        elif m := _YY.match(statement):
            y_label, y_max = m.group(1), float(m.group(3))
        elif m := _LINE.match(statement):
            colour = colours[len(series)] if len(series) < len(colours) else "blue"
            series.append(Line(name=m.group(1), y=tuple(_numbers(m.group(2))), colour=colour))
        else:
            raise ValueError(f"unexpected statement: {statement.strip()!r}")
    if title is None or x_label is None or y_label is None or y_max is None or not series:
        raise ValueError("title, x-axis, y-axis and at least one line are required")
    for line in series:
        if len(line.y) != len(x):
            raise ValueError(f"line {line.name!r} has {len(line.y)} values for {len(x)} x labels")
    return Chart(
        title=title, x_label=x_label, y_label=y_label, x=tuple(x), lines=tuple(series), y_max=y_max
    )


def _palette(lines: list[str]) -> list[str]:
    """Colour names of the init directive's xyChart palette (hex codes not ours map to blue)."""
    names = {hex_code: name for name, hex_code in COLOURS.items()}
    for line in lines:
        text = line.strip()
        if text.startswith("%%{init:") and text.endswith("}%%"):
            config = json.loads(text[len("%%{init:") : -len("}%%")])
            palette = config["themeVariables"]["xyChart"]["plotColorPalette"]
            return [names.get(c.strip(), "blue") for c in palette.split(",")]
    return []


def _numbers(text: str) -> list[float]:
    items = [item.strip() for item in text.split(",")]
    bad = [item for item in items if not _NUMBER.match(item)]
    if bad:
        raise ValueError(f"not a plain decimal number: {bad[0]!r}")
    return [float(item) for item in items]


def to_png(chart: Chart, dpi: int = 100) -> bytes:
    """The same chart as PNG bytes (matplotlib, Agg backend; imported here, not at start-up)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4.5), dpi=dpi)
    FigureCanvasAgg(figure)  # no pyplot, no global backend switch: safe inside a server
    axes = figure.subplots()
    for line in chart.lines:
        style = ":" if line.name in REFERENCE_LINES else "--" if "predicted" in line.name else "-"
        axes.plot(chart.x, line.y, style, color=COLOURS[line.colour], label=line.name)
    axes.set(title=chart.title, xlabel=chart.x_label, ylabel=chart.y_label)
    axes.set_ylim(0, chart.y_max)
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
