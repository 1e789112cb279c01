"""The gallery: a picture of every family's shapes, of composition, and a comparison (`plots/`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import tf_keras

from schedules import catalog
from schedules.allocation import allocate
from schedules.composition import ScaledSparsity, SequentialSparsity
from schedules.cubic import CubicSparsity
from schedules.cyclic import CyclicSparsity
from schedules.models import build_cnn
from schedules.plotting import plot_allocation, plot_schedule, plot_schedules, save_figure

__all__ = ["COMPARED", "PICTURES", "gallery"]

#: The window every picture shares.
BASE = {"initial_sparsity": 0.0, "final_sparsity": 0.9, "begin_step": 100, "end_step": 1000, "frequency": 50}

#: Picture name -> {curve label: the family's values}; `_family` draws another family in the same
#: picture, `_dashed` dashes its line.
PICTURES: dict[str, dict[str, dict[str, Any]]] = {
    "exponential": {
        "exponential": {},
        "exponential_rate: rate 0.15, begin_step=0, no end": {
            "_family": "exponential_rate",
            "rate": 0.15,
            "begin_step": 0,
        },
    },
    "cubic": {"cubic": {}, "tfmot PolynomialDecay(power=3)": {"_family": "polynomial", "_dashed": True}},
    "step": {"step: linear, 4 stages": {}, "step: geometric, 4 stages": {"spacing": "geometric"}},
    "cyclic": {"cyclic: 3 cycles": {"num_cycles": 3}, "cyclic: 5 cycles, power 2": {"num_cycles": 5, "power": 2}},
    "power": {
        "power 3, fast_early (Zhu & Gupta)": {},
        "power 3, fast_late (INC cube)": {"orientation": "fast_late"},
        "power 1/3, fast_late (SparseML inverse_cubic)": {"power": 1 / 3, "orientation": "fast_late"},
        "power 1 (linear)": {"power": 1},
    },
    "cosine": {
        "cosine: s_curve": {},
        "cosine: fast_late (INC cos)": {"shape": "fast_late"},
        "cosine: fast_early": {"shape": "fast_early"},
    },
    "one_cycle": {"one_cycle (alpha 14, beta 6)": {}, "one_cycle (alpha 10, beta 5)": {"alpha": 10, "beta": 5}},
    "alternating": {"alternating: 150 sparse / 150 dense": {"sparse_steps": 150, "dense_steps": 150}},
}

#: The families of the comparison picture.
COMPARED = ("exponential", "cubic", "step", "cyclic", "power", "cosine", "one_cycle")


def gallery(directory: str | os.PathLike = "plots") -> list[Path]:
    """Writes one picture per family, a picture of composition, one of allocations and a comparison into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for family, variants in PICTURES.items():
        ax = None
        for label, overrides in variants.items():
            overrides = dict(overrides)
            style: dict[str, Any] = {"linestyle": "--", "linewidth": 2.4} if overrides.pop("_dashed", False) else {}
            schedule = catalog.build(overrides.pop("_family", family), overrides, shared=BASE)
            ax = plot_schedule(schedule, 1100, ax=ax, label=label, **style)
        assert ax is not None, family  # every family has pictures
        ax.legend(loc="lower right")
        ax.set_title(f"{family}: sparsity per step, dots at pruning steps")
        path = directory / f"{family}.png"
        save_figure(ax, path, dpi=110)
        written.append(path)
    ax = plot_schedule(_composition_example(), 1100, label="cyclic (2 cycles) to 0.8, then cubic to 0.9")
    ax = plot_schedule(
        ScaledSparsity(catalog.build("cubic", BASE), factor=0.5), 1100, ax=ax, label="cubic to 0.9, scaled by 0.5"
    )
    ax.legend(loc="lower right")
    ax.set_title("composition: SequentialSparsity and ScaledSparsity")
    path = directory / "composition.png"
    save_figure(ax, path, dpi=110)
    written.append(path)
    cnn = build_cnn(tf_keras)
    shares = [allocate(cnn, 0.98, method) for method in ("uniform", "erdos_renyi", "erk")]
    ax = plot_allocation(shares, title="the demo CNN at 0.98 overall: sparsity per layer by allocation")
    path = directory / "allocation.png"
    save_figure(ax, path, dpi=110)
    written.append(path)
    comparison = {name: catalog.build(name, shared=BASE) for name in COMPARED}
    ax = plot_schedules(comparison, 1100, title="0 -> 0.9 over steps 100..1000, every 50 steps")
    path = directory / "comparison.png"
    save_figure(ax, path, dpi=110)
    written.append(path)
    return written


def _composition_example() -> SequentialSparsity:
    """Two cycles up to 0.8 over steps 100..599, then a cubic finish to 0.9 at step 1000."""
    cycles = CyclicSparsity(0.0, 0.8, begin_step=100, end_step=599, num_cycles=2, frequency=50)
    finish = CubicSparsity(0.8, 0.9, begin_step=600, end_step=1000, frequency=50)
    return SequentialSparsity([cycles, finish], boundaries=[600])
