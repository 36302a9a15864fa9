"""PyTorch side of the ACQ iteration benchmark: one generator step and one student step of
ACQ at W4A4 on a ResNet-20 teacher, following ../shared/spec/method.md (sections 2-5), timed on
this machine. Benchmark only: acq-dist never needs PyTorch.

Usage: python acq_iteration.py --weights BNS ACM PAIR CONS [--threads 2] [--batch 64] [--repeats 5] [--iterations 3]
(`acq-dist bench --acq` passes its own default loss weights.)
Prints `acq_iteration_s <median seconds>` and the per-phase medians."""
import argparse, statistics, time
import torch, torch.nn as nn, torch.nn.functional as F
from resnet import ResNet


class STEQuant(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lo, hi, bits):
        n = 2 ** bits - 1
        scale = torch.clamp((hi - lo) / n, min=1e-8)
        zp = torch.round(-lo / scale)
        return (torch.clamp(torch.round(x / scale) + zp, 0, n) - zp) * scale

    @staticmethod
    def backward(ctx, g):
        return g, None, None, None


class QuantStudent(nn.Module):
    """Fake-quantized copy of the teacher: per-channel weights, per-tensor activations after
    every ReLU with frozen ranges, BN frozen (eval mode)."""
    def __init__(s, teacher, bits=4):
        super().__init__()
        import copy
        s.net = copy.deepcopy(teacher); s.bits = bits
        s.ranges = {}

    def quant_act(s, x):
        key = len(s._seen); s._seen.append(key)
        lo, hi = s.ranges.setdefault(key, (x.detach().min(), x.detach().max()))
        return STEQuant.apply(x, lo, hi, s.bits)

    def forward(s, x):
        s._seen = []
        saved = {}
        for m in s.net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                w = m.weight
                flat = w.detach().flatten(1)
                lo = flat.min(1)[0].view(-1, *[1] * (w.dim() - 1)); hi = flat.max(1)[0].view_as(lo)
                saved[m] = w
                m.__dict__['_q'] = STEQuant.apply(w, lo, hi, s.bits)
        def conv_forward(m, inp):
            return m._conv_forward(inp, m._q, m.bias) if isinstance(m, nn.Conv2d) else F.linear(inp, m._q, m.bias)
        hooks = []
        for m in saved:
            m.forward = (lambda mm: (lambda inp: conv_forward(mm, inp)))(m)
        out = s.net(x, s.quant_act)
        for m in saved:
            del m.forward
        return out


class Generator(nn.Module):
    def __init__(s, latent=100, classes=10, channels=1, size=28):
        super().__init__()
        s.s = size // 4
        s.label_emb = nn.Embedding(classes, latent)
        s.l1 = nn.Linear(latent, 128 * s.s * s.s)
        s.bn0 = nn.BatchNorm2d(128)
        s.conv1 = nn.Conv2d(129, 128, 3, 1, 1); s.bn1 = nn.BatchNorm2d(128, 0.8)
        s.conv2 = nn.Conv2d(128, 64, 3, 1, 1); s.bn2 = nn.BatchNorm2d(64, 0.8)
        s.conv3 = nn.Conv2d(64, channels, 3, 1, 1); s.bn3 = nn.BatchNorm2d(channels, affine=False)
        g = torch.linspace(-1, 1, s.s)
        s.register_buffer("gu", g.view(1, 1, 1, -1)); s.register_buffer("gv", g.view(1, 1, -1, 1))

    def forward(s, z, y, p):
        h = s.bn0(s.l1(s.label_emb(y) * z).view(z.shape[0], 128, s.s, s.s))
        heat = torch.exp(-((s.gu - p[:, 0].view(-1, 1, 1, 1)) ** 2 + (s.gv - p[:, 1].view(-1, 1, 1, 1)) ** 2) / (2 * 0.25 ** 2))
        h = torch.cat([h, heat], 1)
        h = F.leaky_relu(s.bn1(s.conv1(F.interpolate(h, scale_factor=2))), 0.2)
        h = F.leaky_relu(s.bn2(s.conv2(F.interpolate(h, scale_factor=2))), 0.2)
        return s.bn3(torch.tanh(s.conv3(h)))


class EmbeddingGenerator(Generator):
    """The embedding condition (method.md section 5's option): z * E(y) * (1 + MLP(p)),
    MLP = Linear(2, 64), ReLU, Linear(64, latent); no heat-map channel."""
    def __init__(s, latent=100, classes=10, channels=1, size=28):
        super().__init__(latent, classes, channels, size)
        s.conv1 = nn.Conv2d(128, 128, 3, 1, 1)
        s.mlp = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, latent))

    def forward(s, z, y, p):
        h = s.bn0(s.l1(s.label_emb(y) * z * (1 + s.mlp(p))).view(z.shape[0], 128, s.s, s.s))
        h = F.leaky_relu(s.bn1(s.conv1(F.interpolate(h, scale_factor=2))), 0.2)
        h = F.leaky_relu(s.bn2(s.conv2(F.interpolate(h, scale_factor=2))), 0.2)
        return s.bn3(torch.tanh(s.conv3(h)))


def attention(f):
    a = (f ** 2).mean(1)
    p = a / a.sum((1, 2), keepdim=True)
    h, w = p.shape[1:]
    u = torch.linspace(-1, 1, w); v = torch.linspace(-1, 1, h)
    c = torch.stack([(p * u.view(1, 1, -1)).sum((1, 2)), (p * v.view(1, -1, 1)).sum((1, 2))], 1)
    return p * h * w, c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2); ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5); ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--weights", type=float, nargs=4, required=True, metavar=("BNS", "ACM", "PAIR", "CONS"))
    a = ap.parse_args(); torch.set_num_threads(a.threads); torch.manual_seed(0)
    teacher = ResNet().eval()
    for q in teacher.parameters(): q.requires_grad_(False)
    bn_inputs = []
    for m in teacher.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.register_forward_hook(lambda mod, inp, out: bn_inputs.append((mod, inp[0])))
    gen = Generator(); student = QuantStudent(teacher); student.net.eval()
    for q in student.parameters(): q.requires_grad_(True)
    g_opt = torch.optim.Adam(gen.parameters(), lr=1e-3, betas=(0.5, 0.999))
    s_opt = torch.optim.SGD(student.parameters(), lr=1e-3, momentum=0.9, nesterov=True, weight_decay=1e-4)
    B = a.batch
    w_bns, w_acm, w_pair, w_cons = a.weights

    def generator_step():
        y = torch.randint(0, 10, (B // 2,)).repeat_interleave(2)
        p = (torch.rand(B // 2, 2) * 0.5 - 0.25).repeat_interleave(2, 0)
        z = torch.randn(B, 100)
        x = gen(z, y, p)
        bn_inputs.clear(); teacher.eval()
        f = teacher.features(x); logits = teacher.fc(F.adaptive_avg_pool2d(f, 1).flatten(1))
        bns = sum(F.mse_loss(i.mean((0, 2, 3)), m.running_mean) + F.mse_loss(i.var((0, 2, 3), unbiased=False), m.running_var)
                  for m, i in bn_inputs) / len(bn_inputs)
        ah, c = attention(f)
        acm = ((c - p) ** 2).sum(1).mean()
        d = (ah[0::2] - ah[1::2]).abs().mean() / (z[0::2] - z[1::2]).abs().mean()
        pair = 1 / (d + 1e-5)
        for m in teacher.modules():
            if isinstance(m, nn.BatchNorm2d): m.train(); m.track_running_stats = False
        bn_inputs.clear()
        ah_t, _ = attention(teacher.features(x))
        for m in teacher.modules():
            if isinstance(m, nn.BatchNorm2d): m.eval(); m.track_running_stats = True
        cons = ((ah - ah_t) ** 2).mean()
        loss = F.cross_entropy(logits, y) + w_bns * bns + w_acm * acm + w_pair * pair + w_cons * cons
        g_opt.zero_grad(); loss.backward(); g_opt.step()
        return x.detach(), y

    def student_step(x, y):
        with torch.no_grad():
            t = teacher(x)
        s = student(x)
        kd = F.kl_div(F.log_softmax(s / 20, 1), F.softmax(t / 20, 1), reduction="batchmean")
        loss = F.cross_entropy(s, y) + 20 * 20 / 10 * kd
        s_opt.zero_grad(); loss.backward(); s_opt.step()

    def iteration():
        t0 = time.perf_counter(); x, y = generator_step(); t1 = time.perf_counter()
        student_step(x, y); t2 = time.perf_counter()
        return t1 - t0, t2 - t1

    for _ in range(2): iteration()
    totals, gens, studs = [], [], []
    for _ in range(a.repeats):
        parts = [iteration() for _ in range(a.iterations)]
        gens.append(statistics.mean(p[0] for p in parts)); studs.append(statistics.mean(p[1] for p in parts))
        totals.append(gens[-1] + studs[-1])
    print(f"torch {torch.__version__} threads={a.threads} batch={B}")
    print(f"acq_iteration_s {statistics.median(totals):.4f}")
    print(f"generator_step_s {statistics.median(gens):.4f}")
    print(f"student_step_s {statistics.median(studs):.4f}")


if __name__ == "__main__":
    main()
