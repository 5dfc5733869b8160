"""The settings of a training run, with the defaults the command line shows.

Example:
    >>> TrainConfig().lr, TrainConfig().hidden
    (0.1, [512, 256, 128])
    >>> parse_hidden("512,,128")
    Traceback (most recent call last):
    ...
    gradscope.errors.GradscopeError: --hidden must be comma-separated positive integers like 512,256,128; got '512,,128'
    >>> check_out_dir("/dev/null")
    Traceback (most recent call last):
    ...
    gradscope.errors.GradscopeError: --out /dev/null is not a folder: choose a folder to write the runs and report in
"""

from __future__ import annotations

import datetime as _dt
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from gradscope.errors import GradscopeError
from gradscope.models.mlp import SEED_HIDDEN

OPTIMIZERS = ("sgd", "adam")
FRAMEWORKS = ("keras", "tf1")


@dataclass
class TrainConfig:
    """Settings shared by every run of one ``analyze`` or ``sweep`` (the CLI's defaults are these)."""

    hidden: list = field(default_factory=lambda: list(SEED_HIDDEN))
    optimizer: str = "sgd"
    lr: float = 0.1
    batch_size: int = 100
    epochs: int = 10
    seed: int = 0
    val_split: float = 0.0
    framework: str = "keras"
    full_batch: bool = False

    def check(self) -> None:
        """Raise :class:`GradscopeError` for settings that cannot train."""
        if self.optimizer not in OPTIMIZERS:
            raise GradscopeError(f"unknown optimizer {self.optimizer!r}; choose one of {OPTIMIZERS}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise GradscopeError(f"--lr must be a positive number; got {self.lr}")
        if self.batch_size < 1:
            raise GradscopeError(f"--batch-size must be at least 1; got {self.batch_size}")
        if self.epochs < 1:
            raise GradscopeError(f"--epochs must be at least 1; got {self.epochs}")
        if not 0 <= self.val_split < 1:
            raise GradscopeError(f"--val-split must be in [0, 1); got {self.val_split}")
        if self.framework not in FRAMEWORKS:
            raise GradscopeError(f"unknown framework {self.framework!r}; choose one of {FRAMEWORKS}")
        if not 0 <= self.seed < 2 ** 32:
            raise GradscopeError(f"--seed must be a whole number from 0 to 2**32 - 1; got {self.seed}")


DEFAULTS = TrainConfig()
HE2015_DEPTHS = (10, 20, 30)  #: ``paper he2015``: numbers of hidden layers tried
LE2015_LENGTHS = (30, 100)  #: ``paper le2015``: sequence lengths of the adding problem


def parse_lengths(text: str) -> list[int]:
    """``paper le2015 --lengths``: sequence lengths of at least 2 steps.

    Example:
        >>> parse_lengths("30,100")
        [30, 100]
        >>> parse_lengths("1,30")
        Traceback (most recent call last):
        ...
        gradscope.errors.GradscopeError: --lengths needs sequence lengths of at least 2 steps, not 1,30
    """
    lengths = parse_hidden(text, "--lengths", ",".join(map(str, LE2015_LENGTHS)))
    if any(n < 2 for n in lengths):
        raise GradscopeError(f"--lengths needs sequence lengths of at least 2 steps, not {text}")
    return lengths


def parse_hidden(text: str, option: str = "--hidden", example: str = "512,256,128",
                 allow_none: bool = False) -> list[int]:
    """Parse ``"512,256,128"`` into ``[512, 256, 128]`` (and, with ``allow_none``, ``"none"`` into
    ``[]``: no hidden layer, i.e. softmax regression).

    Raises:
        GradscopeError: if a value is not a positive integer (naming ``option``).

    Example:
        >>> parse_hidden("none", allow_none=True)
        []
    """
    if allow_none and str(text).strip().lower() in ("none", "0", ""):
        return []
    message = (f"{option} must be comma-separated positive integers like {example}"
               + (" (or none, for no hidden layer)" if allow_none else "") + f"; got {text!r}")
    try:
        sizes = [int(s) for s in str(text).replace(" ", "").split(",")]
    except ValueError:
        raise GradscopeError(message) from None
    if any(s <= 0 for s in sizes):
        raise GradscopeError(message)
    return sizes


def check_out_dir(path) -> Path:
    """Check, without creating anything, that an output folder can be created and written.

    Raises:
        GradscopeError: naming the folder and what is wrong with it.
    """
    import os
    import tempfile

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise GradscopeError(f"--out {path} is not a folder: choose a folder to write the runs and report in")
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise GradscopeError(f"--out {path}: {probe} is a file, not a folder; choose another --out")
    try:
        tempfile.TemporaryDirectory(dir=probe).cleanup()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise GradscopeError(f"--out {path} cannot be written (creating a folder in {probe}: {reason}); "
                             "choose a folder you can write") from None
    if not os.access(probe, os.W_OK | os.X_OK):  # pragma: no cover - root passes the probe above anyway
        raise GradscopeError(f"--out {path} cannot be written (no permission in {probe}); choose a folder you can write")
    return path


def run_name(act: str, init: str) -> str:
    return f"{act}-{init}"


def default_out_dir(base="reports", prefix="analyze") -> Path:
    """A new folder under ``base`` named after the command and the time."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(base) / f"{prefix}-{stamp}"
    n = 1
    while out.exists():
        n += 1
        out = Path(base) / f"{prefix}-{stamp}-{n}"
    return out


def command_line() -> str:
    """The command that started this process, for the record."""
    prog = Path(sys.argv[0]).name if sys.argv else "gradscope"
    return " ".join([prog, *sys.argv[1:]])
