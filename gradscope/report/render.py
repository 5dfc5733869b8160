"""Render saved runs into one self-contained HTML page (Jinja2 template; PNGs embedded).

Computing happens here and in :mod:`gradscope.summary`/:mod:`gradscope.diagnosis`; the
template only lays out what it is given, and figures come from :mod:`gradscope.report.figures`.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
from pathlib import Path

from gradscope import __version__
from gradscope.diagnosis import diagnose, verdict
from gradscope.reference import reference_for
from gradscope.summary import fmt, layer_ratios


def _findings(run):
    """The run's stored diagnosis, or a fresh one for runs saved before it existed."""
    stored = run.meta.get("diagnosis")
    if stored:
        return stored
    return [f.to_dict() for f in diagnose(run.records, run.config)]


def _row(run):
    cfg = run.config
    data = cfg.get("data") or {}
    ratios = layer_ratios(run.records)
    acc = run.metrics.get("test_accuracy")
    ref = reference_for(cfg)
    findings = _findings(run)
    timings = run.meta.get("timings") or {}
    return {
        "name": run.name,
        "status": run.status,
        "framework": cfg.get("framework", "keras"),
        "act": cfg.get("act", "?"),
        "init": cfg.get("init", "?"),
        "optimizer": f"{cfg.get('optimizer', '?')} (lr {cfg.get('lr', '?')})",
        "training": (f"{cfg.get('epochs')} full-batch steps" if cfg.get("full_batch")
                     else f"{cfg.get('epochs', '?')} epochs, batch {cfg.get('batch_size', '?')}"),
        "layers": "-".join(str(n) for n in cfg.get("layers", [])),
        "data": data.get("source", "?"),
        "data_detail": f"{data.get('n_train', '?')} train / {data.get('n_test', '?')} test",
        "split": data.get("split", ""),
        "accuracy": "-" if acc is None else f"{acc:.4f}",
        "reference": "" if ref is None else f"{ref[0]:.4f}",
        "reference_source": "" if ref is None else ref[1],
        "verdict": ", ".join(f["kind"].replace("_", " ") for f in findings) or "healthy",
        "findings": findings,
        "grad_ratio": f"{fmt(ratios['grad_start'])} &rarr; {fmt(ratios['grad_end'])}",
        "rel_ratio": f"{fmt(ratios['rel_start'])} &rarr; {fmt(ratios['rel_end'])}",
        "seconds": timings.get("train_seconds"),
        "steps": timings.get("steps"),
        "command": cfg.get("command"),
        "versions": cfg.get("versions") or {},
        "config_json": json.dumps(cfg, indent=2, default=str),
    }


def _figures(runs):
    from gradscope.report import figures as F

    colors = F.run_colors([r.name for r in runs])
    specs = [
        ("depth", "Depth sweep", lambda: F.depth_sweep(runs),
         "Input-layer kernel gradient norm and learning speed (grad_norm / weight_norm) at the first step, "
         "and final test accuracy, against the number of hidden layers; one line per activation/init."),
        ("depth-profiles", "Per-layer profile by depth", lambda: F.depth_profiles(runs),
         "grad_norm / weight_norm of every layer at the first step, one line per depth, one panel per "
         "activation/init (log scale)."),
        ("gradient-flow", "Gradient flow", lambda: F.gradient_flow(runs),
         "Per-layer kernel gradient L2 norm over optimizer steps, one panel per run on a shared "
         "log-scale y-axis (dark: input-side layers; light: output side)."),
        ("layer-bars", "Gradient per layer", lambda: F.layer_bars(runs, colors),
         "Kernel gradient L2 norm of each layer, input to output, at the first and last finite "
         "recorded step, one colour per run (log scale)."),
        ("layer-bars-relative", "Learning speed per layer", lambda: F.layer_bars(runs, colors, relative=True),
         "grad_norm / weight_norm of each layer at the first and last finite step: how fast each "
         "layer learns relative to its own weights (log scale)."),
        ("weights", "Weight norms", lambda: F.weight_norms(runs),
         "Kernel L2 norm per layer over optimizer steps (log scale)."),
        ("updates", "Update ratios", lambda: F.update_ratios(runs),
         "update_norm / weight_norm per layer over optimizer steps: the fraction by which one step "
         "changes a layer (log scale)."),
        ("activations", "Saturated and dead units", lambda: F.activation_heatmaps(runs),
         "Layer by epoch heatmaps of the fraction of saturated outputs (sigmoid/tanh) or dead units "
         "(ReLU) on the probe batch."),
        ("curves", "Loss and accuracy", lambda: F.training_curves(runs, colors),
         "Training loss (log scale) and accuracy per epoch for every run; dashed lines are validation."),
    ]
    out = []
    for fig_id, title, make, alt in specs:
        fig = make()
        if fig is not None:
            out.append({"id": fig_id, "title": title, "src": F.to_data_uri(fig), "alt": alt})
    return out


def _paper_figures(paper):
    from gradscope.report import figures as F
    from gradscope.report import paper_figures as P

    specs = [("paper-gradients", "Back-propagated gradients per layer", P.gradient_std_by_layer(paper),
              "Standard deviation of the back-propagated gradient dL/dz of each hidden layer, at "
              "initialisation and after training, one line per run (log scale)."),
             ("paper-histograms", "Histograms per layer", P.histograms(paper),
              "Histograms of activations and back-propagated gradients of each hidden layer at "
              "initialisation and after training, one row per run.")]
    return [{"id": i, "title": t, "src": F.to_data_uri(f), "alt": a} for i, t, f, a in specs]


def render_report(runs, title="gradscope report", command=None, paper=None) -> str:
    """Return the report HTML for a list of :class:`gradscope.storage.Run`.

    Args:
        paper: the content of a paper reproduction's ``paper.json`` (adds its findings and
            histograms).
    """
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("gradscope.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
    )
    template = env.get_template("report.html.j2")
    rows = [_row(run) for run in runs]
    sources = []
    for r in rows:
        if r["reference_source"] and r["reference_source"] not in sources:
            sources.append(r["reference_source"])
        r["reference_note"] = sources.index(r["reference_source"]) + 1 if r["reference_source"] else None
    return template.render(
        title=title,
        rows=rows,
        reference_sources=sources,
        figures=(_paper_figures(paper) if paper else []) + _figures(runs),
        paper=paper,
        commands=sorted({r["command"] for r in rows if r["command"]}),
        render_command=command,
        generated=_dt.datetime.now().isoformat(timespec="seconds"),
        version=__version__,
        python=platform.python_version(),
        any_reference=any(r["reference"] for r in rows),
        verdict=verdict,
    )


def write_report(runs, path, title="gradscope report", command=None, paper=None) -> Path:
    """Render ``runs`` and write the report to ``path``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(runs, title=title, command=command, paper=paper), encoding="utf-8")
    return path
