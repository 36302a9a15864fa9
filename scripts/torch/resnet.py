"""The reference CIFAR-style ResNet in PyTorch, with acq-dist's (and the golden files') module
names: conv, bn, layers.{i}.c1/b1/c2/b2[/sc], fc. Shared by the benchmark-only scripts.
`q`, when given, is applied after every ReLU (a fake-quantized student's activations)."""
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(s, cin, cout, stride):
        super().__init__()
        s.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False); s.b1 = nn.BatchNorm2d(cout)
        s.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False); s.b2 = nn.BatchNorm2d(cout)
        s.sc = None
        if stride != 1 or cin != cout:
            s.sc = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(s, x, q=None):
        q = q or (lambda t: t)
        o = q(F.relu(s.b1(s.c1(x)))); o = s.b2(s.c2(o))
        return q(F.relu(o + (x if s.sc is None else s.sc(x))))


class ResNet(nn.Module):
    """n = (depth - 2) / 6 blocks per stage (3: ResNet-20)."""
    def __init__(s, cin=1, ncls=10, n=3):
        super().__init__()
        s.conv = nn.Conv2d(cin, 16, 3, 1, 1, bias=False); s.bn = nn.BatchNorm2d(16)
        layers, c = [], 16
        for cout, st in [(16, 1), (32, 2), (64, 2)]:
            for i in range(n):
                layers.append(Block(c, cout, st if i == 0 else 1)); c = cout
        s.layers = nn.Sequential(*layers); s.fc = nn.Linear(64, ncls)

    def features(s, x, q=None):
        q = q or (lambda t: t)
        x = q(F.relu(s.bn(s.conv(x))))
        for b in s.layers:
            x = b(x, q)
        return x

    def forward(s, x, q=None):
        return s.fc(F.adaptive_avg_pool2d(s.features(x, q), 1).flatten(1))
