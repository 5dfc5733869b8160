"""Render saved runs into one self-contained HTML page (Jinja2 template; PNGs embedded).

Compute -> structure -> draw: :class:`~gradscope.report.view.RunView` computes each run's
tables and findings once; this module structures them into the summary rows and figure list;
:mod:`gradscope.report.figures` draws; the template only lays out what it is given.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
from pathlib import Path

from gradscope import __version__
from gradscope.diagnosis import nothing_found
from gradscope.display import STYLE, finding_html
from gradscope.report.describe import describe
from gradscope.report.figures import FIGURES, PAPER_FIGURES
from gradscope.report.seed_references import reference_for
from gradscope.report.style import data_uri, png_bytes, run_colors
from gradscope.report.view import RunView, views_of
from gradscope.vocabulary import BASELINE_ARM, fmt


def _steps_run(meta: dict) -> int | None:
    """Optimizer steps a run took, from its progress (the last step is 0-based)."""
    last = (meta.get("progress") or {}).get("last_step")
    return last + 1 if isinstance(last, int) else None


def _row(view: RunView) -> dict:
    cfg = view.config
    meta = view.run.meta
    data = cfg.get("data") or {}
    ratios = view.ratios
    acc = view.metrics.get("test_accuracy")
    ref = reference_for(cfg)
    timings = meta.get("timings") or {}
    words = describe(meta)
    n_train, n_test = data.get("n_train"), data.get("n_test")
    return {
        "name": view.name,
        "label": view.label,
        "status": view.status,
        "status_note": view.run.progress_note,
        "framework": cfg.get("framework", "keras"),
        "model": words["model"],
        "act": words["activation"],
        "init": words["init"],
        "optimizer": words["optimizer"],
        "training": words["training"],
        "data": words["data"],
        "data_detail": f"{n_train} train / {n_test} test" if n_train is not None else "",
        "split": data.get("split") or (meta.get("training") or {}).get("validation") or "not recorded",
        "accuracy": (f"{float(acc):.4f}" if acc is not None else
                     f"MSE {float(view.metrics['test_mse']):.4f}" if view.metrics.get("test_mse") is not None else
                     "not recorded"),
        "reference": "" if ref is None else f"{ref[0]:.4f}",
        "reference_source": "" if ref is None else ref[1],
        "verdict": view.verdict,
        "findings": view.findings,
        "grad_ratio": f"{ratios['words']['grad_start']} &rarr; {ratios['words']['grad_end']}",
        "rel_ratio": f"{ratios['words']['rel_start']} &rarr; {ratios['words']['rel_end']}",
        "reach": view.reach_words,
        "baseline": "" if view.baseline_accuracy is None else f"{view.baseline_accuracy:.4f}",
        "seconds": timings.get("train_seconds"),
        "steps": timings.get("steps") or _steps_run(meta),
        "command": cfg.get("command"),
        "versions": meta.get("versions") or cfg.get("versions") or {},
        "config_json": json.dumps({k: meta[k] for k in ("config", "model", "optimizer", "training", "tags",
                                                        "metrics", "progress", "process") if k in meta},
                                  indent=2, default=str),
    }


def _trials(view: RunView) -> dict | None:
    """A run's trial table as the report lays it out: one row per arm, the verdict under it."""
    result = view.trials
    if result is None:
        return None
    s = result.summary
    return {"label": view.label, "metric": s.get("metric", "score"), "rows": result.rows(), "skipped": s.get("skipped") or {},
            "verdict": result.verdict(),
            "note": (f"Each fix trained from the run's starting weights on the same batches and was scored by "
                     f"{s.get('metric', 'score')} on {(s.get('rows') or {}).get('held_out', '?')} held-out rows; "
                     f"a second seed of the model as given is the noise floor, and a fix helps only beyond "
                     f"{fmt((s.get('settings') or {}).get('noise_factor'))}x it (a fix held back only by the gap between "
                     f"the two seeds trains again from the second seed's start, and helps when it wins on both).")}


def _reference_trials(views) -> list[dict]:
    """``gradscope analyze``'s reference run shown as what it is: the ReLU + He arm of the run beside it
    (the same data, split, optimizer and epochs; one seed each, so no noise floor)."""
    def rest(view):  # the config but for what the reference changes and what names it
        return {k: v for k, v in view.config.items() if k not in ("act", "init", "role", "command", "name")}

    out = []
    for ref in [v for v in views if v.role == "reference" and v.metrics.get("test_accuracy") is not None]:
        ref_acc = float(ref.metrics["test_accuracy"])
        for view in views:
            if view.role is not None or view.metrics.get("test_accuracy") is None or rest(view) != rest(ref):
                continue
            acc = float(view.metrics["test_accuracy"])
            gain = ref_acc - acc
            row = {"changed": "every hidden layer", "steps": (ref.run.meta.get("timings") or {}).get("steps") or "",
                   "before": "-", "floor": "", "best": False, "helps": False}
            out.append({"label": f"{view.label}: the reference run is its ReLU + He arm", "metric": "test accuracy",
                        "skipped": {},
                        "note": "The reference run is the same model, data, optimizer and epochs with ReLU + He "
                                "init: one arm of a trial, scored on the test set.",
                        "rows": [{**row, "arm": BASELINE_ARM, "fix": f"{view.name} as asked", "after": fmt(acc),
                                  "improvement": "", "verdict": ""},
                                 {**row, "arm": "relu_he", "fix": f"ReLU + He init ({ref.name})",
                                  "after": fmt(ref_acc), "improvement": f"{gain:+.3f}", "best": gain > 0,
                                  "verdict": "better" if gain > 0 else "no better"}],
                        "verdict": (f"ReLU + He init: test accuracy {fmt(ref_acc)} vs {fmt(acc)} "
                                    f"({gain:+.3f}; one seed each: no noise floor, see gradscope.try_fixes for one)")})
    return out


def _figures(views) -> list[dict]:
    colors = run_colors(views)
    out = []
    for spec in FIGURES:
        fig = spec.draw(views, colors)
        if fig is not None:
            png = png_bytes(fig)
            out.append({"id": spec.id, "title": spec.title, "png": png, "src": data_uri(png),
                        "alt": spec.caption_for(views)})
    return out


def _paper_figures(paper) -> list[dict]:
    if "probes" not in paper:  # a paper without per-layer probes (le2015) draws from its runs only
        return []
    out = []
    for spec in PAPER_FIGURES:
        png = png_bytes(spec.draw(paper))
        out.append({"id": spec.id, "title": spec.title, "png": png, "src": data_uri(png), "alt": spec.caption})
    return out


def _views(runs) -> list[RunView]:
    """Runs as views (views as they are): a view reads its run's records once, so make them once."""
    return [r if isinstance(r, RunView) else RunView(r) for r in runs]


def report_figures(runs, paper=None) -> list[dict]:
    """The report's figures, drawn: per figure its ``id``, ``title``, ``png`` (bytes), ``src`` (the
    same as a ``data:`` URI) and ``alt`` (its caption); a paper's own figures first."""
    return (_paper_figures(paper) if paper else []) + _figures(_views(runs))


def render_report(runs, title="gradscope report", command=None, paper=None, page: bool = True,
                  figures: list[dict] | None = None) -> str:
    """Return the report HTML for a list of :class:`gradscope.storage.Run` (or their views).

    Args:
        paper: the content of a paper reproduction's ``paper.json`` (adds its findings and
            histograms).
        page: a whole HTML page (the report file); else the same content as one block that a
            notebook shows inline (its stylesheet scoped to it, see :mod:`gradscope.display`).
        figures: the figures from :func:`report_figures` when already drawn (else drawn here).
    """
    import jinja2
    import markupsafe

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("gradscope.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
    )
    env.filters["finding_html"] = lambda f: markupsafe.Markup(finding_html(f))
    template = env.get_template("report.html.j2")
    views = _views(runs)
    rows = [_row(view) for view in views]
    sources = []
    for r in rows:
        if r["reference_source"] and r["reference_source"] not in sources:
            sources.append(r["reference_source"])
        r["reference_note"] = sources.index(r["reference_source"]) + 1 if r["reference_source"] else None
    return template.render(
        title=title,
        rows=rows,
        reference_sources=sources,
        trials=[t for t in map(_trials, views) if t is not None] + _reference_trials(views),
        figures=report_figures(views, paper) if figures is None else figures,
        paper=paper,
        commands=sorted({r["command"] for r in rows if r["command"]}),
        render_command=command,
        generated=_dt.datetime.now().isoformat(timespec="seconds"),
        version=__version__,
        python=platform.python_version(),
        any_reference=any(r["reference"] for r in rows),
        any_reach=any(r["reach"] for r in rows),
        any_baseline=any(r["baseline"] for r in rows),
        nothing_found=nothing_found(),
        page=page,
        style=markupsafe.Markup(STYLE),
    )


def write_report(runs, path, title="gradscope report", command=None, paper=None, figures_dir=None) -> Path:
    """Render ``runs`` (or their views) and write the report to ``path``; returns the path.

    Args:
        figures_dir: also write each figure there as ``<id>.png`` (the same image the page embeds),
            for slides, papers or a README.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    views = _views(runs)  # the figures and the page read the same views
    figures = report_figures(views, paper)
    if figures_dir is not None:
        folder = Path(figures_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for figure in figures:
            (folder / f"{figure['id']}.png").write_bytes(figure["png"])
    path.write_text(render_report(views, title=title, command=command, paper=paper, figures=figures),
                    encoding="utf-8")
    return path


__all__ = ["render_report", "report_figures", "write_report", "views_of"]
