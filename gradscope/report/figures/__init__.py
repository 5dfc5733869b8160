"""The report's figures, in the order the report shows them: one catalogue, drawing only.

Each entry names a figure's anchor id, title and caption, and a function ``draw(views,
colors)`` that returns a matplotlib Figure, or None when the runs have nothing to show for it.
Adding a figure is a drawing function in one of this package's modules and one entry here.
Nothing here computes from records beyond what :class:`gradscope.report.view.RunView` hands
over, and nothing imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gradscope.report.figures import activations, curves, depth, histograms, layers, paper, steps, time


@dataclass(frozen=True)
class FigureSpec:
    """One figure of the report: ``draw(views, colors)`` -> Figure or None.

    ``caption`` is the text under the figure, or a function of the views returning it (so it
    says only what the figure shows).
    """

    id: str
    title: str
    caption: str | Callable
    draw: Callable

    def caption_for(self, views) -> str:
        return self.caption(views) if callable(self.caption) else self.caption


def _bars_words(views) -> str:
    if layers.grouped(views):
        return "one colour per run."
    return "one panel per run over its own layers, the first step hollow and the last filled."


FIGURES = (
    FigureSpec("depth", "Depth sweep",
               "Input-layer kernel gradient norm and learning speed (grad_norm / weight_norm) at the first step, "
               "and final test accuracy, against the number of hidden layers; one line per activation/init.",
               lambda views, colors: depth.depth_sweep(views)),
    FigureSpec("depth-profiles", "Per-layer profile by depth",
               "grad_norm / weight_norm of every layer at the first step, one line per depth, one panel per "
               "activation/init (log scale).",
               lambda views, colors: depth.depth_profiles(views)),
    FigureSpec("gradient-flow", "Gradient flow",
               "Per-layer kernel gradient L2 norm over optimizer steps, one panel per run over its own layers "
               "(dark: input side; light: output side), on a shared log scale unless a run is orders of "
               "magnitude away (its title then says \"own y-range\"); where values stop being finite, or fall "
               "off the scale, is written under the run's title. In long runs a line is the mean of buckets of "
               "steps and the band their min-max, so spikes still show.",
               lambda views, colors: steps.gradient_flow(views)),
    FigureSpec("layer-bars", "Gradient per layer",
               lambda views: "Kernel gradient L2 norm of each layer, input to output, at the first and last "
               "finite recorded step (log scale); " + _bars_words(views),
               lambda views, colors: layers.layer_bars(views, colors)),
    FigureSpec("layer-bars-relative", "Learning speed per layer",
               lambda views: "grad_norm / weight_norm of each layer at the first and last finite step: how "
               "fast each layer learns relative to its own weights (log scale); " + _bars_words(views),
               lambda views, colors: layers.layer_bars(views, colors, metric="grad_over_weight")),
    FigureSpec("weights", "Weight norms", "Kernel L2 norm per layer over optimizer steps (log scale).",
               lambda views, colors: steps.weight_norms(views)),
    FigureSpec("updates", "Update ratios",
               "update_norm / weight_norm per layer over optimizer steps: the fraction by which one step "
               "changes a layer (log scale).",
               lambda views, colors: steps.update_ratios(views)),
    FigureSpec("activations", "Saturated and dead units",
               "Layer by epoch heatmaps of the fraction of saturated outputs (sigmoid/tanh) or dead units "
               "(ReLU) on the probe batch.",
               lambda views, colors: activations.activation_heatmaps(views)),
    FigureSpec("grad-histograms", "Gradient distribution per layer",
               "Histogram of the magnitudes of each kernel's gradient on the probe batch, before the first step "
               "and at the last epoch end, one column per run, input-side layer on top, on one shared log axis "
               "(Glorot & Bengio 2010, Fig. 7, for any model): a gradient vanishing toward the input moves the "
               "top rows decades to the left. The bin marked 0 holds exact zeros (and magnitudes under 1e-10): "
               "inputs that are always 0, such as MNIST's border pixels, give their weights a zero gradient.",
               lambda views, colors: histograms.layer_histograms(views, "grad_hist")),
    FigureSpec("grad-ridges", "Gradient distribution over epochs",
               "The input-side layer's gradient histogram before training and at each epoch end, stacked upward "
               "(each scaled to its own peak), one panel per run.",
               lambda views, colors: histograms.epoch_ridges(views, "grad_hist")),
    FigureSpec("act-histograms", "Activation distribution per layer",
               "Histogram of each layer's outputs on the probe batch, before the first step and at the last epoch "
               "end (linear within [-1, 1], in decades beyond; Glorot & Bengio 2010, Fig. 6): saturated sigmoid/tanh "
               "units pile up at the ends, dead ReLU units at 0.",
               lambda views, colors: histograms.layer_histograms(views, "act_hist")),
    FigureSpec("time", "Gradient through time",
               "For each recurrent layer: the gradient of the loss with respect to the hidden state at each time "
               "step, ||dL/dh_t||, on the probe batch at every epoch end, as a share of the last step's (log10; "
               "-2 is 1%). Its reach is how many steps back it stays above 1%: a layer cannot learn a "
               "dependency longer than that.",
               lambda views, colors: time.time_heatmaps(views)),
    FigureSpec("curves", "Loss and accuracy",
               lambda views: "Training loss (log scale) and accuracy per epoch for every run"
               + ("; dashed lines are validation." if curves.has_validation(views) else
                  " (no run recorded validation data)."),
               lambda views, colors: curves.training_curves(views, colors)),
)

#: Figures of a paper reproduction, drawn from its ``paper.json`` (``draw(paper)``).
PAPER_FIGURES = (
    FigureSpec("paper-gradients", "Back-propagated gradients per layer",
               "Standard deviation of the back-propagated gradient dL/dz of each hidden layer, at "
               "initialisation and after training, one line per run (log scale).",
               paper.gradient_std_by_layer),
    FigureSpec("paper-histograms", "Histograms per layer",
               "Histograms of activations and back-propagated gradients of each hidden layer at "
               "initialisation and after training, one row per run.",
               paper.histograms),
)
