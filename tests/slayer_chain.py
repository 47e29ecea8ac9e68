"""A lava-dl slayer network as the tutorials write it, shared by the slayer frontend tests."""
from __future__ import annotations

import h5py
import numpy as np
import torch


class Chain(torch.nn.Module):
    """As lava-dl's tutorials write a network: a ModuleList of blocks, forward loops over them.
    ``example_shape``: put the blocks in eval mode and run one forward, so slayer blocks learn their shapes."""

    def __init__(self, blocks, example_shape=None):
        super().__init__()
        self.blocks = torch.nn.ModuleList(blocks)
        if example_shape is not None:
            self.eval()
            self(torch.zeros(1, *example_shape, 4))

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x

    def export_hdf5(self, path, input_shape=None):
        """The tutorials' export; ``input_shape``: a plain input layer first (nets without Input block)."""
        with h5py.File(path, "w") as handle:
            layers = handle.create_group("layer")
            start = 0
            if input_shape is not None:
                layers.create_dataset("0/type", (1,), "S10", [b"input"])
                layers.create_dataset("0/shape", data=np.asarray(input_shape))
                start = 1
            for i, block in enumerate(self.blocks, start=start):
                block.export_hdf5(layers.create_group(str(i)))
