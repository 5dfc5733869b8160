"""exploding_through_time: a recurrent layer's gradient grows with the distance back in time."""

from __future__ import annotations

import math

import numpy as np

from gradscope.diagnosis.finding import Finding
from gradscope.diagnosis.rules import Rule
from gradscope.diagnosis.rules.vanishing_through_time import GATED, layer_trends
from gradscope.vocabulary import fmt, times


def check(t, facts, settings):
    hits = []
    for layer, rows in layer_trends(t, settings):
        last = rows.iloc[-1]
        ratio = float(last["first_over_last"])
        if not last["finite"] or ratio > settings.time_explode_ratio:  # (NaN: no gradient reached it at all)
            hits.append((layer, rows))
    if not hits:
        return None
    layer, rows = max(hits, key=lambda h: np.nan_to_num(float(h[1]["first_over_last"].iloc[-1]), nan=np.inf))
    last = rows.iloc[-1]
    ratio = float(last["first_over_last"])
    return Finding(
        kind="exploding_through_time",
        severity="high",
        layers=[h[0] for h in hits],
        steps=[int(rows["step"].iloc[0]), int(last["step"])],
        summary=(f"the gradient reaching {layer}'s first time step is {times(ratio)} the last step's "
                 f"(sequence of {int(last['length'])} steps): it grows with the distance back in time"
                 if math.isfinite(ratio) else
                 f"the gradient through {layer}'s time steps is not finite ({fmt(ratio)})"),
        evidence={"layer_class": facts.layer_classes.get(layer) or "recurrent layer",
                  "sequence_length": int(last["length"]),
                  "first_over_last": [float(v) for v in rows["first_over_last"]],
                  "probe_steps": [int(s) for s in rows["step"]],
                  "healthy": f"||dL/dh_1|| / ||dL/dh_T|| <= {settings.time_explode_ratio:g}"},
        why="the recurrent weights' largest singular value times the activation's slope is above 1, so "
            "each step back multiplies the gradient",
        recommendation="Clip gradients (clipnorm=1.0 on the optimizer), initialise the recurrent weights "
                       "orthogonally (or as the identity for ReLU, scaled below 1), lower the learning rate"
                       + ("." if facts.layer_classes.get(layer) in GATED else ", or use an LSTM/GRU."),
    )


RULE = Rule("exploding_through_time", "gradients exploding through time", check)
