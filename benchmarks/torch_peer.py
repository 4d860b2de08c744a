"""PyTorch peers of sngan_tf's DCGAN and standard CNN, and their training step, for the benchmark.

Not part of the package and not run on its own: `benchmarks/benchmark.py --peer=torch` (from
the repository root: `.venv/bin/python benchmarks/benchmark.py --peer=torch ...`) imports it
from beside itself, in the optional benchmark environment (`benchmarks/requirements-bench.txt`,
`bash scripts/run.sh bench`); tests/torch_peer_test.py imports it likewise.
The networks are those of `sngan_tf/models.py` layer by layer (same widths, kernels,
strides, padding, biases, batch norm placement and LeakyReLU slopes; a test pins equal
trainable parameter counts), written as a PyTorch user would: NCHW,
`torch.nn.utils.parametrizations.spectral_norm` (one power iteration per training forward
pass, as ours), `nn.BatchNorm` (momentum 0.1 = Keras 0.9, eps 1e-5).

The step is the trainer's (n_dis = 1): one D update on a real batch and a batch of fakes
made without gradient, then one G update through D (D's weights get no gradient, as in
sngan_tf where only G's variables are watched), non-saturating loss via softplus, Adam
(lr 4e-4 / 1e-4, betas 0.5 / 0.999). bf16 runs the forward passes and losses under
`torch.autocast("cpu", torch.bfloat16)`, the counterpart of Keras's mixed_bfloat16.
"""
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

Z_DIM = {"dcgan": 100, "cnn": 128}
CNN_D_WIDTHS = {"code": (64, 128, 128, 256, 256, 512, 512),
                "paper": (64, 64, 128, 128, 256, 256, 512)}
CNN_SLOPE = {"code": 0.2, "paper": 0.1}
PRECISIONS = ("float32", "bfloat16")


class _ShiftOnlyBatchNorm(nn.Module):
    """Batch norm with a shift but no scale (Keras `scale=False`), as in the authors' BN
    discriminator for the standard CNN."""

    def __init__(self, channels):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False, momentum=0.1, eps=1e-5)
        self.shift = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        return self.norm(x) + self.shift.view(1, -1, 1, 1)


def _conv(norm, cin, cout, k, s, p, bias=True):
    conv = nn.Conv2d(cin, cout, k, s, p, bias=bias)
    return spectral_norm(conv) if norm == "spectral" else conv


def make_discriminator(arch, norm, cnn_variant="code"):
    """D for arch 'dcgan' or 'cnn' and norm 'spectral', 'batch' or 'none': NCHW 32x32 -> (B, 1)."""
    batch = norm == "batch"
    layers = []
    if arch == "dcgan":
        cin = 3
        for i, ch in enumerate((64, 128, 256)):
            layers.append(_conv(norm, cin, ch, 4, 2, 1, bias=not (batch and i > 0)))
            if batch and i > 0:
                layers.append(nn.BatchNorm2d(ch, momentum=0.1, eps=1e-5))
            layers.append(nn.LeakyReLU(0.2))
            cin = ch
        layers += [_conv(norm, 256, 1, 4, 1, 0), nn.Flatten()]
    elif arch == "cnn":
        cin, slope = 3, CNN_SLOPE[cnn_variant]
        for i, ch in enumerate(CNN_D_WIDTHS[cnn_variant]):
            k, s = (3, 1) if i % 2 == 0 else (4, 2)
            layers.append(_conv(norm, cin, ch, k, s, 1, bias=not (batch and i > 0)))
            if batch and i > 0:
                layers.append(_ShiftOnlyBatchNorm(ch))
            layers.append(nn.LeakyReLU(slope))
            cin = ch
        dense = nn.Linear(cin * 4 * 4, 1)
        layers += [nn.Flatten(), spectral_norm(dense) if norm == "spectral" else dense]
    else:
        raise ValueError(f"no torch peer for arch {arch!r}")
    return nn.Sequential(*layers)


def make_generator(arch, batchnorm=True):
    """G for arch 'dcgan' or 'cnn': z (B, Z_DIM[arch]) -> NCHW images in [-1, 1]."""
    def bn2d(ch):
        return [nn.BatchNorm2d(ch, momentum=0.1, eps=1e-5)] if batchnorm else []

    z = Z_DIM[arch]
    if arch == "dcgan":
        layers = [nn.Unflatten(1, (z, 1, 1)), nn.ConvTranspose2d(z, 512, 4, 1, 0, bias=not batchnorm),
                  *bn2d(512), nn.ReLU()]
        cin = 512
        for ch in (256, 128):
            layers += [nn.ConvTranspose2d(cin, ch, 4, 2, 1, bias=not batchnorm), *bn2d(ch),
                       nn.ReLU()]
            cin = ch
        layers += [nn.ConvTranspose2d(128, 3, 4, 2, 1), nn.Tanh()]
    elif arch == "cnn":
        layers = [nn.Linear(z, 4 * 4 * 512, bias=not batchnorm),
                  *([nn.BatchNorm1d(4 * 4 * 512, momentum=0.1, eps=1e-5)] if batchnorm else []),
                  nn.ReLU(), nn.Unflatten(1, (512, 4, 4))]
        cin = 512
        for ch in (256, 128, 64):
            layers += [nn.ConvTranspose2d(cin, ch, 4, 2, 1, bias=not batchnorm), *bn2d(ch),
                       nn.ReLU()]
            cin = ch
        layers += [nn.Conv2d(64, 3, 3, 1, 1), nn.Tanh()]
    else:
        raise ValueError(f"no torch peer for arch {arch!r}")
    return nn.Sequential(*layers)


def trainable_parameters(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class Step:
    """One training step of the peer GAN, callable; returns the generator loss as a float.

    Args:
      arch: 'dcgan' or 'cnn'.
      norm: discriminator normalisation; the generator has batch norm unless norm is 'none'
        (the benchmark's settings for sngan_tf too).
      precision: 'float32' or 'bfloat16' (autocast).
      batch_size: images per D and per G update.
      cnn_variant: 'code' or 'paper' widths for the cnn.
    """

    def __init__(self, arch, norm, precision="float32", batch_size=64, cnn_variant="code",
                 seed=0):
        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
        torch.manual_seed(seed)
        self.arch, self.batch_size, self.precision = arch, batch_size, precision
        self.generator = make_generator(arch, batchnorm=norm != "none")
        self.discriminator = make_discriminator(arch, norm, cnn_variant)
        for module in (self.generator, self.discriminator):
            for m in module.modules():  # DCGAN / the authors' N(0, 0.02) initialisation
                if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                    nn.init.normal_(m.weight, 0.0, 0.02)
        self.generator.train()
        self.discriminator.train()
        self.g_opt = torch.optim.Adam(self.generator.parameters(), 1e-4, betas=(0.5, 0.999))
        self.d_opt = torch.optim.Adam(self.discriminator.parameters(), 4e-4, betas=(0.5, 0.999))
        self.real = torch.rand(batch_size, 3, 32, 32) * 2 - 1

    def _autocast(self):
        return torch.autocast("cpu", dtype=torch.bfloat16,
                              enabled=self.precision == "bfloat16")

    def _z(self):
        return torch.randn(self.batch_size, Z_DIM[self.arch])

    def __call__(self):
        # D update: fakes made without gradient (sngan_tf stops their gradient).
        with torch.no_grad(), self._autocast():
            fake = self.generator(self._z())
        with self._autocast():
            d_real = self.discriminator(self.real).float()
            d_fake = self.discriminator(fake).float()
            d_loss = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        self.d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_opt.step()
        # G update through D; D's weights need no gradient here.
        self.discriminator.requires_grad_(False)
        with self._autocast():
            g_loss = F.softplus(-self.discriminator(self.generator(self._z())).float()).mean()
        self.g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        self.g_opt.step()
        self.discriminator.requires_grad_(True)
        return float(g_loss.detach())


def matmul_gflops(n=2048, dtype=torch.float32, repeats=5):
    """PyTorch's best rate on an n x n matmul, GFLOP/s (2n³ FLOPs each)."""
    import time  # pylint: disable=g-import-not-at-top
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9
