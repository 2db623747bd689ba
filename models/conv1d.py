"""1D families for time series (N x C x L).

fcn1d    Wang et al. 2017 fully convolutional network: conv-BN-ReLU layers, global average pool.
resnet1d Wang et al. 2017 ResNet: residual blocks of conv-BN-ReLU layers with a 1x1 shortcut.

Convolutions keep length ceil(L / stride) for any kernel, even ones (Wang's 8 included): odd
kernels pad symmetrically, even kernels pad one more on the right with an explicit ConstantPad1d,
so residual shapes always agree and the graph exports to ONNX as plain Pad + Conv.
"""
from __future__ import annotations

from torch import nn

from .common import InputNorm, KDModel


def conv1d(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Module:
    if kernel % 2 == 1:
        return nn.Conv1d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False)
    return nn.Sequential(
        nn.ConstantPad1d(((kernel - 1) // 2, kernel // 2), 0.0),
        nn.Conv1d(cin, cout, kernel, stride=stride, padding=0, bias=False),
    )


class ConvBNReLU1d(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, relu: bool = True):
        layers = [conv1d(cin, cout, kernel, stride), nn.BatchNorm1d(cout)]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class FCN1d(KDModel):
    """config: widths[i], kernels[i], strides[i] describe conv layer i; dropout before the head."""

    spatial_dims = 1

    def __init__(self, config: dict):
        super().__init__(config)
        c = config
        self.norm = InputNorm(c["in_channels"], 1, c["normalize"])
        layers, cin = [], self.norm.out_channels
        for width, kernel, stride in zip(c["widths"], c["kernels"], c["strides"]):
            layers.append(ConvBNReLU1d(cin, width, kernel, stride))
            cin = width
        self.body = nn.Sequential(*layers)
        self.drop = nn.Dropout(c["dropout"])
        self.head = nn.Linear(cin, c["num_classes"])


class ResBlock1d(nn.Module):
    """len(kernels) conv-BN(-ReLU) layers; the first has the block's stride; relu(main + shortcut)."""

    def __init__(self, cin: int, cout: int, kernels, stride: int):
        super().__init__()
        layers = []
        for i, kernel in enumerate(kernels):
            last = i == len(kernels) - 1
            layers.append(ConvBNReLU1d(cin if i == 0 else cout, cout, kernel, stride if i == 0 else 1, relu=not last))
        self.main = nn.Sequential(*layers)
        if cin != cout or stride != 1:
            self.shortcut = nn.Sequential(
                nn.Conv1d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm1d(cout)
            )
        else:
            self.shortcut = nn.Identity()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.main(x) + self.shortcut(x))


class ResNet1d(KDModel):
    """config: widths[i], strides[i] describe residual block i; kernels are the convs inside every block."""

    spatial_dims = 1

    def __init__(self, config: dict):
        super().__init__(config)
        c = config
        self.norm = InputNorm(c["in_channels"], 1, c["normalize"])
        blocks, cin = [], self.norm.out_channels
        for width, stride in zip(c["widths"], c["strides"]):
            blocks.append(ResBlock1d(cin, width, c["kernels"], stride))
            cin = width
        self.body = nn.Sequential(*blocks)
        self.drop = nn.Dropout(c["dropout"])
        self.head = nn.Linear(cin, c["num_classes"])
