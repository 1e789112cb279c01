"""Curve evaluation: a million-step curve in one vectorized call against a per-step loop.

Also times `plot_schedule` over a million steps (evaluation, drawing and saving a
PNG): the gallery and the `plot` command rely on it taking well under a second.
"""

from __future__ import annotations

import io

import tensorflow as tf
import tensorflow_model_optimization as tfmot

from benchmarks._timing import best_of
from schedules import CubicSparsity, CyclicSparsity, ExponentialSparsity, StepSparsity
from schedules.evaluation import evaluate_schedule
from schedules.plotting import plot_schedule


def schedules_under_test(steps: int) -> dict:
    end = (steps * 9) // 10
    return {
        "ExponentialSparsity": ExponentialSparsity(0.0, 0.9, 0, end, 100),
        "CubicSparsity": CubicSparsity(0.0, 0.9, 0, end, 100),
        "StepSparsity": StepSparsity.uniform(0.0, 0.9, 0, end, 10),
        "CyclicSparsity": CyclicSparsity(0.0, 0.9, 0, end, 5, 100),
        "tfmot PolynomialDecay": tfmot.sparsity.keras.PolynomialDecay(0.0, 0.9, 0, end, frequency=100),
        "tfmot ConstantSparsity": tfmot.sparsity.keras.ConstantSparsity(0.9, 0, frequency=100),
    }


def run(quick: bool = False) -> list[dict]:
    steps = 10_000 if quick else 1_000_000
    loop_steps = 200 if quick else 2_000
    repeats = 2 if quick else 5
    rows = []
    for name, schedule in schedules_under_test(steps).items():
        vector_seconds = best_of(lambda s=schedule: evaluate_schedule(s, steps), repeats)
        graph_call = tf.function(schedule)
        graph_call(tf.constant(1, tf.int64))  # trace once

        def loop(call=graph_call):
            for step in range(loop_steps):
                call(tf.constant(step, tf.int64))

        loop_seconds = best_of(loop, 1 if quick else 2)
        row = {
            "schedule": name,
            "steps": steps + 1,
            "vectorized_steps_per_s": (steps + 1) / vector_seconds,
            "loop_steps_per_s": loop_steps / loop_seconds,
        }
        row["speedup"] = row["vectorized_steps_per_s"] / row["loop_steps_per_s"]
        if not name.startswith("tfmot"):
            row["plot_seconds"] = best_of(lambda s=schedule: _plot_to_png(s, steps), max(1, repeats // 2))
        rows.append(row)
    return rows


def _plot_to_png(schedule, steps: int) -> None:
    ax = plot_schedule(schedule, steps)
    ax.figure.savefig(io.BytesIO(), format="png", dpi=80)


def format_rows(rows: list[dict]) -> str:
    lines = [
        f"{'schedule':<24}{'steps':>10}{'vectorized steps/s':>20}{'loop steps/s':>14}{'speedup':>9}{'plot s':>8}",
    ]
    for r in rows:
        plot = f"{r['plot_seconds']:>8.2f}" if "plot_seconds" in r else f"{'-':>8}"
        lines.append(
            f"{r['schedule']:<24}{r['steps']:>10}{r['vectorized_steps_per_s']:>20.3g}"
            f"{r['loop_steps_per_s']:>14.3g}{r['speedup']:>9.0f}{plot}"
        )
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(format_rows(run()))
