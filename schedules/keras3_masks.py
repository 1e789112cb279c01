"""The masks of a Keras 3 model pruned by `PruningCallback`, saved inside its `.keras` file.

The masks decide which weights stay at zero, and they cannot be read back from
the kernels: a kept weight can be exactly zero too (a dead ReLU unit's weights,
after a cycle's restart to sparsity 0). So the callback leaves its masks on the
model as a `PruningMasks` object, which `model.save("x.keras")` writes into the
archive as `assets/_pruning_masks/masks.npz` (Keras saves the assets of every
object the model holds). `keras.models.load_model` ignores that file: the model
it returns is plain, and predicts what the pruned model did (the zeros are in
the kernels). `load_model` here reloads the masks with it, so that a new
`PruningCallback` resumes exactly where the saved run stood.
"""

from __future__ import annotations

import io
import os
import zipfile
from typing import Any

import keras
import numpy as np

try:  # Keras' base of what `model.save` walks; not public API (Keras 3.15 here), so guarded
    from keras.src.saving.keras_saveable import KerasSaveable
except ImportError:  # pragma: no cover - another Keras: the masks are not saved, and a resumed run warns
    KerasSaveable = object

__all__ = ["ATTRIBUTE", "PruningMasks", "load_model", "saved_masks"]

#: The model's attribute that holds its `PruningMasks` (and so the folder of its assets in a `.keras` archive).
ATTRIBUTE = "_pruning_masks"
_FILE = "masks.npz"


class PruningMasks(KerasSaveable):
    """Each pruned layer's masks (1 kept, 0 pruned), one per pruned kernel, by layer name.

    The masks are the callback's variables while it prunes, NumPy arrays once
    reloaded. `model.save` calls `save_assets` (Keras' hook for files beside
    the weights), which writes them to one compressed `.npz`, as booleans
    under `"<layer>/<kernel index>"`.
    """

    def __init__(self, masks: dict[str, list[Any]]) -> None:
        self.masks = masks

    def _obj_type(self) -> str:
        # Keras walks the attributes of an object of a type it knows when it saves; this one holds no
        # other Keras object, so any of its types will do ("Loss" has no attributes to skip).
        return "Loss"

    def save_assets(self, dir_path: str) -> None:
        arrays = {
            f"{name}/{i}": np.asarray(keras.ops.convert_to_numpy(mask)) != 0
            for name, masks in self.masks.items()
            for i, mask in enumerate(masks)
        }
        np.savez_compressed(os.path.join(dir_path, _FILE), **arrays)


def saved_masks(model: keras.Model) -> PruningMasks | None:
    """The masks `model` carries (left by a `PruningCallback`, or reloaded by `load_model`), or None."""
    masks = getattr(model, ATTRIBUTE, None)
    return masks if isinstance(masks, PruningMasks) else None


def load_model(path: str | os.PathLike, **kwargs: Any) -> keras.Model:
    """`keras.models.load_model(path)`, with the masks a `PruningCallback` saved in the file.

    A new `PruningCallback` given the same arguments then resumes the run
    exactly: the same masks, whatever step the model was saved at. A file
    without masks (saved without the callback, or by schedules 0.1) loads as
    with `keras.models.load_model`, and the callback falls back to the kernels'
    zeros, with a warning.

    Args:
      path: a `.keras` file (or the folder `model.save(path, zipped=False)` writes).
      **kwargs: passed to `keras.models.load_model`.
    """
    model = keras.models.load_model(path, **kwargs)
    arrays = _read(path)
    if arrays is not None:
        masks: dict[str, list[np.ndarray]] = {}
        for key in sorted(arrays, key=lambda key: (key.rpartition("/")[0], int(key.rpartition("/")[2]))):
            masks.setdefault(key.rpartition("/")[0], []).append(arrays[key])
        setattr(model, ATTRIBUTE, PruningMasks(masks))
    return model


def _read(path: str | os.PathLike) -> dict[str, np.ndarray] | None:
    member = f"assets/{ATTRIBUTE}/{_FILE}"
    if os.path.isdir(path):
        file = os.path.join(path, *member.split("/"))
        if not os.path.exists(file):
            return None
        with np.load(file) as saved:
            return dict(saved)
    with zipfile.ZipFile(path) as archive:
        if member not in archive.namelist():
            return None
        with np.load(io.BytesIO(archive.read(member))) as saved:
            return dict(saved)
