"""Charts: curves read at even x, Mermaid xychart blocks that parse, PNG bytes."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.metrics import precision_recall_curve, roc_curve

from crashed.core.calibration import calibration
from crashed.core.charts import (
    Chart,
    Line,
    calibration_chart,
    parse_mermaid,
    pr_chart,
    precision_at,
    roc_at,
    roc_chart,
    to_mermaid,
    to_png,
)


@pytest.fixture(scope="module")
def scored() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = (rng.random(3000) < 0.04).astype(int)
    signal = 1.5 * y + rng.normal(0, 1, len(y))
    cand = 1 / (1 + np.exp(-(signal - 3)))
    prod = 1 / (1 + np.exp(-(signal + rng.normal(0, 1, len(y)) - 3)))
    return y, cand, prod


def test_roc_at_interpolates_sklearns_curve(scored) -> None:
    y, cand, _ = scored
    fpr, tpr, _ = roc_curve(y, cand)
    grid = np.linspace(0, 1, 21)
    assert np.allclose(roc_at(y, cand, grid), np.interp(grid, fpr, tpr))
    assert roc_at(y, cand, np.array([0.0, 1.0]))[1] == 1.0


def test_precision_at_is_the_best_precision_reaching_each_recall(scored) -> None:
    y, cand, _ = scored
    precision, recall, _ = precision_recall_curve(y, cand)
    grid = np.linspace(0, 1, 11)
    expected = [precision[recall >= r - 1e-12].max() for r in grid]
    assert np.allclose(precision_at(y, cand, grid), expected)


def test_roc_and_pr_charts_have_two_models_and_a_reference_line(scored) -> None:
    y, cand, prod = scored
    roc = roc_chart(y, cand, prod, points=21)
    assert [line.name for line in roc.lines] == ["candidate", "production", "chance"]
    assert roc.x[0] == 0.0 and roc.x[-1] == 1.0 and len(roc.x) == 21
    assert roc.lines[0].y[-1] == 1.0
    assert np.mean(roc.lines[0].y) > np.mean(roc.lines[1].y) > 0.5  # candidate is better
    pr = pr_chart(y, cand, None, points=11)
    assert [line.name for line in pr.lines] == ["candidate", "base rate"]
    assert pr.lines[1].y == (pytest.approx(y.mean()),) * 11
    assert roc.legend() == "blue = candidate, orange = production, grey = chance"


def test_mermaid_blocks_parse_back_with_equal_lengths_and_values_in_range(scored) -> None:
    y, cand, prod = scored
    charts = [
        roc_chart(y, cand, prod),
        pr_chart(y, cand, prod),
        calibration_chart(calibration(y, cand), calibration(y, prod)),
    ]
    for chart in charts:
        block = to_mermaid(chart)
        assert block.startswith("```mermaid\n%%{init: ") and block.endswith("\n```")
        assert "xychart-beta" in block.splitlines()[2]
        parsed = parse_mermaid(block)
        assert parsed.title == chart.title and parsed.x_label == chart.x_label
        assert len(parsed.x) == len(chart.x) <= 25
        assert [(line.name, line.colour) for line in parsed.lines] == [
            (line.name, line.colour) for line in chart.lines
        ]
        assert len({line.colour for line in chart.lines}) == len(chart.lines)
        for original, line in zip(chart.lines, parsed.lines, strict=True):
            assert len(line.y) == len(parsed.x)
            assert all(0.0 <= v <= 1.0 for v in line.y)
            assert line.y == pytest.approx(original.y, abs=5e-4)
        assert 0 < parsed.y_max <= 1.0
    decile = parse_mermaid(to_mermaid(charts[2]))
    assert decile.x == tuple(float(i) for i in range(1, 11))
    assert len(decile.lines) == 4 and decile.y_max < 1.0  # zoomed to the rates


def test_tiny_values_are_written_without_exponent() -> None:
    chart = Chart(
        title="t",
        x_label="x",
        y_label="y",
        x=(0.0, 0.5, 1.0),
        lines=(Line(name="a", y=(1e-9, 0.25, 1.0000001)),),
    )
    block = to_mermaid(chart)
    assert "e-" not in block.split("line", 1)[1]
    line = re.search(r'line "a" \[(.*)\]', block).group(1)
    assert line == "0.000, 0.250, 1.000"
    assert 'x-axis "x" ["0.00", "0.50", "1.00"]' in block


def test_parse_rejects_malformed_blocks() -> None:
    good = to_mermaid(
        Chart(title="t", x_label="x", y_label="y", x=(0.0, 1.0), lines=(Line(name="a", y=(0, 1)),))
    )
    with pytest.raises(ValueError, match="2 x labels"):
        parse_mermaid(good.replace("[0.000, 1.000]", "[0.000, 0.500, 1.000]"))
    with pytest.raises(ValueError, match="plain decimal"):
        parse_mermaid(good.replace("[0.000, 1.000]", "[0.000, 1e-3]"))
    with pytest.raises(ValueError, match="unexpected statement"):
        parse_mermaid(good.replace("xychart-beta\n", "xychart-beta\n    pie\n"))
    with pytest.raises(ValueError, match="fenced"):
        parse_mermaid("xychart-beta")


def test_curves_need_both_classes() -> None:
    with pytest.raises(ValueError, match="both classes"):
        roc_chart(np.zeros(10, dtype=int), np.linspace(0, 1, 10))


def test_png_bytes(scored) -> None:
    y, cand, prod = scored
    png = to_png(roc_chart(y, cand, prod, points=101))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (600, 450)
