"""HTML reports: figures (records -> matplotlib Figure) and rendering (Jinja2), no TensorFlow."""

from gradscope.report.render import render_report, write_report

__all__ = ["render_report", "write_report"]
