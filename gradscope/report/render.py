"""Render saved runs into one self-contained HTML page (Jinja2; images embedded)."""

from __future__ import annotations

import datetime as _dt
import html
from pathlib import Path

from gradscope import __version__
from gradscope.summary import fmt, layer_ratios


def _context(runs, command=None) -> dict:
    from gradscope.report import figures

    colors = figures.run_colors([r.name for r in runs])
    rows = []
    for run in runs:
        cfg = run.config
        ratios = layer_ratios(run.records)
        acc = run.metrics.get("test_accuracy")
        rows.append(
            {
                "name": run.name,
                "status": run.status,
                "act": cfg.get("act", "?"),
                "init": cfg.get("init", "?"),
                "optimizer": f"{cfg.get('optimizer', '?')} (lr {cfg.get('lr', '?')})",
                "layers": "-".join(str(n) for n in cfg.get("layers", [])),
                "data": (cfg.get("data") or {}).get("source", "?"),
                "n_train": (cfg.get("data") or {}).get("n_train"),
                "epochs": cfg.get("epochs"),
                "accuracy": "-" if acc is None else f"{acc:.4f}",
                "grad_ratio": f"{fmt(ratios['grad_start'])} &rarr; {fmt(ratios['grad_end'])}",
                "rel_ratio": f"{fmt(ratios['rel_start'])} &rarr; {fmt(ratios['rel_end'])}",
                "seconds": (run.meta.get("timings") or {}).get("train_seconds"),
            }
        )
    figs = [
        ("gradient-flow", figures.gradient_flow(runs),
         "Per-layer kernel gradient L2 norm over optimizer steps, one panel per run, log scale."),
        ("layer-profile", figures.layer_profile(runs, colors),
         "grad_norm / weight_norm per layer at the first and last recorded step, log scale."),
        ("curves", figures.training_curves(runs, colors),
         "Training loss (log scale) and accuracy per epoch for every run."),
    ]
    commands = sorted({r.config.get("command") for r in runs if r.config.get("command")})
    return {
        "rows": rows,
        "figures": [{"id": i, "src": figures.to_data_uri(f), "alt": alt} for i, f, alt in figs],
        "commands": commands,
        "render_command": command,
        "generated": _dt.datetime.now().isoformat(timespec="seconds"),
        "version": __version__,
        "configs": [(r.name, r.config) for r in runs],
    }


def render_report(runs, title="gradscope report", command=None) -> str:
    """Return the report HTML for a list of :class:`gradscope.storage.Run`."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("gradscope.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
    )
    env.filters["pretty"] = lambda d: html.escape(__import__("json").dumps(d, indent=2, default=str))
    template = env.get_template("report.html.j2")
    return template.render(title=title, **_context(runs, command))


def write_report(runs, path, title="gradscope report", command=None) -> Path:
    """Render ``runs`` and write the report to ``path``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(runs, title=title, command=command), encoding="utf-8")
    return path
