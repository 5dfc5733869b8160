"""The report inline in a notebook: ``gradscope.show(path_or_run)``.

The same content as the HTML file ``gradscope report`` writes (summary, diagnosis, trials,
figures), as one block whose stylesheet is scoped to it (:mod:`gradscope.display`): nothing of
the notebook around it is restyled. Outside a notebook, ``show`` prints the report's text.
"""

from __future__ import annotations

from pathlib import Path


class InlineReport:
    """A rendered report that Jupyter shows inline (``_repr_html_``); ``html`` holds it.

    Args:
        html: the report as one block (``render_report(..., page=False)``).
        runs: the runs it shows.
    """

    def __init__(self, html: str, runs):
        self.html = html
        self.runs = list(runs)

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return f"<gradscope report of {len(self.runs)} run(s): {', '.join(r.name for r in self.runs[:4])}" + \
            (", ..." if len(self.runs) > 4 else "") + ">"


def _runs_of(sources) -> tuple[list, dict | None]:
    """The runs of ``sources``, and the paper reproduction a single folder holds (or None)."""
    from gradscope.errors import GradscopeError
    from gradscope.experiments.papers import load_paper
    from gradscope.storage import find_runs

    runs, folders = [], []
    for source in sources:
        if isinstance(source, (str, Path)):
            found = find_runs([source])
            if not found:
                raise GradscopeError(f"no readable run in {source}: pass a run folder (with run.json) or a folder of them")
            runs += found
            folders.append(source)
        else:
            runs.append(source)
    if not runs:
        raise GradscopeError("show() needs a run folder, a folder of runs, or a run from load_run()")
    return runs, (load_paper(folders[0]) if len(sources) == 1 and folders else None)


def report_of(*sources, title: str | None = None) -> InlineReport:
    """The report of ``sources`` (run folders, folders of runs, or :class:`~gradscope.storage.Run`
    objects) as an :class:`InlineReport`.

    Raises:
        GradscopeError: when a folder holds no readable run.
    """
    from gradscope.report.render import render_report

    runs, paper = _runs_of(sources)
    title = title or (f"gradscope {paper['paper']}" if paper else "gradscope report")
    return InlineReport(render_report(runs, title=title, paper=paper, page=False), runs)


def show(*sources, title: str | None = None) -> None:
    """Show the report of ``sources`` inline in a notebook (outside one: print its summary and findings).

    Args:
        sources: run folders, folders of runs (``reports/sweep``), or runs from
            :func:`gradscope.load_run`.
        title: the report's title.

    Example:
        >>> import gradscope
        >>> gradscope.show("reports/classic")  # doctest: +SKIP
    """
    from gradscope.display import in_notebook

    if in_notebook():
        from IPython.display import display

        display(report_of(*sources, title=title))
        return
    from gradscope.diagnosis import findings_of
    from gradscope.report.text import findings_text, summary_table
    from gradscope.report.view import views_of

    runs, _ = _runs_of(sources)
    views = views_of(runs)
    print(summary_table(views))
    for view in views:
        print(findings_text(view.label, findings_of(view.run)))
