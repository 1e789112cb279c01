"""Curve evaluation: a million-step curve in one vectorized call against a per-step loop.

Also times `plot_schedule` over a million steps (evaluation, drawing and saving a
PNG): the gallery and the `plot` command rely on it taking well under a second.
"""

from __future__ import annotations

import io

import tensorflow as tf

from benchmarks._families import Window, every_family
from benchmarks._timing import best_of
from schedules import CyclicSparsity, StepSparsity
from schedules.evaluation import evaluate_schedule
from schedules.plotting import plot_schedule


def schedules_under_test(steps: int) -> dict:
    """Label -> `Case`: every family from step 0 to 90% of `steps`, 10 stairs, 5 cycles."""
    window = Window(final_sparsity=0.9, begin_step=0, end_step=(steps * 9) // 10, frequency=100)
    ramp = window.ramp()
    return every_family(
        window,
        {
            "step": ("StepSparsity (10 stairs)", StepSparsity.uniform(**ramp, num_stages=10)),
            "cyclic": ("CyclicSparsity (5 cycles)", CyclicSparsity(**ramp, num_cycles=5, frequency=100)),
        },
    )


def run(quick: bool = False) -> list[dict]:
    steps = 10_000 if quick else 1_000_000
    # Quick: every family once through the harness, at sizes that only check it works.
    loop_steps = 20 if quick else 2_000
    repeats = 1 if quick else 5
    rows = []
    for name, case in schedules_under_test(steps).items():
        schedule = case.schedule
        vector_seconds = best_of(lambda s=schedule: evaluate_schedule(s, steps), repeats)
        graph_call = tf.function(schedule)
        graph_call(tf.constant(1, tf.int64))  # trace once

        def loop(call=graph_call):
            for step in range(loop_steps):
                call(tf.constant(step, tf.int64))

        loop_seconds = best_of(loop, 1 if quick else 2)
        row = {
            "schedule": name,
            "family": case.family,
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
        f"{'schedule':<40}{'steps':>10}{'vectorized steps/s':>20}{'loop steps/s':>14}{'speedup':>9}{'plot s':>8}",
    ]
    for r in rows:
        plot = f"{r['plot_seconds']:>8.2f}" if "plot_seconds" in r else f"{'-':>8}"
        lines.append(
            f"{r['schedule']:<40}{r['steps']:>10}{r['vectorized_steps_per_s']:>20.3g}"
            f"{r['loop_steps_per_s']:>14.3g}{r['speedup']:>9.0f}{plot}"
        )
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(format_rows(run()))
