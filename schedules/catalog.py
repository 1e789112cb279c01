"""Build any registered schedule family by name from plain values: the command line's view of the registry.

The families, their parameters, types and help texts all come from
`schedules.registry` (the registered classes, their signatures and the `Args:`
of their docstrings); this module adds only the command line's example values
(`DEFAULTS`) and the names it shares between families (`ALIASES`).

A spec ``"cyclic:num_cycles=2,final_sparsity=0.9"`` names a family and
overrides values for it; each key must be a parameter of that family.

>>> build("cyclic", {"num_cycles": 2})
CyclicSparsity(initial_sparsity=0.0, final_sparsity=0.8, begin_step=0, end_step=1000, num_cycles=2, \
frequency=100, power=3)
>>> parse_spec("step:boundaries=100;200,sparsities=0.5;0.8")
('step', {'boundaries': [100, 200], 'sparsities': [0.5, 0.8]})
>>> build("cubic", {"power": 2})
Traceback (most recent call last):
...
ValueError: Schedule family 'cubic' (CubicSparsity) takes no parameter 'power'. Its parameters: initial_sparsity, \
final_sparsity, begin_step, end_step, frequency
"""

from __future__ import annotations

import collections
import dataclasses
import inspect
import re
from collections.abc import Mapping
from typing import Any

from schedules import registry

__all__ = ["ALIASES", "DEFAULTS", "Parameter", "build", "command_line_families", "parameters", "parse_spec"]


#: Example values for the command line, for the parameters a family needs and has no default for
#: (and a window shared by every family). A family's own defaults hold for the rest.
DEFAULTS: dict[str, Any] = {
    "initial_sparsity": 0.0,
    "final_sparsity": 0.8,
    "begin_step": 0,
    "end_step": 1000,
    "frequency": 100,
    "num_cycles": 3,
    "num_stages": 4,
    "sparse_steps": 100,
    "dense_steps": 100,
    "rate": 0.2,
}

#: A family's parameter -> the shared name it takes its value from: `--final-sparsity` sets
#: tfmot's `ConstantSparsity(target_sparsity)` and `ExponentialRateSparsity(max_sparsity)` too.
ALIASES: dict[str, str] = {"target_sparsity": "final_sparsity", "max_sparsity": "final_sparsity"}

#: How a parameter's annotation reads a value from text: the item type of a list, or a scalar type.
_TYPES: dict[str, type] = {"int": int, "float": float, "str": str}


@dataclasses.dataclass(frozen=True)
class Parameter:
    """A parameter some command-line family takes: its name, value type (`list` for a list of `item`) and help."""

    name: str
    kind: type
    item: type | None
    help: str
    families: tuple[str, ...]

    @property
    def default(self) -> Any:
        return DEFAULTS.get(self.name)

    def convert(self, text: str) -> Any:
        """The value of `text`, or a `ValueError` naming the parameter."""
        try:
            if self.kind is list:
                return [self.item(part) for part in text.split(";") if part.strip()]  # type: ignore[misc]
            return self.kind(text)
        except ValueError:
            expected = {int: "an integer", float: "a number", list: "numbers separated by ';'"}.get(self.kind, "text")
            raise ValueError(f"Parameter `{self.name}` must be {expected}. Received: {self.name}={text!r}") from None


def command_line_families() -> list[registry.Family]:
    """The families plain values can build (not the compositions)."""
    return registry.families(command_line=True)


def parameters() -> dict[str, Parameter]:
    """Every parameter of the command-line families, by shared name (read from the registry each call, so a
    family registered later is included)."""
    found: dict[str, dict[str, Any]] = {}
    for family in command_line_families():
        helps = _argument_help(family)
        for form in family.forms:
            for name, parameter in registry.form_signature(form).items():
                shared = ALIASES.get(name, name)
                entry = found.setdefault(shared, {"kind": _kind(shared, parameter), "helps": [], "families": []})
                if family.name not in entry["families"]:
                    entry["families"].append(family.name)
                if name in helps:
                    entry["helps"].append(helps[shared] if shared in helps else helps[name])
    # The parameters most families share first (the window), then the others as they appear;
    # the help text most families agree on.
    order = sorted(found, key=lambda name: -len(found[name]["families"]))
    return {
        name: Parameter(
            name,
            found[name]["kind"][0],
            found[name]["kind"][1],
            collections.Counter(found[name]["helps"]).most_common(1)[0][0] if found[name]["helps"] else "",
            tuple(found[name]["families"]),
        )
        for name in order
    }


def _kind(name: str, parameter: inspect.Parameter) -> tuple[type, type | None]:
    """The value type from the annotation (`float`, `Sequence[int]`, ...), else from the default."""
    annotation = parameter.annotation if isinstance(parameter.annotation, str) else ""
    annotation = annotation.replace(" | None", "")
    listed = re.fullmatch(r"(?:Sequence|list)\[(\w+)\]", annotation)
    if listed:
        return list, _TYPES.get(listed.group(1), float)
    if annotation in _TYPES:
        return _TYPES[annotation], None
    example = DEFAULTS.get(name, parameter.default)
    if isinstance(example, bool) or example is None or example is inspect.Parameter.empty:
        return str, None
    return (float if isinstance(example, float) else type(example)), None


def _argument_help(family: registry.Family) -> dict[str, str]:
    """`name: text` from the `Args:` sections of the class, constructor and form docstrings."""
    helps: dict[str, str] = {}
    sources = [family.cls, family.cls.__init__, *family.forms]
    for source in sources:
        doc = inspect.getdoc(source) or ""
        match = re.search(r"^Args:\n((?:[ \t]+.*\n?|\n)+)", doc, flags=re.MULTILINE)
        if not match:
            continue
        current = None
        for line in match.group(1).splitlines():
            item = re.match(r"^ {2}(\w+): (.*)", line)
            if item:
                current = item.group(1) if item.group(1) not in helps else None
                if current:
                    helps[current] = item.group(2)
            elif current and line.startswith("    "):
                helps[current] += " " + line.strip()
    return {name: " ".join(text.split()) for name, text in helps.items()}


def _accepted_names(family: registry.Family) -> dict[str, str]:
    """Each name a spec may use for this family -> the family's own parameter."""
    own = family.parameters()
    names = {name: name for name in own}
    for name in own:
        shared = ALIASES.get(name)
        if shared and shared not in own:
            names[shared] = name
    return names


def build(name: str, params: Mapping[str, Any] | None = None, *, shared: Mapping[str, Any] | None = None):
    """The schedule of family `name`.

    Args:
      name: a command-line family (`registry.families(command_line=True)`).
      params: values for this family; each key must be one of its parameters
        (or the shared name of one, `final_sparsity` for `target_sparsity`).
      shared: values for any family, used where this family takes them.
        The form (for `step`: `StepSparsity.uniform` or the explicit
        staircase) is the first that takes every value; when none takes the
        shared ones too, the first that takes every value of `params`.

    Unset parameters take `DEFAULTS`, then the family's own defaults.

    Raises:
      ValueError, TypeError: unknown family, a parameter the family does not
        take (naming both), a needed parameter missing, or invalid values
        (from the schedule's own validation).
    """
    family = registry.family(name)
    if not family.command_line:
        raise ValueError(
            f"Schedule family {name!r} ({family.cls.__name__}) is built from other schedules, not from plain values"
        )
    accepted = _accepted_names(family)
    given: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if key not in accepted:
            family.form_for({key})  # raises, naming the parameter and the family
        given[accepted[key]] = value
    known_shared = {accepted[key] for key in (shared or {}) if key in accepted}
    try:  # the first form that takes every value given, shared ones included ...
        form = family.form_for(set(given) | known_shared)
    except ValueError:  # ... or, if none does, every value given for this family
        form = family.form_for(set(given))
    taken = set(registry.form_parameters(form))
    for key, value in (shared or {}).items():
        if key in accepted and accepted[key] in taken and accepted[key] not in given:
            given[accepted[key]] = value
    values = {}
    for parameter_name, parameter in registry.form_signature(form).items():
        shared_name = ALIASES.get(parameter_name, parameter_name)
        if parameter_name in given:
            values[parameter_name] = given[parameter_name]
        elif shared_name in DEFAULTS:
            values[parameter_name] = DEFAULTS[shared_name]
        elif parameter.default is inspect.Parameter.empty:
            raise ValueError(f"Schedule family {name!r} needs the parameter {parameter_name!r}")
    return form(**values)


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Parses ``"family"`` or ``"family:key=value,key=value"``; lists are separated by ``;``.

    Raises:
      ValueError: an unknown family, a key the family does not take, or a value that does not convert.
    """
    name, _, rest = spec.partition(":")
    name = name.strip()
    family = registry.family(name)
    accepted = _accepted_names(family)
    known = parameters()
    params: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, equals, value = item.partition("=")
        if not equals:
            raise ValueError(f"Expected key=value in {spec!r}, got {item!r}")
        key = key.strip().replace("-", "_")
        if key not in accepted:
            family.form_for({key})  # raises, naming the parameter and the family
        params[key] = known[ALIASES.get(accepted[key], accepted[key])].convert(value.strip())
    return name, params
