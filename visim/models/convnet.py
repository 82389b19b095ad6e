"""A deliberately small CNN backbone for tests and quick experiments."""

from __future__ import annotations

from torch import nn


class ConvNet(nn.Module):
    def __init__(self, width: int, embedding_dim: int) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

        self.features = nn.Sequential(
            block(3, width), nn.MaxPool2d(2), block(width, 2 * width), nn.MaxPool2d(2), block(2 * width, 4 * width)
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * width, embedding_dim)

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))
