"""The one list of schedule families: every class registered with `schedules.register`.

A family is a schedule class under a short name (the one the command line
uses): ours, registered by `register` when their module is imported, and
tfmot's two built-ins. The catalog, the command line, composition (which
rebuilds child schedules from their configs) and the tests read this list;
nothing else lists the families.

>>> import schedules
>>> family("cubic").cls.__name__, family("cubic").parameters()[:4]
('CubicSparsity', ['initial_sparsity', 'final_sparsity', 'begin_step', 'end_step'])
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import TypeVar, overload

import tensorflow_model_optimization as tfmot
import tf_keras

from schedules._tfmot import PruningSchedule

__all__ = ["Family", "add", "families", "family", "register", "schedule_classes"]

_S = TypeVar("_S", bound=PruningSchedule)


@dataclasses.dataclass(frozen=True)
class Family:
    """A schedule class under its short name.

    Attributes:
      name: the short name (`"cubic"`), as the command line takes it.
      cls: the schedule class.
      forms: the callables that build it from plain arguments, tried in
        order by `form_for` (the constructor; for `StepSparsity` also
        `StepSparsity.uniform`).
      command_line: whether plain command-line values can build it (not the
        compositions, whose arguments are other schedules).
    """

    name: str
    cls: type[PruningSchedule]
    forms: tuple[Callable[..., PruningSchedule], ...]
    command_line: bool = True

    @property
    def summary(self) -> str:
        """The first line of the class docstring."""
        return (inspect.getdoc(self.cls) or self.cls.__name__).splitlines()[0]

    def parameters(self) -> list[str]:
        """The arguments of every form, in order, each once."""
        names: list[str] = []
        for form in self.forms:
            names += [name for name in form_parameters(form) if name not in names]
        return names

    def form_for(self, given: set[str]) -> Callable[..., PruningSchedule]:
        """The first form that takes every argument in `given`.

        Raises:
          ValueError: no form takes them all; the message names the family
            and the arguments it does not take.
        """
        for form in self.forms:
            if given <= set(form_parameters(form)):
                return form
        unknown = sorted(given - set(self.parameters()))
        if unknown:
            raise ValueError(
                f"Schedule family {self.name!r} ({self.cls.__name__}) takes no parameter "
                f"{', '.join(map(repr, unknown))}. Its parameters: {', '.join(self.parameters())}"
            )
        forms = "; ".join(f"{_form_name(form)}({', '.join(form_parameters(form))})" for form in self.forms)
        raise ValueError(
            f"Schedule family {self.name!r} ({self.cls.__name__}) takes no parameters "
            f"{', '.join(map(repr, sorted(given)))} together. Its forms: {forms}"
        )


def _form_name(form: Callable) -> str:
    return form.__name__ if isinstance(form, type) else form.__qualname__


def form_signature(form: Callable) -> dict[str, inspect.Parameter]:
    """The parameters of a constructor or classmethod by name, without `self`/`cls`."""
    return {name: p for name, p in inspect.signature(form).parameters.items() if name not in ("self", "cls")}


def form_parameters(form: Callable) -> list[str]:
    """The parameter names of a constructor or classmethod, without `self`/`cls`."""
    return list(form_signature(form))


_FAMILIES: dict[str, Family] = {}


def add(cls: type, name: str, *, forms: tuple[str, ...] = ("__init__",), command_line: bool = True) -> None:
    """Adds `cls` as family `name`; `forms` names its building methods (`"__init__"` is the class itself).

    A class defined again (a notebook cell run twice, a module reloaded) replaces its earlier
    definition under the same name, as tf-keras' registration does.

    Raises:
      ValueError: `name` is taken by another class, or `cls` is registered under another name.
    """
    for other in _FAMILIES.values():
        same_class = other.cls is cls or _qualified(other.cls) == _qualified(cls)  # or its redefinition
        if (other.name == name) != same_class:
            raise ValueError(f"Schedule family {name!r} ({cls.__name__}) clashes with {other.name!r} ({other.cls})")
    built = tuple(cls if form == "__init__" else getattr(cls, form) for form in forms)
    _FAMILIES[name] = Family(name, cls, built, command_line)


@overload
def register(
    cls: type[_S],
    *,
    name: str | None = None,
    package: str | None = None,
    forms: tuple[str, ...] = ("__init__",),
    command_line: bool = True,
) -> type[_S]: ...


@overload
def register(
    cls: None = None,
    *,
    name: str | None = None,
    package: str | None = None,
    forms: tuple[str, ...] = ("__init__",),
    command_line: bool = True,
) -> Callable[[type[_S]], type[_S]]: ...


def register(
    cls: type[_S] | None = None,
    *,
    name: str | None = None,
    package: str | None = None,
    forms: tuple[str, ...] = ("__init__",),
    command_line: bool = True,
) -> type[_S] | Callable[[type[_S]], type[_S]]:
    """Registers a schedule class with tf-keras (where tfmot looks it up when a model
    is loaded) and as a family in this registry.

    Use it as `@register` or `@register(name="linear")`.

    Args:
      cls: the class (when used as `@register` without arguments).
      name: the family's short name for the command line and the catalog;
        default: the class name in snake case, without `Sparsity`
        (`LinearSparsity` -> `"linear"`).
      package: the Keras package it is registered under, the first part of
        the `class_name` saved with a model (`"mylib>LinearSparsity"`);
        default: the top-level package of the class's module (`"schedules"`
        for ours).
      forms: the methods that build it from plain values, tried in that
        order by the command line (`"__init__"` is the constructor).
      command_line: whether plain command-line values can build it (not
        for schedules whose arguments are other schedules).

    Returns:
      The class itself (or a decorator, without `cls`).
    """

    def decorate(cls: type[_S]) -> type[_S]:
        family_name = name if name is not None else _snake_case(cls.__name__.removesuffix("Sparsity"))
        add(cls, family_name, forms=forms, command_line=command_line)  # first: it may refuse
        keras_package = package if package is not None else cls.__module__.split(".")[0]
        return tf_keras.utils.register_keras_serializable(package=keras_package)(cls)

    return decorate if cls is None else decorate(cls)


def _snake_case(text: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(text))


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def families(*, command_line: bool | None = None) -> list[Family]:
    """Every family, ours by name and then tfmot's two; with `command_line`, only those that can (or cannot)
    be built from command-line values."""
    ordered = sorted(_FAMILIES.values(), key=lambda f: (f.cls.__module__.startswith("tensorflow_model"), f.name))
    return [f for f in ordered if command_line is None or f.command_line == command_line]


def family(name: str) -> Family:
    """The family called `name`.

    Raises:
      ValueError: no such family; the message lists the known names.
    """
    if name not in _FAMILIES:
        known = ", ".join(f.name for f in families())
        raise ValueError(f"Unknown schedule family {name!r}. Choose one of: {known}")
    return _FAMILIES[name]


def schedule_classes() -> dict[str, type]:
    """Every registered class by its class name and by its Keras registered name."""
    classes: dict[str, type] = {}
    for f in _FAMILIES.values():
        classes[f.cls.__name__] = f.cls
        classes[tf_keras.utils.get_registered_name(f.cls)] = f.cls
    return classes


add(tfmot.sparsity.keras.PolynomialDecay, "polynomial")
add(tfmot.sparsity.keras.ConstantSparsity, "constant")
