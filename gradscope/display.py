"""How gradscope looks in HTML: one stylesheet scoped to its own container, and a finding as the report shows it.

Everything gradscope writes as HTML (the report file, the report inline in a notebook, and the
rich display of findings, runs, monitors and trials in Jupyter) sits inside
``<div class="gradscope">`` and is styled by :data:`STYLE`, every rule of which starts with
``.gradscope``: nothing restyles the page around it (a notebook's body, its headings, its
tables). Only the standalone report adds the page's margins, on its own container (``page``).

Stdlib only, so that every stage can show itself (a finding, a run, a monitor) without reaching
above its own floor.

Example:
    >>> f = {"kind": "vanishing_gradient", "severity": "high", "layers": ["dense_0"], "steps": [0, 99],
    ...      "summary": "the input layer learns 1000x slower", "why": "sigmoid with N(0,1) weights",
    ...      "recommendation": "ReLU + He init", "evidence": {"first_to_last_ratio": 0.00123}}
    >>> html = block(finding_html(f))
    >>> html.count('class="gradscope"'), 'vanishing gradient' in html, '0.00123' in html
    (1, True, True)
    >>> [rule for rule in rules() if not rule.startswith(".gradscope")]
    []
"""

from __future__ import annotations

import html as _html
import numbers
import re

from gradscope.vocabulary import fmt

MAX_ITEMS = 8  #: per-layer entries of a finding's evidence shown (the rest counted); long lists: first 4, last 3

#: The stylesheet of everything gradscope shows in HTML, scoped to ``.gradscope``.
STYLE = """
.gradscope { --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --bad: #b3261e; --warn: #8a5a00; --ok: #1a7f37;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); line-height: 1.45; }
.gradscope.page { margin: 2rem auto; max-width: 1280px; padding: 0 1.2rem; }
.gradscope h1 { font-size: 1.7rem; margin-bottom: .2rem; }
.gradscope h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid var(--line); padding-bottom: .3rem; }
.gradscope h3 { font-size: 1.05rem; margin-bottom: .3rem; }
.gradscope .sub { color: var(--muted); margin-top: 0; }
.gradscope nav a { margin-right: .9rem; color: #0969da; text-decoration: none; font-size: .92rem; }
.gradscope table { border-collapse: collapse; margin: 1rem 0; font-size: .88rem; width: 100%; }
.gradscope .wide { overflow-x: auto; }
.gradscope th, .gradscope td { border-bottom: 1px solid var(--line); padding: .4rem .6rem; text-align: left;
  vertical-align: top; }
.gradscope th { background: #f6f8fa; font-weight: 600; }
.gradscope td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.gradscope .partial { color: var(--bad); font-weight: 600; }
.gradscope .verdict-healthy { color: var(--ok); font-weight: 600; }
.gradscope .verdict-bad { color: var(--bad); font-weight: 600; }
.gradscope .ref { color: var(--muted); font-size: .82rem; }
.gradscope figure { margin: 1.2rem 0 2rem; }
.gradscope figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
.gradscope figcaption { color: var(--muted); font-size: .88rem; }
.gradscope .finding { border-left: 4px solid var(--warn); background: #fff8e6; padding: .5rem .9rem; margin: .6rem 0; }
.gradscope .finding.high { border-color: var(--bad); background: #fdecea; }
.gradscope .finding.low { border-color: var(--line); background: #f6f8fa; }
.gradscope .finding .kind { font-weight: 700; }
.gradscope .finding dl { margin: .3rem 0 0; display: grid; grid-template-columns: max-content 1fr; gap: .15rem .8rem;
  font-size: .88rem; }
.gradscope .finding dt { color: var(--muted); }
.gradscope .finding dd { margin: 0; }
.gradscope table.evidence { width: auto; margin: .1rem 0; font-size: .82rem; }
.gradscope table.evidence th, .gradscope table.evidence td { padding: .1rem .5rem .1rem 0; border: 0; background: none; }
.gradscope table.evidence th { font-weight: 400; color: var(--muted); white-space: nowrap; }
.gradscope table.evidence td { font-variant-numeric: tabular-nums; }
.gradscope table.trials td { font-variant-numeric: tabular-nums; }
.gradscope table.trials tr.helps td { color: var(--ok); }
.gradscope table.trials tr.best td { font-weight: 600; color: var(--ok); }
.gradscope table.compact { width: auto; font-size: .82rem; margin: .4rem 0; }
.gradscope table.compact th, .gradscope table.compact td { padding: .15rem .6rem .15rem 0; }
.gradscope code, .gradscope pre { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .82rem; }
.gradscope code { background: #f6f8fa; padding: .05rem .3rem; border-radius: 3px; }
.gradscope details pre { background: #f6f8fa; padding: .8rem; overflow-x: auto; }
.gradscope .head { font-weight: 600; }
.gradscope table#summary-table td.run { max-width: 16rem; }
.gradscope table#summary-table td.setup { font-size: .82rem; }
.gradscope table#summary-table td.run, .gradscope table#summary-table td.setup { overflow-wrap: break-word; }
@media (max-width: 1000px) {
  .gradscope table#summary-table th, .gradscope table#summary-table td { padding: .3rem .35rem; font-size: .8rem; }
}
"""


def rules() -> list[str]:
    """The selectors of :data:`STYLE`'s rules (a media query's own rules, not the query)."""
    body = re.sub(r"@media[^{]*\{", "", STYLE)
    return [s.strip() for block in re.findall(r"([^{}]+)\{[^{}]*\}", body) for s in block.split(",") if s.strip()]


def escape(value) -> str:
    return _html.escape(str(value), quote=True)


def block(body: str) -> str:
    """``body`` inside gradscope's container, with its stylesheet: what a notebook cell shows."""
    return f'<style>{STYLE}</style><div class="gradscope">{body}</div>'


def _value(v) -> str:
    if isinstance(v, bool) or v is None:
        return "-" if v is None else ("yes" if v else "no")
    if isinstance(v, numbers.Integral):
        return f"{int(v):,}" if abs(int(v)) >= 10_000 else str(int(v))
    if isinstance(v, numbers.Real):
        return fmt(v)
    if isinstance(v, str):
        try:
            return fmt(float(v)) if v.strip().lower() not in ("", "nan", "inf") else v
        except ValueError:
            return v
    if isinstance(v, dict):
        items = [f"{k} {_value(x)}" for k, x in list(v.items())[:MAX_ITEMS]]
        more = len(v) - MAX_ITEMS
        return " · ".join(items + ([f"(+{more} more)"] if more > 0 else [])) or "none"
    if isinstance(v, (list, tuple)):
        if len(v) > MAX_ITEMS:  # the start and the end of a long series
            return ", ".join([_value(x) for x in v[:4]] + [f"... ({len(v) - 7} more) ..."] + [_value(x) for x in v[-3:]])
        return ", ".join(_value(x) for x in v) or "none"
    return str(v)


def evidence_rows(evidence: dict) -> list[tuple[str, str]]:
    """``(what, value)`` rows of a finding's evidence, in its order: numbers to 3 significant
    digits, per-layer values side by side, long lists shortened.

    Example:
        >>> evidence_rows({"first_to_last_ratio": 0.02354824455, "epoch_losses": [2.3, 2.29876, 2.2912],
        ...                "grad_norm_first_step": {"dense": 0.1234567, "output": 2.5}, "healthy": "finite"})
        [('first to last ratio', '0.0235'), ('epoch losses', '2.3, 2.3, 2.29'), ('grad norm first step', 'dense 0.123 · output 2.5'), ('healthy', 'finite')]
    """
    return [(str(k).replace("_", " "), _value(v)) for k, v in (evidence or {}).items()]


def finding_html(f: dict) -> str:
    """One finding (a dict, as ``Finding.to_dict`` gives it) as the report shows it: kind, severity,
    layers and steps, the summary, why, the fix, its trial and the evidence."""
    trial = f.get("trial") or {}
    where = [escape(f["severity"]) + (", unconfirmed" if trial.get("status") == "unconfirmed" else
                                      ", confirmed" if trial.get("status") == "confirmed" else "")]
    if f.get("layers"):
        where.append(escape(", ".join(map(str, f["layers"]))))
    steps = f.get("steps") or []
    if len(steps) == 2 and steps[0] is not None:
        where.append(f"step {steps[0]}" if steps[0] == steps[1] else f"steps {steps[0]}&ndash;{steps[1]}")
    items = []
    if f.get("why"):
        items.append(f"<dt>why</dt><dd>{escape(f['why'])}</dd>")
    if f.get("recommendation"):
        items.append(f"<dt>fix</dt><dd>{escape(f['recommendation'])}</dd>")
    if trial.get("text") and trial.get("status") != "not tried":
        items.append(f"<dt>tried</dt><dd>{escape(trial['text'])}</dd>")
    if f.get("evidence"):
        rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in evidence_rows(f["evidence"]))
        items.append(f'<dt>evidence</dt><dd><table class="evidence">{rows}</table></dd>')
    return (f'<div class="finding {escape(f["severity"])}"><span class="kind">{escape(f["kind"].replace("_", " "))}'
            f"</span> ({'; '.join(where)}): {escape(f['summary'])}<dl>{''.join(items)}</dl></div>")


def findings_html(findings, nothing: str = "no problem found") -> str:
    """Findings (dicts), most severe first, as the report shows them; ``nothing`` without any."""
    return "".join(finding_html(f) for f in findings) if findings else f"<p>{escape(nothing)}</p>"


def model_line(meta: dict) -> str:
    """What a run trained, in one line, from its ``run.json`` (the monitor's ``model`` and
    ``optimizer`` sections, or ``gradscope analyze``'s config).

    Example:
        >>> model_line({"model": {"class": "Sequential", "name": "seq", "params": 865,
        ...             "layers": [{"class": "Dense"}, {"class": "Dense"}]}, "optimizer": {"class": "SGD", "learning_rate": 0.01}})
        'Sequential seq, 2 layers, 865 params, SGD 0.01'
        >>> model_line({"config": {"act": "sigmoid", "init": "normal", "hidden": [512, 256, 128], "optimizer": "sgd", "lr": 0.1}})
        'MLP 512-256-128 sigmoid / normal, sgd 0.1'
    """
    model, optimizer, config = meta.get("model") or {}, meta.get("optimizer") or {}, meta.get("config") or {}
    words = []
    if model:
        words.append(f"{model.get('class', 'model')} {model.get('name', '')}".strip())
        if model.get("layers"):
            words.append(f"{len(model['layers'])} layers")
        if model.get("params") is not None:
            words.append(f"{int(model['params']):,} params")
    elif config.get("hidden"):
        words.append(f"MLP {'-'.join(map(str, config['hidden']))} {config.get('act', '?')} / {config.get('init', '?')}")
    lr = optimizer.get("learning_rate", config.get("lr"))
    name = optimizer.get("class") or config.get("optimizer")
    if name:
        words.append(f"{name} {fmt(lr)}" if isinstance(lr, numbers.Real) else str(name))
    return ", ".join(words) or "model not recorded"


def run_html(run) -> str:
    """A saved run (:class:`gradscope.storage.Run`) in a few lines: name, status, what it trained,
    its final metrics, and what was found when it ended (``run.json``'s copy: no record is read)."""
    meta = run.meta
    status = run.status
    note = run.progress_note
    metrics = {k: v for k, v in (meta.get("metrics") or {}).items() if isinstance(v, numbers.Real)}
    rows = [("status", status + (f" ({note})" if note and note != status else "")),
            ("model", model_line(meta)),
            ("records", f"{(meta.get('records') or {}).get('rows', 0):,}"),
            ("path", str(run.path) if run.path else "in memory")]
    rows += [(k.replace("_", " "), _value(v)) for k, v in metrics.items()]
    table = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    found = meta.get("diagnosis")
    head = (f'<div class="head">run {escape(run.name)}: <span class="'
            f'{"verdict-healthy" if status == "complete" else "verdict-bad"}">{escape(status)}</span></div>')
    if found is None:
        findings = "<p class=\"ref\">no findings stored: <code>gradscope.diagnose(run)</code> judges its records</p>"
    else:
        findings = (findings_html(found) + '<p class="ref">as found when it ended; '
                    '<code>gradscope diagnose</code> judges it again with the current rules</p>')
    return block(f'{head}<table class="evidence">{table}</table>{findings}')


def run_text(run) -> str:
    """A saved run in one line (its ``repr``)."""
    found = run.meta.get("diagnosis")
    kinds = ", ".join(f["kind"] for f in found) if found else ("no problem found" if found is not None else
                                                                 "not diagnosed")
    return f"<Run {run.name}: {run.status}, {model_line(run.meta)}; {kinds}>"


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (IPython with a kernel: a notebook, JupyterLab, Colab)."""
    import sys

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def say(text: str, html: str | None = None) -> None:
    """Tell the user something while their training runs: in a notebook, one output (``html``
    in gradscope's container, ``text`` for plain frontends); elsewhere one line on stderr. Not a
    warning: no source line of ours, nothing to filter by accident."""
    if html is not None and in_notebook():
        from IPython.display import display

        display({"text/plain": text, "text/html": block(html)}, raw=True)
        return
    import sys

    print(text, file=sys.stderr, flush=True)


def say_finding(finding: dict, when: str) -> None:
    """A finding seen during training (``when``: ``"epoch 3"``, ``"end of training"``), as one message."""
    text = f"gradscope, {when}: {finding['kind']}: {finding['summary']}. Fix: {finding.get('recommendation', '')}"
    say(text, f'<div class="ref">gradscope, {escape(when)}</div>{finding_html(finding)}')


def _bar(value, low: float = -6.0, high: float = 0.0) -> str:
    """A small bar for a positive value on a log axis from 10**low to 10**high."""
    import math

    if not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        return ""
    width = max(0.0, min(1.0, (math.log10(value) - low) / (high - low))) * 100
    return (f'<span style="display:inline-block;height:.6em;width:{width:.0f}px;background:#0969da;'
            f'opacity:.55;margin-left:.4em"></span>')


def layers_html(window, first=None) -> str:
    """One window's per-layer numbers (a :class:`gradscope.diagnosis.timeline.Window`: an epoch, or
    at least 10 steps), input layer first: learning speed (median update / weight norm, with a bar on
    a log axis, and at the first window beside it), the gradient norm at the window's first step and
    its largest, and the dead and saturated share of units where probed."""
    header = ["layer", "learning speed (update/weight)"] + (["at the start"] if first is not None else []) + \
        ["grad_norm (first step)", "grad_norm (max)", "dead", "saturated"]
    rows = []
    for i, layer in enumerate(window.speed.index):
        speed = window.speed.get(layer)
        key = f'<span style="color:{_colour(i, len(window.speed))}">&#9632;</span> '
        cells = [f"<td>{key}{escape(layer)}</td>", f'<td class="num">{escape(fmt(speed))}{_bar(speed)}</td>']
        if first is not None:
            cells.append(f'<td class="num">{escape(fmt(first.speed.get(layer)))}</td>')
        for series in (window.grad_first, window.grad_max):
            cells.append(f'<td class="num">{escape(fmt(series.get(layer)))}</td>')
        for series in (window.dead, window.saturated):
            value = series.get(layer) if len(series) else None
            cells.append(f'<td class="num">{"-" if value is None else escape(f"{100 * value:.0f}%")}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    return f'<table class="compact"><tr>{head}</tr>{"".join(rows)}</table>'


def monitor_html(name: str, state: str, steps: int, path, window, findings, diagnosing: bool, first=None) -> str:
    """A monitor in a notebook: its run, how far it got, the last window's per-layer table and its
    findings so far (data passed in: the monitor's own numbers)."""
    where = f" &rarr; <code>{escape(path)}</code>" if path else " (in memory)"
    parts = [f'<div class="head">GradientMonitor: run {escape(name)}{where}</div>',
             f'<div class="ref">{escape(state)}; {steps:,} optimizer steps recorded</div>']
    if window is not None:
        epochs = (f"epoch {window.last_epoch + 1}" if window.first_epoch == window.last_epoch else
                  f"epochs {window.first_epoch + 1}-{window.last_epoch + 1}")
        parts.append(f'<div class="ref">{epochs}, steps {window.first_step}-{window.last_step}</div>')
        parts.append(layers_html(window, first))
    if diagnosing:
        parts.append(findings_html(findings, "no problem found so far"))
    elif findings:
        parts.append(findings_html(findings))
    return block("".join(parts))


_LINE_COLOURS = ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725", "#e66101", "#b2182b", "#2166ac")


def _colour(i: int, n: int) -> str:
    """The colour of layer ``i`` of ``n`` (input side darkest), in the live chart and its table."""
    return _LINE_COLOURS[min(i * len(_LINE_COLOURS) // max(n, 1), len(_LINE_COLOURS) - 1)]


def speed_svg(windows, width: int = 420, height: int = 120, max_points: int = 200) -> str:
    """Each layer's learning speed (median update / weight norm) over the windows so far, as a small
    SVG line chart on a log axis (input layer darkest; at most ``max_points`` windows a line)."""
    import math

    if not windows:
        return ""
    step = max(1, math.ceil(len(windows) / max_points))
    shown = windows[::step] if windows[-1] is windows[::step][-1] else windows[::step] + [windows[-1]]
    layers = list(windows[-1].speed.index)
    logs = [[math.log10(v) if isinstance(v, numbers.Real) and v > 0 and math.isfinite(v) else None
             for v in (w.speed.get(layer) for w in shown)] for layer in layers]
    values = [v for line in logs for v in line if v is not None]
    if not values:
        return ""
    low, high = math.floor(min(values)), math.ceil(max(values))
    high = high if high > low else low + 1
    x_of = (lambda i: 30 + i * (width - 40) / max(len(shown) - 1, 1))

    def y_of(v):
        return 8 + (high - v) * (height - 24) / (high - low)

    lines = []
    for i, line in enumerate(logs):
        points = " ".join(f"{x_of(j):.1f},{y_of(v):.1f}" for j, v in enumerate(line) if v is not None)
        colour = _colour(i, len(layers))
        lines.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}">'
                     f"<title>{escape(layers[i])}</title></polyline>")
    axis = "".join(f'<text x="0" y="{y_of(d) + 3:.1f}" font-size="9" fill="#59636e">1e{d}</text>'
                   for d in range(low, high + 1))
    return (f'<svg width="{width}" height="{height}" role="img" aria-label="learning speed per layer over epochs">'
            f"{axis}{''.join(lines)}<text x=\"30\" y=\"{height - 2}\" font-size=\"9\" fill=\"#59636e\">"
            f"learning speed per layer, epoch 1 to {windows[-1].last_epoch + 1} (log)</text></svg>")


def live_html(name: str, windows, findings) -> str:
    """The monitor's live view: the run, the last window's per-layer table beside the first's, the
    learning speed per layer over the windows so far, and the kinds found so far."""
    last = windows[-1]
    found = "".join(f'<div class="finding {escape(f["severity"])}"><span class="kind">'
                    f'{escape(f["kind"].replace("_", " "))}</span> ({escape(f["severity"])}): '
                    f'{escape(f["summary"])}</div>' for f in findings)
    return (f'<div class="head">gradscope live: {escape(name)}, epoch {last.last_epoch + 1} '
            f'(steps {last.first_step}-{last.last_step})</div>{speed_svg(windows)}'
            f'{layers_html(last, windows[0] if len(windows) > 1 else None)}{found}')
