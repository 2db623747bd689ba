"""3D family for volumes and clips (N x C x D x H x W).

c3d  C3D-style (Tran et al. 2015): stages of conv3d-BN-ReLU layers, each stage followed by a
     max pool, then a global average pool and a linear head. The very first conv may stride
     (`stem_stride`) so large frames are cheap from the start.
"""
from __future__ import annotations

from torch import nn

from .common import InputNorm, KDModel


class ConvBNReLU3d(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int, stride=(1, 1, 1)):
        super().__init__(
            nn.Conv3d(cin, cout, kernel, stride=tuple(stride), padding=kernel // 2, bias=False),
            nn.BatchNorm3d(cout),
            nn.ReLU(inplace=True),
        )


class C3D(KDModel):
    """config: stage i has convs[i] layers of widths[i] channels, then MaxPool3d(pools[i]) ([1,1,1] = none)."""

    spatial_dims = 3

    def __init__(self, config: dict):
        super().__init__(config)
        c = config
        self.norm = InputNorm(c["in_channels"], 3, c["normalize"])
        layers, cin, first = [], self.norm.out_channels, True
        for width, n_convs, pool in zip(c["widths"], c["convs"], c["pools"]):
            for _ in range(n_convs):
                stride = c["stem_stride"] if first else (1, 1, 1)
                layers.append(ConvBNReLU3d(cin, width, c["kernel"], stride))
                cin, first = width, False
            if any(p != 1 for p in pool):
                layers.append(nn.MaxPool3d(kernel_size=tuple(pool), stride=tuple(pool)))
        self.body = nn.Sequential(*layers)
        self.drop = nn.Dropout(c["dropout"])
        self.head = nn.Linear(cin, c["num_classes"])
