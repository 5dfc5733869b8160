"""What the live view costs an epoch, measured in a real Jupyter kernel (nbclient).

A notebook trains the seed MLP (784-512-256-128-10) on 2,000 rows of the MNIST sample for
``--epochs`` epochs twice, with ``GradientMonitor(live=True)`` and with ``live=False`` (the same
model and weights; the order alternates), and reads the live view's own timer (the time its
drawing took, per update) and each fit's wall time per epoch.

    python benchmarks/live_view.py --epochs 20
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile

CELL = """
import json, time, keras, numpy as np, gradscope
from gradscope import data
from gradscope.models import build_mlp
ds = data.load("sample")
x, y = ds.x_train[:2000], ds.y_train[:2000]
out = {{"live_s_per_update": [], "epoch_s": {{"live": [], "plain": []}}}}
for i, live in enumerate([True, False, False, True]):
    model = build_mlp([512, 256, 128], act="sigmoid", init="normal", seed=0)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    monitor = gradscope.GradientMonitor(run=f"fit{{i}}", live=live, diagnose=True)
    t = time.perf_counter()
    model.fit(x, y, epochs={epochs}, batch_size=100, callbacks=[monitor], verbose=0)
    out["epoch_s"]["live" if live else "plain"].append((time.perf_counter() - t) / {epochs})
    if live:
        out["live_s_per_update"].append(monitor.live.seconds / max(monitor.live.updates, 1))
        out["updates"] = monitor.live.updates
print(json.dumps(out))
"""


def main(argv=None) -> int:
    import nbclient
    from nbformat.v4 import new_code_cell, new_notebook

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args(argv)
    nb = new_notebook(cells=[new_code_cell(CELL.format(epochs=args.epochs))])
    nbclient.NotebookClient(nb, timeout=1800, kernel_name="python3",
                            resources={"metadata": {"path": tempfile.mkdtemp()}}).execute()
    text = "".join(o.get("text", "") for o in nb.cells[0].outputs if o.output_type == "stream" and o.name == "stdout")
    out = json.loads(text.strip().splitlines()[-1])
    per_update = sum(out["live_s_per_update"]) / len(out["live_s_per_update"])
    live, plain = (sum(v) / len(v) for v in (out["epoch_s"]["live"], out["epoch_s"]["plain"]))
    print(f"live view: {1000 * per_update:.1f} ms an update ({out['updates']} updates a fit, its own timer); "
          f"epoch with live view {live:.3f} s, without {plain:.3f} s ({live / plain:.3f}x; two fits each, alternating)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
