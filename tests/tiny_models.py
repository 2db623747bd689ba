"""Tiny 1D and 3D CNNs (conv, batch norm, global average, linear head) that tests export and run."""
from __future__ import annotations

import torch
from torch import nn


class Tiny1d(nn.Module):
    def __init__(self, cin=2, width=8, classes=3):
        super().__init__()
        self.conv = nn.Conv1d(cin, width, 5, padding=2)
        self.bn = nn.BatchNorm1d(width)
        self.fc = nn.Linear(width, classes)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean(dim=-1))


class Tiny3d(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm3d(4)
        self.fc = nn.Linear(4, 5)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3, 4)))
