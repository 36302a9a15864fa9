"""Does a generator learn ACQ's position condition? A PyTorch re-implementation of the generator
warm-up (method.md sections 2, 4, 5), independent of acq-dist, that trains the generator against
the shipped teacher with a chosen set of terms and prints, every 50 steps, the attention-centre
matching term and the least-squares slope of the attention centres c on the asked positions p
(1: the centres follow p; 0: the generator ignores it), the teacher's CE and BNS.

Usage (the PyTorch venv of ../shared/tools/torch-ref):
    $HOME/.torch-ref/bin/python scripts/torch/condition_probe.py [--terms ce,bns,acm]
        [--acm-weight 1] [--steps 300] [--seed 0] [--condition heatmap|embedding|gated|every-scale]
        [--gain 1] [--ce-from 0] [--teacher FILE] [--shift-test [DATA_DIR]]
`gated` and `every-scale` are candidate ways of feeding p in that acq-dist does not implement.
Measurement only: acq-dist never needs PyTorch."""
import argparse, os, sys
import torch, torch.nn as nn, torch.nn.functional as F
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resnet import ResNet
from acq_iteration import EmbeddingGenerator, Generator, attention


def heat_map(p, size, std=0.25):
    g = torch.linspace(-1, 1, size)
    return torch.exp(-((g.view(1, 1, 1, -1) - p[:, 0].view(-1, 1, 1, 1)) ** 2
                       + (g.view(1, 1, -1, 1) - p[:, 1].view(-1, 1, 1, 1)) ** 2) / (2 * std ** 2))


class GatedGenerator(Generator):
    """Candidate reconstruction: the heat map scales the first feature map, h * (1 + g * H(p)),
    instead of joining it as a 129th channel; g is a learned scalar (starts at `gain`)."""
    def __init__(s, gain=1.0):
        super().__init__()
        s.conv1 = nn.Conv2d(128, 128, 3, 1, 1)
        s.gain = nn.Parameter(torch.tensor(float(gain)))

    def forward(s, z, y, p):
        h = s.bn0(s.l1(s.label_emb(y) * z).view(z.shape[0], 128, s.s, s.s))
        h = h * (1 + s.gain * heat_map(p, s.s))
        h = F.leaky_relu(s.bn1(s.conv1(F.interpolate(h, scale_factor=2))), 0.2)
        h = F.leaky_relu(s.bn2(s.conv2(F.interpolate(h, scale_factor=2))), 0.2)
        return s.bn3(torch.tanh(s.conv3(h)))


class EveryScaleGenerator(Generator):
    """Candidate reconstruction: the heat-map channel joins the feature map at every resolution
    (s, 2s, 4s), not only the first."""
    def __init__(s):
        super().__init__()
        s.conv2 = nn.Conv2d(129, 64, 3, 1, 1)
        s.conv3 = nn.Conv2d(65, 1, 3, 1, 1)

    def forward(s, z, y, p):
        h = s.bn0(s.l1(s.label_emb(y) * z).view(z.shape[0], 128, s.s, s.s))
        h = torch.cat([h, heat_map(p, s.s)], 1)
        h = F.interpolate(h, scale_factor=2)
        h = F.leaky_relu(s.bn1(s.conv1(h)), 0.2)
        h = torch.cat([h, heat_map(p, 2 * s.s)], 1)
        h = F.leaky_relu(s.bn2(s.conv2(F.interpolate(h, scale_factor=2))), 0.2)
        h = torch.cat([h, heat_map(p, 4 * s.s)], 1)
        return s.bn3(torch.tanh(s.conv3(h)))


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    ap = argparse.ArgumentParser()
    ap.add_argument("--terms", default="ce,bns,acm", help="comma-separated subset of ce, bns, acm")
    ap.add_argument("--acm-weight", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--condition", choices=["heatmap", "embedding", "gated", "every-scale"], default="heatmap")
    ap.add_argument("--gain", type=float, default=1.0, help="gated: the heat map's starting gain")
    ap.add_argument("--ce-from", type=int, default=0, help="the teacher's CE joins the loss at this step")
    ap.add_argument("--teacher", default=os.path.join(root, "models", "resnet20-fashion-mnist.safetensors"))
    ap.add_argument("--shift-test", metavar="DATA_DIR", nargs="?", const="/usr/share/datasets/fashion-mnist",
                    help="first, how far the teacher's centre moves when 512 real test images shift by 2 and 4 pixels")
    a = ap.parse_args()
    terms = set(a.terms.split(","))
    unknown = terms - {"ce", "bns", "acm"}
    if unknown:
        sys.exit(f"condition_probe.py: unknown term(s) {sorted(unknown)} in --terms (ce, bns, acm)")
    torch.set_num_threads(1); torch.manual_seed(a.seed)
    teacher = ResNet().eval()
    state = load_file(a.teacher)
    teacher.load_state_dict({k: v for k, v in state.items() if k in teacher.state_dict()}, strict=True)
    for q in teacher.parameters(): q.requires_grad_(False)
    if a.shift_test:
        import gzip, numpy as np
        path = os.path.join(a.shift_test, "t10k-images-idx3-ubyte.gz")
        raw = np.frombuffer(gzip.open(path).read()[16:], np.uint8).reshape(-1, 1, 28, 28)
        x = (torch.tensor(raw[:512], dtype=torch.float32) / 255 - 0.286) / 0.353
        with torch.no_grad():
            _, c0 = attention(teacher.features(x))
            print(f"real centres: mean {c0.mean(0).tolist()}, sd {c0.std(0).tolist()}")
            for dx in (-4, -2, 2, 4):
                _, c = attention(teacher.features(torch.roll(x, dx, dims=3)))
                print(f"shift {dx:+d} px along x: mean centre moves {(c - c0).mean(0).tolist()}")
    bn_inputs = []
    for m in teacher.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.register_forward_hook(lambda mod, inp, out: bn_inputs.append((mod, inp[0])))
    gen = {"embedding": EmbeddingGenerator, "gated": lambda: GatedGenerator(a.gain),
           "every-scale": EveryScaleGenerator, "heatmap": Generator}[a.condition]()
    opt = torch.optim.Adam(gen.parameters(), lr=1e-3, betas=(0.5, 0.999))
    B = 64
    print(f"terms {sorted(terms)}, acm weight {a.acm_weight}, condition {a.condition}, seed {a.seed}, ce from step {a.ce_from}")
    for step in range(a.steps):
        y = torch.randint(0, 10, (B // 2,)).repeat_interleave(2)
        p = (torch.rand(B // 2, 2) * 0.5 - 0.25).repeat_interleave(2, 0)
        z = torch.randn(B, 100)
        x = gen(z, y, p); bn_inputs.clear()
        f = teacher.features(x); logits = teacher.fc(F.adaptive_avg_pool2d(f, 1).flatten(1))
        bns = sum(F.mse_loss(i.mean((0, 2, 3)), m.running_mean) + F.mse_loss(i.var((0, 2, 3), unbiased=False), m.running_var)
                  for m, i in bn_inputs) / len(bn_inputs)
        _, c = attention(f)
        acm = ((c - p) ** 2).sum(1).mean()
        ce = F.cross_entropy(logits, y)
        loss = sum([ce] * ("ce" in terms and step >= a.ce_from) + [0.1 * bns] * ("bns" in terms) + [a.acm_weight * acm] * ("acm" in terms))
        opt.zero_grad(); loss.backward(); opt.step()
        if step % 50 == 0 or step == a.steps - 1:
            cd, pc = c.detach(), p - p.mean(0)
            slope = ((cd - cd.mean(0)) * pc).sum() / (pc ** 2).sum()
            print(f"step {step:4d}  acm {acm.item():.4f}  slope {slope.item():+.3f}  ce {ce.item():.3f}  bns {bns.item():.3f}", flush=True)


if __name__ == "__main__":
    main()
