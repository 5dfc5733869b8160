"""Every figure of the report, on the hard cases, laid out on matplotlib's own renderer: no two
pieces of text overlap and none falls outside its figure (tests/report_cases.py has the cases)."""

import itertools

import numpy as np
import pytest
from matplotlib.text import Text
from report_cases import CASES

from gradscope.report.figures import FIGURES
from gradscope.report.style import run_colors
from gradscope.report.view import views_of


def text_boxes(fig):
    """(text, bbox) of every text of ``fig`` as drawn (display pixels): each visible, non-empty
    text once, tick labels only of the ticks drawn (inside the axis's view)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    tick_labels, drawn = set(), []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                tick_labels.update((id(tick.label1), id(tick.label2)))
            if ax.get_visible() and axis.get_visible():
                drawn += [label for tick in axis._update_ticks() for label in (tick.label1, tick.label2)]
    seen, boxes = set(), []
    texts = [t for t in fig.findobj(Text) if id(t) not in tick_labels] + drawn
    for text in texts:
        if id(text) in seen or not text.get_visible() or not text.get_text().strip():
            continue
        seen.add(id(text))
        if text.axes is not None and not text.axes.get_visible():
            continue
        boxes.append((text.get_text(), text.get_window_extent(renderer)))
    return boxes


def layout_problems(fig, tolerance=1.0):
    """Pairs of overlapping texts and texts outside the figure, in words ([] when the layout is clean)."""
    width, height = fig.canvas.get_width_height()
    problems = []
    boxes = text_boxes(fig)
    for label, box in boxes:
        if box.x0 < -tolerance or box.y0 < -tolerance or box.x1 > width + tolerance or box.y1 > height + tolerance:
            problems.append(f"outside the figure: {label!r} at {np.round(box.extents, 1).tolist()} "
                            f"(figure {width}x{height})")
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        overlap_x = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
        overlap_y = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
        if overlap_x > tolerance and overlap_y > tolerance:
            problems.append(f"overlap: {a!r} and {b!r}")
    return problems


def test_checker_sees_overlap_and_overflow():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.text(0.5, 0.5, "one piece of text", transform=ax.transAxes)
    ax.text(0.52, 0.5, "another piece of text", transform=ax.transAxes)
    ax.text(0.95, 0.1, "runs off the right edge of the figure", transform=ax.transAxes)
    problems = layout_problems(fig)
    plt.close(fig)
    assert any(p.startswith("overlap: 'one piece") for p in problems), problems
    assert any(p.startswith("outside the figure: 'runs off") for p in problems), problems


@pytest.mark.parametrize("case", sorted(CASES))
def test_figures_lay_out_cleanly(case):
    import matplotlib.pyplot as plt

    views = views_of(CASES[case]())
    colors = run_colors(views)
    problems, drawn = [], 0
    for spec in FIGURES:
        fig = spec.draw(views, colors)
        if fig is None:
            continue
        drawn += 1
        problems += [f"{spec.id}: {p}" for p in layout_problems(fig)]
        plt.close(fig)
    assert drawn >= 6
    assert not problems, "\n".join(problems[:20])
