"""HTML and text reports of saved runs: compute one view per run, structure, draw. No TensorFlow."""

from gradscope.report.render import render_report, write_report
from gradscope.report.view import RunView, views_of

__all__ = ["render_report", "write_report", "RunView", "views_of"]
