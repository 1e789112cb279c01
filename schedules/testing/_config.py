"""The checks on the schedule's config: "config" (a copy from it) and "registration" (tf-keras finds the class)."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow_model_optimization as tfmot
import tf_keras

from schedules.testing._common import attempt, evaluate, failure, first_difference, json_config, same_values

#: tfmot's wrapper resolves its two built-in schedules itself, with exactly these
#: `custom_objects` (`PruneLowMagnitude.from_config`); any other class must be
#: registered with tf-keras.
_TFMOT_BUILT_INS = {
    "ConstantSparsity": tfmot.sparsity.keras.ConstantSparsity,
    "PolynomialDecay": tfmot.sparsity.keras.PolynomialDecay,
}


def check_config(schedule: Any, steps: np.ndarray) -> None:
    check = "config"
    config = json_config(check, schedule)
    cls = type(schedule)
    action = f"{cls.__name__}.from_config(get_config()['config'])"
    copy = attempt(check, action, lambda: cls.from_config(config["config"]))
    if type(copy) is not cls:
        raise failure(check, f"{action} returned a {type(copy).__qualname__}, expected a {cls.__qualname__}")
    copy_config = json_config(check, copy)
    difference = first_difference(copy_config, config)
    if difference:
        raise failure(check, f"the config of the copy rebuilt by {action} differs: {difference}")
    same_values(
        check, f"the copy rebuilt by {action}", evaluate(check, copy, steps), evaluate(check, schedule, steps), steps
    )


def check_registration(schedule: Any) -> None:
    check = "registration"
    cls = type(schedule)
    config = json_config(check, schedule)
    class_name = config["class_name"]
    if _TFMOT_BUILT_INS.get(class_name) is cls:
        custom_objects = {class_name: cls}  # as tfmot's wrapper passes them
    else:
        custom_objects = {}
        found = tf_keras.utils.get_registered_object(class_name)
        if found is not cls:
            raise failure(
                check,
                f"class_name {class_name!r} from get_config() {_unresolved(cls, found)}; "
                "tfmot's wrapper could not reload it",
            )
    action = "tf_keras.utils.deserialize_keras_object(get_config(), module_objects={}, custom_objects={})"
    restored = attempt(
        check,
        action,
        lambda: tf_keras.utils.deserialize_keras_object(config, module_objects={}, custom_objects=custom_objects),
    )
    if type(restored) is not cls:
        raise failure(check, f"{action} returned {restored!r}, expected a {cls.__qualname__}")


def _unresolved(cls: type, found: Any) -> str:
    """Why the class_name in the config of a `cls` resolves to `found` (not `cls`), and what to do."""
    if found is not None:
        return f"resolves to {found.__module__}.{found.__qualname__}, not to {cls.__module__}.{cls.__qualname__}"
    registered_name = tf_keras.utils.get_registered_name(cls)
    if tf_keras.utils.get_registered_object(registered_name) is cls:
        return (
            f"is not the name {cls.__qualname__} is registered under, {registered_name!r}: "
            "write class_name = tf_keras.utils.get_registered_name(type(self)) in get_config()"
        )
    return (
        f"does not resolve: {cls.__qualname__} is not registered with tf-keras. Decorate it with "
        "@tf_keras.utils.register_keras_serializable(package=...) (tf-keras, not Keras 3) and write "
        "class_name = tf_keras.utils.get_registered_name(type(self)) in get_config()"
    )
