"""vanishing_through_time: the gradient of a recurrent layer fades within a few steps back in time.

Judged on the trend, not one probe: at initialisation a gated cell (LSTM, GRU) often passes
less gradient back than a plain tanh RNN, then learns to keep its gate open. A gated layer is
judged on its last probe only, and not while its first-to-last ratio rose by
:attr:`~DiagnosisSettings.time_opening_decades` over the last quarter of its probes
(:func:`still_rising`), a single probe (``audit``, one epoch) judges only plain (ungated) cells, and a run
that has fitted its data is not judged. A plain cell's finding is an episode: the probes over which
the gradient did not reach back (held at the end, or for half the run), resolved or not.
"""

from __future__ import annotations

import math

import numpy as np

from gradscope.diagnosis.finding import Finding
from gradscope.diagnosis.rules import Rule
from gradscope.diagnosis.time_reach import reach_table
from gradscope.vocabulary import REACH_FRACTION, fmt

GATED = ("LSTM", "GRU", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D")


def layer_trends(t, settings):
    """Per recurrent layer judged: ``(layer, rows)`` with its probes in order (sequences long enough)."""
    table = reach_table(t.time_records)
    for layer, rows in table.groupby("layer", sort=False):
        rows = rows.sort_values("step")
        if int(rows["length"].iloc[-1]) >= settings.time_min_length:
            yield layer, rows


def still_rising(ratios, settings) -> bool:
    """Whether the first-to-last ratio rose by ``time_opening_decades`` over the last quarter of the
    probes (at least the last two): a layer still learning to carry its gradient back.

    Example:
        >>> from gradscope.diagnosis.settings import DiagnosisSettings
        >>> s = DiagnosisSettings()
        >>> lstm = [1e-7, 1e-8, 1e-8, 4e-8, 3e-6, 2e-5, 8e-5, 4e-4]     # opening its gates
        >>> tanh = [5e-12, 1e-10, 6e-9, 9e-6, 4e-6, 3e-6, 3e-6, 5e-6]  # rose once, then stayed low
        >>> still_rising(lstm, s), still_rising(tanh, s)
        (True, False)
    """
    ratios = np.asarray(ratios, dtype=float)
    if len(ratios) < 2:
        return False
    back = max(1, len(ratios) // 4)
    before, last = ratios[-1 - back], ratios[-1]
    return bool(before > 0 and last > 0 and math.log10(last / before) >= settings.time_opening_decades)


def _held(rows, gated, settings) -> tuple[int, int] | None:
    """The probes ``(first, last)`` (indices) over which the gradient did not reach back, or None.

    A plain cell: the longest stretch of consecutive probes where the reach is shorter than the
    sequence and the first-to-last ratio under 1%, if it lasted ``min_episode_windows`` probes
    (all of a shorter run) and holds at the end or for half the run. A gated cell: only the last
    probe is judged, and not while its ratio is still rising (it may be learning to open its gates).
    """
    ratios = rows["first_over_last"].to_numpy(dtype=float)
    reaches, lengths = rows["reach"].to_numpy(), rows["length"].to_numpy()
    flags = [bool(reaches[k] < lengths[k] and np.isfinite(ratios[k]) and ratios[k] < REACH_FRACTION)
             for k in range(len(rows))]
    n = len(flags)
    if gated:
        return (n - 1, n - 1) if n >= 2 and flags[-1] and not still_rising(ratios, settings) else None
    best, start = None, None
    for k, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = k
        elif not flag and start is not None:
            if best is None or k - start > best[1] - best[0] + 1:
                best = (start, k - 1)
            start = None
    if best is None:
        return None
    length = best[1] - best[0] + 1
    if length < min(settings.min_episode_windows, n) or not (best[1] == n - 1 or 2 * length >= n):
        return None
    return best


def check(t, facts, settings):
    hits = []
    fitted = bool(t.windows) and t.fitted(t.windows[-1], facts)
    for layer, rows in layer_trends(t, settings):
        rows = rows.reset_index(drop=True)
        gated = facts.layer_classes.get(layer) in GATED
        held = _held(rows, gated, settings)
        if held is None or (fitted and held[1] < len(rows) - 1):
            continue
        hits.append((layer, rows, held, gated))
    if not hits:
        return None
    layer, rows, (a, b), gated = min(hits, key=lambda h: float(h[1]["first_over_last"].iloc[h[2][1]]))
    worst = rows.iloc[a:b + 1]["first_over_last"].astype(float)
    at = rows.iloc[b]
    length = int(at["length"])
    resolved = int(rows["step"].iloc[b + 1]) if b + 1 < len(rows) else None
    when = (f"held from step {int(rows['step'].iloc[a])} to {int(at['step'])}, "
            + (f"and it was resolved by step {resolved} (reach {int(rows['reach'].iloc[b + 1])} at the end of that "
               f"epoch)" if resolved is not None else "still there at the end"))
    kind = facts.layer_classes.get(layer) or "recurrent layer"
    return Finding(
        kind="vanishing_through_time",
        severity="high" if float(worst.min()) < settings.time_high_ratio else "medium",
        layers=[h[0] for h in hits],
        steps=[int(rows["step"].iloc[a]), int(at["step"])],
        summary=f"the gradient reaching {layer}'s hidden state falls below {100 * REACH_FRACTION:g}% of the last "
                f"step's within {int(np.median(rows['reach'].iloc[a:b + 1]))} steps back (median over the probes), of "
                f"{length}: it cannot learn dependencies longer "
                f"than that (||dL/dh_1|| / ||dL/dh_T|| down to {fmt(float(worst.min()))}); {when}",
        evidence={"layer_class": kind, "sequence_length": length,
                  "reach_steps": [int(r) for r in rows["reach"]],
                  "first_over_last": [float(v) for v in rows["first_over_last"]],
                  "probe_steps": [int(s) for s in rows["step"]],
                  "held_in_steps": [int(rows["step"].iloc[a]), int(at["step"])], "resolved_at_step": resolved,
                  "healthy": f"reach = the sequence length (the first step gets >= {100 * REACH_FRACTION:g}% of the "
                             f"last step's gradient), or a ratio still rising by >= "
                             f"{settings.time_opening_decades:g} decade"},
        why=("a gated cell whose gates stay closed passes little gradient back (it may still learn to open them: "
              "more epochs or a larger learning rate can tell)" if gated else
             "each step back multiplies the gradient by the recurrent weights and the activation's derivative "
             "(tanh' <= 1): unless their product stays near 1, it shrinks geometrically with the distance"),
        recommendation=("Train longer or with a larger learning rate so that the gates can open (a forget-gate "
                        "bias of 1, unit_forget_bias=True, helps an LSTM); clip gradients (clipnorm) so that the "
                        "long-range gradient can be followed safely; shorten the sequences or train with truncated "
                        "backpropagation through time." if gated else
                        "Use an LSTM or GRU, or a ReLU RNN with identity recurrent weights (IRNN: "
                        "recurrent_initializer='identity', small input weights); clip gradients (clipnorm) so that "
                        "the long-range gradient can be followed safely; shorten the sequences or train with "
                        "truncated backpropagation through time."),
    )


RULE = Rule("vanishing_through_time", "gradients vanishing through time", check)
