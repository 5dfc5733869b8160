"""Why a problem happens and what to change, as far as a run's config tells it.

Shared by the rules: an exploding gradient and a non-finite value have the same causes.
"""

from __future__ import annotations

from gradscope.diagnosis.settings import DiagnosisSettings
from gradscope.vocabulary import LARGE_RANDOM_INIT, RELU_LIKE, SATURATING, SATURATION_MARGIN


def why_exploding(config: dict, settings: DiagnosisSettings) -> str:
    act, init, lr = config.get("act"), config.get("init"), config.get("lr")
    if init == LARGE_RANDOM_INIT and act in RELU_LIKE:
        layers = config.get("layers") or []
        fan = f" with fan-in {layers[0]}" if layers else ""
        return (f"N(0,1) weights{fan} multiply the signal by about sqrt(fan_in/2) per ReLU layer "
                "(He init uses Var(w) = 2/fan_in to keep it level), so activations and gradients "
                "grow geometrically with depth.")
    if lr is not None and float(lr) >= settings.large_lr:
        return f"the learning rate {lr} is large enough for single steps to overshoot."
    return ""


def why_vanishing(s, config: dict, settings: DiagnosisSettings) -> str:
    act, init = config.get("act"), config.get("init")
    parts = []
    if act in ("sigmoid", "hard_sigmoid"):
        parts.append("sigmoid' <= 0.25, so every layer multiplies the backpropagated gradient by at most 1/4")
    elif act == "tanh":
        parts.append("tanh' < 1 away from 0, and ~0 where units saturate")
    if len(s.saturated_first) and float(s.saturated_first.max()) > settings.saturated:
        layer = s.saturated_first.idxmax()
        sat = (f"{100 * float(s.saturated_first.max()):.0f}% of the outputs of {layer} sit within "
               f"{SATURATION_MARGIN:g} of 0 or 1")
        if init == LARGE_RANDOM_INIT:
            layers = config.get("layers") or []
            fan = layers[0] if layers else None
            sat += (f": with N(0,1) weights each unit sums {fan} inputs, so pre-activations have a "
                    f"standard deviation in the tens" if fan else ": N(0,1) weights make pre-activations large")
        parts.append(sat + " (where sigmoid' ~ 0)")
    return "; ".join(parts)


def vanishing_remedy(config: dict) -> str:
    act = config.get("act")
    if act in SATURATING:
        return ("Use ReLU with He initialisation (Var(w) = 2/fan_in) for the hidden layers; if the "
                f"{act} must stay, use Xavier init and add BatchNormalization. For very deep nets, add "
                "residual connections.")
    return ("Use He initialisation for ReLU-like layers, add BatchNormalization, and for very deep "
            "nets residual connections.")
