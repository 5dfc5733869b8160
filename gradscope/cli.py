"""The ``gradscope`` command: thin click commands that parse, call the library and print.

TensorFlow is imported only by the commands that train, and only after every argument that
can be checked without it was checked; ``gradscope --help``, ``report`` and ``diagnose`` never
load it.

Exit codes: 0 done; 1 a problem the message names (nothing was trained or written); 2 a
command-line usage error; 3 ``report``/``diagnose`` skipped runs they could not read (the
others were rendered); 4 ``diagnose --fail-on LEVEL`` found a finding of that severity or
worse (for CI); 130 interrupted (Ctrl-C) and 143 terminated (SIGTERM), with what was
recorded kept and rendered.

Shell completion is click's: ``eval "$(_GRADSCOPE_COMPLETE=bash_source gradscope)"`` (``zsh_source``,
``fish_source``); it completes commands, options, and the names ``--act`` and ``--init`` take.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from gradscope.errors import GradscopeError
from gradscope.experiments.config import DEFAULTS, FRAMEWORKS, HE2015_DEPTHS, LE2015_LENGTHS, OPTIMIZERS
from gradscope.termination import INTERRUPTED_EXIT_CODE, Terminated, sigterm_raises

SKIPPED_EXIT_CODE = 3
FINDINGS_EXIT_CODE = 4  # diagnose --fail-on


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(None, "-V", "--version", package_name="gradscope")
def main():
    """See vanishing and exploding gradients, layer by layer, in TensorFlow/Keras."""


@contextlib.contextmanager
def _user_errors():
    """A GradscopeError becomes one line on stderr and exit code 1."""
    try:
        yield
    except GradscopeError as exc:
        raise click.ClickException(str(exc)) from None


def _import_tensorflow():
    from gradscope.tensorflow_import import import_tensorflow_quietly

    import_tensorflow_quietly()


def _complete_from(names: str):
    """A click completion of option values from a list of :mod:`gradscope.models.initializers` (read when
    completing, not at import)."""

    def complete(ctx, param, incomplete):
        from gradscope.models import initializers

        return [name for name in getattr(initializers, names) if name.startswith(incomplete)]

    return complete


def training_options(fn):
    """The options shared by ``analyze`` and ``sweep`` (defaults: :class:`TrainConfig`'s)."""
    options = [
        click.option("--act", "acts", multiple=True, default=["sigmoid"], show_default=True,
                     shell_complete=_complete_from("KNOWN_ACTIVATIONS"),
                     help="Hidden-layer activation (Keras name). Repeat for a grid."),
        click.option("--init", "inits", multiple=True, default=["normal"], show_default=True,
                     shell_complete=_complete_from("KNOWN_INITS"),
                     help="Weight init: normal (N(0,1)), normal_<std>, xavier, he, standard "
                          "(U[-1/sqrt(n), 1/sqrt(n)]), or a Keras initializer name. Repeat for a grid."),
        click.option("--optimizer", type=click.Choice(OPTIMIZERS), default=DEFAULTS.optimizer, show_default=True),
        click.option("--lr", type=float, default=DEFAULTS.lr, show_default=True, help="Learning rate."),
        click.option("--epochs", type=int, default=DEFAULTS.epochs, show_default=True),
        click.option("--batch-size", type=int, default=DEFAULTS.batch_size, show_default=True),
        click.option("--val-split", type=float, default=DEFAULTS.val_split, show_default=True,
                     help="Fraction of the training part held out for validation metrics."),
        click.option("--data", "data_source", default="sample", show_default=True,
                     help="sample (5,000 bundled MNIST images), mnist (Keras cache), or a .npz/.csv/IDX-folder path."),
        click.option("--seed", type=int, default=DEFAULTS.seed, show_default=True),
        click.option("--out", type=click.Path(file_okay=False), default=None,
                     help="Output folder (default: a new folder under reports/)."),
        click.option("--framework", type=click.Choice(FRAMEWORKS), default=DEFAULTS.framework, show_default=True,
                     help="keras: model.fit with GradientMonitor; tf1: the seed's tf.compat.v1 graph and sess.run loop."),
        click.option("--full-batch", is_flag=True,
                     help="Every step uses the whole training set (the seed's TF1 protocol); --epochs then counts steps."),
        click.option("--quiet", "-q", is_flag=True,
                     help="No per-epoch progress (in a terminal: run k of N, epoch, time left; else Keras' lines)."),
        click.option("--json", "as_json", is_flag=True,
                     help="Print a JSON summary on stdout (each run: status, config, metrics, findings); "
                          "the rest goes to stderr, without per-epoch progress."),
        click.option("--baseline/--no-baseline", default=None,
                     help="Also fit a logistic regression on the same data and split, shown beside the nets "
                          "(default: on up to 10,000 training images, where it takes seconds)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _train_config(hidden, optimizer, lr, batch_size, epochs, seed, val_split, framework, full_batch):
    from gradscope.experiments.config import TrainConfig

    return TrainConfig(hidden=hidden, optimizer=optimizer, lr=lr, batch_size=batch_size, epochs=epochs,
                       seed=seed, val_split=val_split, framework=framework, full_batch=full_batch)


def _echo_for(as_json):
    """Where the words go: stderr when stdout carries JSON."""
    return (lambda message="": click.echo(message, err=True)) if as_json else click.echo


def _publish(out_dir, runs, title, paper=None, as_json=False):
    """Write the report and print the summary table and every run's findings (``as_json``: one JSON
    document of the runs instead); returns the views."""
    from gradscope.report import views_of, write_report
    from gradscope.report.text import findings_text, summary_table, trials_text

    views = views_of(runs)
    report = write_report(views, out_dir / "report.html", title=title, paper=paper)
    if as_json:
        import json

        click.echo(json.dumps({"runs_dir": str(out_dir / "runs"), "report": str(report), "runs": [
            {"name": view.name, "role": view.role, "status": view.status, "config": view.config,
             "metrics": view.metrics, "findings": view.findings} for view in views]}, indent=2, default=str))
        return views
    click.echo("")
    click.echo(summary_table(views))
    click.echo("")
    for view in views:
        click.echo(findings_text(view.name, view.findings))
        trials = trials_text(view)
        if trials is not None:
            click.echo(trials)
    click.echo(f"\nruns:   {out_dir / 'runs'}\nreport: {report}")
    return views


@contextlib.contextmanager
def _keep_on_interrupt(out, title):
    """Ctrl-C or SIGTERM: what was recorded is on disk; render it and exit 130 (143 for SIGTERM)."""
    try:
        with sigterm_raises():
            yield
    except (KeyboardInterrupt, Terminated) as exc:
        from gradscope.report import write_report
        from gradscope.storage import find_runs

        how = "terminated" if isinstance(exc, Terminated) else "interrupted"
        skipped: list = []
        try:
            runs = find_runs([out], skipped=skipped)
        except GradscopeError:
            runs = []
        if runs:
            report = write_report(runs, out / "report.html", title=title)
            click.echo(f"\n{how}: {len(runs)} run(s) kept in {out / 'runs'}; report: {report}", err=True)
        else:
            click.echo(f"\n{how} before anything was recorded", err=True)
        sys.exit(exc.code if isinstance(exc, Terminated) else INTERRUPTED_EXIT_CODE)


def _prepare(hidden, optimizer, lr, batch_size, epochs, seed, val_split, framework, full_batch, out,
             data_source, prefix, acts=(), inits=()):
    """Check every argument that can be checked without TensorFlow, and load the data."""
    from gradscope import data
    from gradscope.experiments.config import check_out_dir, default_out_dir
    from gradscope.models.initializers import check_names

    train = _train_config(hidden, optimizer, lr, batch_size, epochs, seed, val_split, framework, full_batch)
    train.check()
    check_names(acts, inits, framework)
    out = check_out_dir(out) if out else default_out_dir(prefix=prefix)
    return train, out, data.load(data_source)


@main.command()
@training_options
@click.option("--hidden", default=",".join(map(str, DEFAULTS.hidden)), show_default=True,
              help="Hidden layer sizes, input side first; none: no hidden layer (softmax regression).")
@click.option("--no-reference", is_flag=True,
              help="With one --act and one --init, do not also train the textbook fix (relu + he) as a reference.")
def analyze(acts, inits, hidden, optimizer, lr, epochs, batch_size, val_split, data_source, seed, out,
            framework, full_batch, quiet, as_json, baseline, no_reference):
    """Train the seed MLP on MNIST while recording per-layer gradients, then report.

    With one --act and one --init, the textbook fix (relu + he, everything else equal) is
    trained beside it as the reference run (--no-reference: only the run asked for). Several
    --act/--init values train the whole grid, e.g.
    gradscope analyze --act sigmoid --act relu --init normal --init he
    """
    from gradscope.experiments.config import command_line, parse_hidden

    with _user_errors():
        train, out, dataset = _prepare(parse_hidden(hidden, allow_none=True), optimizer, lr, batch_size, epochs, seed,
                                       val_split, framework, full_batch, out, data_source, "analyze", acts, inits)
    _import_tensorflow()
    from gradscope.experiments.plans import analyze as run_analyze

    with _user_errors(), _keep_on_interrupt(out, f"gradscope analyze: {out.name} (interrupted)"):
        out_dir, runs = run_analyze(acts, inits, train, data=dataset, out=out,
                                    verbose=0 if quiet or as_json else 2, command=command_line(),
                                    echo=_echo_for(as_json), reference=not no_reference, baseline=baseline,
                                    progress=not (quiet or as_json))
    _publish(out_dir, runs, f"gradscope analyze: {out_dir.name}", as_json=as_json)


@main.command()
@training_options
@click.option("--depth", "depths", default="2,4,6,8,10", show_default=True,
              help="Numbers of hidden layers to sweep, comma-separated.")
@click.option("--width", type=int, default=128, show_default=True, help="Units per hidden layer.")
@click.option("--fresh", is_flag=True, help="Retrain runs that are already complete in --out (default: keep them).")
def sweep(acts, inits, depths, width, optimizer, lr, epochs, batch_size, val_split, data_source, seed, out,
          framework, full_batch, quiet, as_json, baseline, fresh):
    """Train MLPs of several depths for each --act/--init and report how gradients change with depth.

    An interrupted sweep resumes without retraining finished runs: run it again with the same --out.
    """
    from gradscope.experiments.config import command_line, parse_hidden

    with _user_errors():
        depth_list = parse_hidden(depths, "--depth", "2,4,6")
        train, out, dataset = _prepare([width], optimizer, lr, batch_size, epochs, seed, val_split, framework,
                                       full_batch, out, data_source, "sweep", acts, inits)
    _import_tensorflow()
    from gradscope.experiments.plans import sweep as run_sweep

    with _user_errors(), _keep_on_interrupt(
            out, f"gradscope sweep: {out.name} (interrupted; rerun with --out {out} to resume)"):
        out_dir, runs = run_sweep(depth_list, width, acts, inits, train, data=dataset, out=out,
                                  verbose=0 if quiet or as_json else 2, command=command_line(),
                                  echo=_echo_for(as_json), resume=not fresh, baseline=baseline,
                                  progress=not (quiet or as_json))
    views = _publish(out_dir, runs, f"gradscope sweep: {out_dir.name}", as_json=as_json)
    from gradscope.report.figures.depth import save_depth_png

    if save_depth_png(views, out_dir / "depth.png"):
        _echo_for(as_json)(f"depth figure: {out_dir / 'depth.png'}")


@main.command()
@click.argument("name", type=click.Choice(["glorot2010", "he2015", "le2015", "seed"]))
@click.option("--data", "data_source", default="sample", show_default=True, help="As for analyze (not le2015).")
@click.option("--epochs", type=int, default=None,
              help=f"Default {DEFAULTS.epochs} (le2015: 40; seed: each row's own, this overrides it for a quick check).")
@click.option("--lr", type=float, default=None, help=f"Default {DEFAULTS.lr} (le2015: Adam 0.001).")
@click.option("--batch-size", type=int, default=None, help=f"Default {DEFAULTS.batch_size} (le2015: 32).")
@click.option("--width", type=int, default=None,
              help="Units per hidden layer (glorot2010: 1000, he2015: 256, le2015: 32 recurrent units).")
@click.option("--depth", "depths", default=",".join(map(str, HE2015_DEPTHS)), show_default=True,
              help="he2015: hidden layers to try.")
@click.option("--lengths", default=",".join(map(str, LE2015_LENGTHS)), show_default=True,
              help="le2015: sequence lengths of the adding problem.")
@click.option("--sequences", type=int, default=None, help="le2015: training sequences per length (default 4000).")
@click.option("--rows", default="all", show_default=True,
              help="seed: the rows to train, comma-separated, of sklearn, tf1-softmax, keras-softmax, tf1-mlp, keras-mlp.")
@click.option("--seed", type=int, default=DEFAULTS.seed, show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default=None)
@click.option("--quiet", "-q", is_flag=True, help="glorot2010, he2015: no progress line at each epoch end.")
def paper(name, data_source, epochs, lr, batch_size, width, depths, lengths, sequences, rows, seed, out, quiet):
    """Reproduce a paper: glorot2010 (standard vs Xavier init, tanh/sigmoid), he2015 (deep ReLU,
    Xavier vs He), le2015 (the adding problem: tanh RNN vs IRNN vs LSTM) or seed (the seed course
    notes' table: logistic regression, softmax regressions and MLPs, each with its own protocol)."""
    from gradscope.experiments.config import check_out_dir, command_line, default_out_dir, parse_hidden, parse_lengths

    if name == "seed":
        from gradscope import data
        from gradscope.experiments.seed_table import parse_rows

        with _user_errors():
            chosen = parse_rows(rows)
            out = check_out_dir(out) if out else default_out_dir(prefix="paper-seed")
            dataset = data.load(data_source)
        _import_tensorflow()
        from gradscope.experiments.seed_table import run_seed_table

        with _user_errors(), _keep_on_interrupt(out, "gradscope paper seed (interrupted)"):
            out_dir, runs, payload = run_seed_table(chosen, data=dataset, out=out, echo=click.echo,
                                                    command=command_line(), seed=seed, epochs=epochs,
                                                    progress=not quiet)
        _publish(out_dir, runs, "gradscope paper seed", paper=payload)
        click.echo(f"\n{'row':<15} {'seed':>7} {'measured':>9}")
        for t in payload["table"]:
            click.echo(f"{t['row']:<15} {t['seed']:>7.4f} {t['measured']:>9.4f}")
        return

    if name == "le2015":
        with _user_errors():
            length_list = parse_lengths(lengths)
            out = check_out_dir(out) if out else default_out_dir(prefix="paper-le2015")
        _import_tensorflow()
        from gradscope.experiments.le2015 import run_le2015

        with _user_errors(), _keep_on_interrupt(out, "gradscope paper le2015 (interrupted)"):
            out_dir, runs, payload = run_le2015(out, lengths=length_list, units=width, n_train=sequences,
                                                epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                                                echo=click.echo, command=command_line(), progress=not quiet)
        _publish(out_dir, runs, "gradscope paper le2015", paper=payload)
        _echo_claims(payload)
        return
    epochs = DEFAULTS.epochs if epochs is None else epochs
    lr = DEFAULTS.lr if lr is None else lr
    batch_size = DEFAULTS.batch_size if batch_size is None else batch_size
    with _user_errors():
        depth_list = parse_hidden(depths, "--depth", ",".join(map(str, HE2015_DEPTHS)))
        train, out, dataset = _prepare([1], "sgd", lr, batch_size, epochs, seed, 0.0, "keras", False, out,
                                       data_source, f"paper-{name}")
    _import_tensorflow()
    from gradscope.experiments.papers import run_paper
    from gradscope.report.figures.paper import save_summary_pngs

    with _user_errors(), _keep_on_interrupt(out, f"gradscope paper {name} (interrupted)"):
        out_dir, runs, payload = run_paper(name, train, data=dataset, out=out, echo=click.echo,
                                           depths=depth_list, width=width, progress=not quiet)
    _publish(out_dir, runs, f"gradscope paper {name}", paper=payload)
    save_summary_pngs(payload, out_dir)
    _echo_claims(payload)


def _echo_claims(payload):
    click.echo("")
    for f in payload["findings"]:
        click.echo(f"[{'reproduced' if f['reproduced'] else 'NOT reproduced'}] {f['claim']}\n    {f['evidence']}")


@main.command()
@click.argument("dirs", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.option("--fail-on", type=click.Choice(["low", "medium", "high"]), default=None,
              help=f"Exit with code {FINDINGS_EXIT_CODE} when a run has a finding of this severity or worse (for CI).")
def diagnose(dirs, as_json, fail_on):
    """Diagnose saved runs: vanishing/exploding gradients, dead or saturated units, stalls.

    In CI: ``gradscope diagnose runs/ --fail-on high`` fails the job when a run has a high-severity
    finding (exit code 4; 3 when a run could not be read)."""
    import json

    from gradscope.diagnosis import findings_of
    from gradscope.report.text import findings_text

    runs, skipped = _read_runs(dirs)
    results = {run.name: findings_of(run) for run in runs}
    if as_json:
        click.echo(json.dumps(results, indent=2))
    else:
        for name, findings in results.items():
            click.echo(findings_text(name, findings))
    if fail_on is not None:
        from gradscope.diagnosis.finding import SEVERITIES

        worst = SEVERITIES.index(fail_on)  # SEVERITIES: most severe first
        failing = [f"{name}: {f['kind']} ({f['severity']})" for name, found in results.items() for f in found
                   if f.get("severity") in SEVERITIES and SEVERITIES.index(f["severity"]) <= worst]
        if failing:
            click.echo(f"{len(failing)} finding(s) at {fail_on} or worse: {'; '.join(failing)}", err=True)
            sys.exit(FINDINGS_EXIT_CODE)
    _exit_if_skipped(skipped)


@main.command()
@click.argument("dirs", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Report file (default: report.html in the first folder).")
@click.option("--figures", "figures_dir", type=click.Path(file_okay=False), default=None,
              help="Also write each figure to this folder as <figure>.png (the images the page embeds).")
def report(dirs, output, figures_dir):
    """Re-render the HTML report from saved runs (no TensorFlow needed)."""
    from gradscope.experiments.papers import load_paper
    from gradscope.report import write_report

    runs, skipped = _read_runs(dirs)
    from gradscope.report.figures import histograms

    histograms.WITHOUT_KDE = True  # a process that draws and exits: seaborn, when it draws, without scipy.stats
    path = Path(output) if output else Path(dirs[0]) / "report.html"
    paper = load_paper(dirs[0]) if len(dirs) == 1 else None
    write_report(runs, path, title=f"gradscope {paper['paper']}" if paper else "gradscope report",
                 command=" ".join(["gradscope report", *sys.argv[2:]]), paper=paper, figures_dir=figures_dir)
    click.echo(f"report: {path} ({len(runs)} run(s))" + (f"; figures in {figures_dir}" if figures_dir else ""))
    _exit_if_skipped(skipped)


def _read_runs(dirs):
    """The readable runs below ``dirs``; each unreadable one named on stderr, in one line."""
    from gradscope.storage import find_runs

    skipped: list[str] = []
    with _user_errors():
        runs = find_runs(dirs, skipped=skipped)
    for line in skipped:
        click.echo(line, err=True)
    for run in runs:
        for note in run.notes:
            click.echo(f"note: {note}", err=True)
    if not runs:
        raise click.ClickException(f"no readable run in {', '.join(map(str, dirs))}")
    return runs, skipped


def _exit_if_skipped(skipped):
    if skipped:
        click.echo(f"{len(skipped)} run(s) skipped", err=True)
        sys.exit(SKIPPED_EXIT_CODE)


if __name__ == "__main__":  # pragma: no cover
    main()
