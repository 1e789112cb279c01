"""Channel pruning's model side: which channels go together (`channel_groups`), and removing them (`shrink`).

The analysis is `schedules.channel_groups`; zeroing and shrinking are
`schedules.shrinking`. For tf-keras and Keras 3 models, Sequential or
functional (a subclassed model's graph cannot be read: TypeError).

>>> import keras, numpy as np
>>> model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, activation="relu", name="hidden"),
...                           keras.layers.Dense(2, name="head")])
>>> [(group.name, group.size, group.consumers) for group in channel_groups(model).groups]
[('hidden', 4, (('head', 0, 1),))]
>>> keep = {"hidden": np.array([True, False, True, True])}
>>> shrink(model, keep).count_params()  # 6 * 3 + 3 + 3 * 2 + 2
29
"""

from __future__ import annotations

from schedules.channel_groups import ChannelAnalysis, ChannelGroup, channel_groups
from schedules.shrinking import channel_variables, shrink, zero_channels

__all__ = ["ChannelAnalysis", "ChannelGroup", "channel_groups", "channel_variables", "shrink", "zero_channels"]
