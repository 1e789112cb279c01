"""The mask rules of `PruningCallback`: each kernel's mask at a sparsity, as NumPy arrays.

Three rules, named and oriented as tfmot's `prune_low_magnitude` arguments:

* **unstructured** (`mask_of`): keep the `k = max(1, round(n * (1 - s)))` largest
  magnitudes of the `n` weights, every weight tied with the k-th largest too
  (tfmot's rule, `k` in float32 with halves to even: `expected_kept`).
* **blocks** (`block_mask`, `block_size=(r, c)`): a 2-D kernel is cut into
  blocks of `r` rows (its inputs) by `c` columns (its outputs), the last ones
  partial; each block scores the average (or the largest) of its magnitudes,
  and the blocks are kept by the unstructured rule on their scores, as tfmot's
  `block_size` and `block_pooling_type` do.
* **N:M** (`m_by_n_mask`, `sparsity_m_by_n=(m, n)`): `m` zeros in every `n`
  consecutive weights along the input channels, tfmot's convention (TFLite
  stores a kernel as `[out, ..., in]` and groups its last axis; checked with
  tfmot's `pruning_utils.is_pruned_m_by_n`). tfmot sets its M-by-N masks once,
  at step 1, whatever the schedule (`pruning_impl.conditional_mask_update`). Here the schedule stays
  in charge, by gradual magnitude pruning (Zhu & Gupta, 2017) restricted to the
  weights the pattern may remove: the candidates are the `m` smallest
  magnitudes of each group, and at sparsity `s` the
  `z = n_weights - max(1, round(n_weights * (1 - s)))` smallest candidates are
  zero (ties in the order of the weights). No group ever has more than `m`
  zeros, and at `s = m/n` every candidate is zero: the mask is exactly the
  pattern. Each intermediate mask is a magnitude mask, as with unstructured
  pruning, so the schedule's curve keeps its meaning; a pattern that jumps from
  dense to N:M at once (tfmot, NVIDIA's ASP) is the special case of a schedule
  that jumps (`ConstantSparsity(m / n, begin_step=b, end_step=b)` prunes once).

>>> m_by_n_mask(np.array([[4.0], [1.0], [3.0], [2.0]], np.float32), 0.5, (2, 4)).ravel().tolist()
[1.0, 0.0, 1.0, 0.0]
>>> m_by_n_mask(np.array([[4.0], [1.0], [3.0], [2.0]], np.float32), 0.25, (2, 4)).ravel().tolist()
[1.0, 0.0, 1.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from schedules import _validation as v
from schedules.evaluation import expected_kept

__all__ = ["Rule", "block_mask", "check_block_size", "checked_rule", "m_by_n_mask", "mask_of", "rule", "update"]

#: A mask rule: `(kernel, sparsity) -> mask`, NumPy arrays of the kernel's shape and dtype.
Rule = Callable[[np.ndarray, float], np.ndarray]


def mask_of(kernel: np.ndarray, sparsity: float, allowed: np.ndarray | None = None) -> np.ndarray:
    """tfmot's mask of `kernel` at `sparsity`, ranking only the `allowed` weights (all, without `allowed`).

    1 where `|w|` is at least the k-th largest allowed magnitude and the weight is allowed,
    `k = expected_kept(sparsity, a)` for the `a` allowed weights (tfmot's
    `max(1, round(a * (1 - s)))` in float32); every allowed weight tied with the k-th largest is
    kept too, as tfmot does. A locked weight is 0 in the mask whatever its value (`fixed_masks`).

    >>> w = np.array([0.5, -2.0, 0.0, 3.0, 1.0], np.float32)
    >>> mask_of(w, 0.4).tolist(), mask_of(w, 0.5, np.array([True, True, True, False, True])).tolist()
    ([0.0, 1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0, 1.0])
    """
    magnitudes = np.abs(kernel)
    count = magnitudes.size
    if allowed is not None:
        magnitudes = np.where(allowed, magnitudes, 0)  # the k-th largest of these is the allowed ones' k-th
        count = int(np.count_nonzero(allowed))
    flat = magnitudes.ravel()
    rank = flat.size - int(expected_kept(sparsity, count))
    threshold = np.partition(flat, rank)[rank]
    kept = magnitudes >= threshold
    return (kept if allowed is None else kept & allowed).astype(kernel.dtype)


def block_mask(kernel: np.ndarray, sparsity: float, block_size: tuple[int, int], pooling: str = "AVG") -> np.ndarray:
    """The blocks of a 2-D `kernel` kept at `sparsity`, each block scored by the average (or max) magnitude.

    >>> block_mask(np.array([[1.0, 1.0, 5.0], [1.0, 1.0, 0.0]], np.float32), 0.5, (2, 2)).tolist()
    [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]
    """
    rows, cols = kernel.shape
    r, c = block_size
    padded = np.full((-(-rows // r) * r, -(-cols // c) * c), np.nan)
    padded[:rows, :cols] = np.abs(kernel)
    blocks = padded.reshape(padded.shape[0] // r, r, padded.shape[1] // c, c)
    scores = np.nanmax(blocks, axis=(1, 3)) if pooling == "MAX" else np.nanmean(blocks, axis=(1, 3))
    kept = mask_of(scores.astype(kernel.dtype), sparsity)
    return np.repeat(np.repeat(kept, r, axis=0), c, axis=1)[:rows, :cols].astype(kernel.dtype)


def m_by_n_mask(kernel: np.ndarray, sparsity: float, m_by_n: tuple[int, int]) -> np.ndarray:
    """The gradual N:M mask of `kernel` at `sparsity`: the smallest of each group's `m` smallest weights are zero.

    A group is `n` consecutive input channels of one output channel and kernel
    position (the last group of a row is partial when the inputs are not a
    multiple of `n`, and keeps at most `n - m` weights, as tfmot's padding
    does). At `sparsity >= m / n` the mask is exactly the pattern.
    """
    m, n = m_by_n
    # tfmot's layout: the outputs (last axis) first, the inputs (second to last) last, one row per output and position.
    rows = np.moveaxis(np.abs(kernel), -1, 0)
    shape = rows.shape
    rows = rows.reshape(-1, shape[-1])
    width = -(-shape[-1] // n) * n
    padded = np.full((rows.shape[0], width), -1.0)  # padding: below every magnitude, so among the m smallest
    padded[:, : shape[-1]] = rows
    groups = padded.reshape(-1, n)
    smallest = np.argsort(groups, axis=1, kind="stable")[:, :m]  # each group's m smallest, ties by position
    flat = (np.arange(groups.shape[0])[:, None] * n + smallest).ravel()
    flat = flat[padded.ravel()[flat] >= 0]  # the candidates that are weights, not padding
    size = kernel.size
    zeros = len(flat)
    if np.float32(sparsity) < np.float32(m / n):
        zeros = min(zeros, size - int(expected_kept(sparsity, size)))
    order = np.argsort(padded.ravel()[flat], kind="stable")[:zeros]
    keep = np.ones(padded.size, kernel.dtype)
    keep[flat[order]] = 0
    mask = keep.reshape(padded.shape)[:, : shape[-1]].reshape(shape)
    return np.moveaxis(mask, 0, -1)


def rule(
    sparsity_m_by_n: tuple[int, int] | None = None,
    block_size: tuple[int, int] = (1, 1),
    block_pooling_type: str = "AVG",
) -> Rule:
    """The mask rule for the pattern arguments (as `PruningCallback` takes them)."""
    if sparsity_m_by_n is not None:
        m, n = sparsity_m_by_n
        return lambda kernel, sparsity: m_by_n_mask(kernel, sparsity, (m, n))
    if tuple(block_size) != (1, 1):
        r, c = block_size
        return lambda kernel, sparsity: block_mask(kernel, sparsity, (r, c), block_pooling_type)
    return mask_of


def update(
    layers: dict[str, tuple[list[keras.Variable], list[keras.Variable]]],
    sparsities: dict[str, float],
    mask_rule: Rule,
) -> None:
    """Sets the masks of the layers in `sparsities` (`{layer name: sparsity}`) by `mask_rule` on their kernels, and
    multiplies each kernel by its mask; `layers` is `{layer name: (kernels, masks)}`, Keras variables."""
    for name, sparsity in sparsities.items():
        kernels, masks = layers[name]
        for kernel, mask in zip(kernels, masks, strict=True):
            value = np.asarray(keras.ops.convert_to_numpy(kernel))
            new = mask_rule(value, sparsity)
            mask.assign(new)
            kernel.assign(value * new)


def check_block_size(block_size: object) -> None:
    if (
        not isinstance(block_size, (tuple, list))
        or len(block_size) != 2
        or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in block_size)
    ):
        raise v.invalid("block_size", "a pair of integers (rows, columns), each >= 1", block_size)


def checked_rule(
    schedule: object,
    peak: float,
    allocation: object,
    sparsity_m_by_n: tuple[int, int] | None,
    block_size: tuple[int, int],
    block_pooling_type: str,
) -> Rule:
    """The mask rule of the pattern arguments, checked (tfmot's names, orientation and ranges)."""
    if sparsity_m_by_n is not None:
        if (
            not isinstance(sparsity_m_by_n, (tuple, list))
            or len(sparsity_m_by_n) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in sparsity_m_by_n)
            or not 0 < sparsity_m_by_n[0] < sparsity_m_by_n[1]
        ):
            raise v.invalid(
                "sparsity_m_by_n", "a pair of integers (m, n), 0 < m < n: m zeros in every n weights", sparsity_m_by_n
            )
        m, n = sparsity_m_by_n
        if tuple(block_size) != (1, 1):
            raise v.invalid("block_size", "(1, 1) with sparsity_m_by_n (one pattern at a time)", block_size)
        if allocation != "uniform":
            raise v.invalid(
                "allocation",
                f"'uniform' with sparsity_m_by_n: the pattern prunes every layer to m/n = {m / n:g}",
                allocation,
            )
        if abs(peak - m / n) > 1e-6:
            raise v.invalid(
                "schedule",
                f"a schedule whose peak sparsity is m/n = {m / n:g} for sparsity_m_by_n={tuple(sparsity_m_by_n)} "
                f"(its final masks are then exactly the pattern); this one peaks at {peak:g}",
                schedule,
            )
    v.check_choice("block_pooling_type", block_pooling_type, ("AVG", "MAX"))
    return rule(sparsity_m_by_n, block_size, block_pooling_type)
