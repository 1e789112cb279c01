"""Build any schedule family by name from plain parameters (for the command line).

Families: ours (`exponential`, `cubic`, `step`, `cyclic`, `power`, `cosine`,
`one_cycle`, `alternating`) and tfmot's two built-ins (`polynomial` =
`PolynomialDecay`, `constant` = `ConstantSparsity`).
Each takes the parameters it understands from a shared set and ignores the
rest; a spec string ``"cyclic:num_cycles=2,final_sparsity=0.9"`` overrides the
shared values for one schedule.

>>> build("cyclic", {**DEFAULTS, "num_cycles": 2})
CyclicSparsity(initial_sparsity=0.0, final_sparsity=0.8, begin_step=0, end_step=1000, num_cycles=2, \
frequency=100, power=3)
>>> parse_spec("step:boundaries=100;200,sparsities=0.5;0.8")
('step', {'boundaries': [100, 200], 'sparsities': [0.5, 0.8]})
"""

from __future__ import annotations

from typing import Any

from schedules import (
    AlternatingSparsity,
    CosineSparsity,
    CubicSparsity,
    CyclicSparsity,
    ExponentialSparsity,
    OneCycleSparsity,
    PolynomialSparsity,
    StepSparsity,
)

__all__ = ["DEFAULTS", "FAMILIES", "PARAMETERS", "build", "parse_spec"]

#: Every parameter the families share, with its type and default.
PARAMETERS: dict[str, tuple[type, Any, str]] = {
    "initial_sparsity": (float, 0.0, "sparsity at the start of the window (of each cycle)"),
    "final_sparsity": (float, 0.8, "sparsity at the end of the window (of each cycle); constant: its sparsity"),
    "begin_step": (int, 0, "first step of the window"),
    "end_step": (int, 1000, "last step of the window"),
    "frequency": (int, 100, "prune every FREQUENCY steps from begin_step (cyclic: from each cycle start)"),
    "num_cycles": (int, 3, "cyclic: number of cycles"),
    "power": (float, 3, "cyclic, power, polynomial: exponent of the ramp"),
    "orientation": (str, "fast_early", "power: 'fast_early' (concave, Zhu & Gupta) or 'fast_late' (convex)"),
    "shape": (str, "s_curve", "cosine: 's_curve', 'fast_late' or 'fast_early'"),
    "alpha": (float, 14.0, "one_cycle: steepness of the logistic"),
    "beta": (float, 6.0, "one_cycle: offset of the logistic (steepest at progress beta / alpha)"),
    "sparse_steps": (int, 100, "alternating: length of each sparse phase"),
    "dense_steps": (int, 100, "alternating: length of each dense phase"),
    "num_stages": (int, 4, "step: number of uniform stairs"),
    "spacing": (str, "linear", "step: 'linear' or 'geometric' stairs"),
    "rate": (float, None, "exponential: per-event rate; makes it open-ended (end_step ignored, final = cap)"),
    "boundaries": (list, None, "step: explicit stair steps, separated by ';' (with sparsities)"),
    "sparsities": (list, None, "step: explicit stair sparsities, separated by ';' (with boundaries)"),
}

DEFAULTS: dict[str, Any] = {name: default for name, (_, default, _) in PARAMETERS.items()}

#: Family name -> a one-line description.
FAMILIES: dict[str, str] = {
    "exponential": "ExponentialSparsity: kept fraction decays geometrically",
    "cubic": "CubicSparsity: Zhu & Gupta gradual pruning",
    "step": "StepSparsity: staircase (uniform stairs, or explicit boundaries/sparsities)",
    "cyclic": "CyclicSparsity: repeated polynomial ramps",
    "power": "PolynomialSparsity: any power, fast early or fast late",
    "cosine": "CosineSparsity: cosine ramp (S-curve or quarter wave)",
    "one_cycle": "OneCycleSparsity: logistic ramp of One-Cycle Pruning",
    "alternating": "AlternatingSparsity: AC/DC sparse and dense phases, sparse from end_step",
    "polynomial": "tfmot PolynomialDecay (power, frequency)",
    "constant": "tfmot ConstantSparsity (final_sparsity from begin_step, every frequency steps)",
}


def build(family: str, params: dict[str, Any]):
    """The schedule of `family` with `params` (missing ones take `DEFAULTS`).

    Raises:
      ValueError, TypeError: unknown family or invalid parameters (from the
        schedule's own validation).
    """
    import tensorflow_model_optimization as tfmot

    p = {**DEFAULTS, **params}
    ramp = (p["initial_sparsity"], p["final_sparsity"], p["begin_step"], p["end_step"])
    if family == "exponential":
        if p["rate"] is not None:
            return ExponentialSparsity.from_rate(
                p["rate"], p["final_sparsity"], p["begin_step"], p["frequency"], p["initial_sparsity"]
            )
        return ExponentialSparsity(*ramp, frequency=p["frequency"])
    if family == "cubic":
        return CubicSparsity(*ramp, frequency=p["frequency"])
    if family == "step":
        if p["boundaries"] is not None or p["sparsities"] is not None:
            return StepSparsity(p["boundaries"] or [], p["sparsities"] or [])
        return StepSparsity.uniform(*ramp, num_stages=p["num_stages"], spacing=p["spacing"])
    if family == "cyclic":
        return CyclicSparsity(*ramp, num_cycles=p["num_cycles"], frequency=p["frequency"], power=p["power"])
    if family == "power":
        return PolynomialSparsity(*ramp, frequency=p["frequency"], power=p["power"], orientation=p["orientation"])
    if family == "cosine":
        return CosineSparsity(*ramp, frequency=p["frequency"], shape=p["shape"])
    if family == "one_cycle":
        return OneCycleSparsity(*ramp, frequency=p["frequency"], alpha=p["alpha"], beta=p["beta"])
    if family == "alternating":
        return AlternatingSparsity(
            p["final_sparsity"], p["begin_step"], p["end_step"], p["sparse_steps"], p["dense_steps"]
        )
    if family == "polynomial":
        return tfmot.sparsity.keras.PolynomialDecay(*ramp, power=p["power"], frequency=p["frequency"])
    if family == "constant":
        return tfmot.sparsity.keras.ConstantSparsity(
            p["final_sparsity"], p["begin_step"], p["end_step"], frequency=p["frequency"]
        )
    raise ValueError(f"Unknown schedule family {family!r}. Choose one of: {', '.join(FAMILIES)}")


def convert(name: str, text: str) -> Any:
    """Converts one parameter from text, with a message naming it on failure."""
    if name not in PARAMETERS:
        raise ValueError(f"Unknown parameter {name!r}. Known parameters: {', '.join(PARAMETERS)}")
    kind = PARAMETERS[name][0]
    try:
        if kind is list:
            item = int if name == "boundaries" else float
            return [item(part) for part in text.split(";") if part.strip()]
        return kind(text)
    except ValueError:
        expected = {int: "an integer", float: "a number", list: "numbers separated by ';'"}.get(kind, "text")
        raise ValueError(f"Parameter `{name}` must be {expected}. Received: {name}={text!r}") from None


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Parses ``"family"`` or ``"family:key=value,key=value"``."""
    family, _, rest = spec.partition(":")
    family = family.strip()
    if family not in FAMILIES:
        raise ValueError(f"Unknown schedule family {family!r} in {spec!r}. Choose one of: {', '.join(FAMILIES)}")
    params: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, equals, value = item.partition("=")
        if not equals:
            raise ValueError(f"Expected key=value in {spec!r}, got {item!r}")
        key = key.strip().replace("-", "_")
        params[key] = convert(key, value.strip())
    return family, params
