"""The same DCGAN in PyTorch, as a user would write it from the PyTorch DCGAN
example: the networks mirror genzoo's DCGAN layer for layer (project + batch
norm + ReLU, 5x5 stride-2 transposed convolutions, tanh; strided 5x5
convolutions with LeakyReLU(0.2) and batch norm but on the input layer),
BCE-with-logits losses, Adam(2e-4, beta_1=0.5), and per batch one
discriminator step on real and detached fake images, then one generator step
through the updated discriminator (non-saturating loss), reusing the fake batch.

Options for speed comparisons on one device: `device` ("cpu", "cuda"),
`channels_last` (NHWC memory format for the convolutions), `autocast`
(e.g. torch.bfloat16: autocast compute, float32 weights, as Keras'
mixed_bfloat16) and `freeze_d_for_g` (the generator update computes no
discriminator weight gradients, which it does not use; the PyTorch example
computes them, so the default is False).

Importing this module imports torch; nothing runs at import time.
"""

import contextlib

import torch
from torch import nn


class Generator(nn.Module):
    def __init__(self, image_shape=(28, 28, 1), latent_dim=100, filters=(128, 64), kernel_size=5, channels_last=False):
        super().__init__()
        height, width, channels = image_shape
        stages = len(filters)
        self.bottom = (filters[0], height // 2**stages, width // 2**stages)
        self.channels_last = channels_last
        pad = kernel_size // 2
        self.project = nn.Sequential(
            nn.Linear(latent_dim, filters[0] * self.bottom[1] * self.bottom[2], bias=False),
            nn.BatchNorm1d(filters[0] * self.bottom[1] * self.bottom[2], eps=1e-3, momentum=0.01),
            nn.ReLU(),
        )
        layers, widths = [], list(filters) + [channels]
        for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:])):
            last = i == len(widths) - 2
            layers.append(nn.ConvTranspose2d(cin, cout, kernel_size, stride=2, padding=pad, output_padding=1, bias=last))
            layers += [nn.Tanh()] if last else [nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01), nn.ReLU()]
        self.body = nn.Sequential(*layers)

    def forward(self, z):
        x = self.project(z).view(-1, *self.bottom)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.body(x)


class Discriminator(nn.Module):
    def __init__(self, image_shape=(28, 28, 1), filters=(64, 128), kernel_size=5):
        super().__init__()
        height, width, channels = image_shape
        layers, cin = [], channels
        for i, cout in enumerate(filters):
            layers.append(nn.Conv2d(cin, cout, kernel_size, stride=2, padding=kernel_size // 2, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01))
            layers.append(nn.LeakyReLU(0.2))
            cin = cout
        stages = len(filters)
        layers += [nn.Flatten(), nn.Linear(cin * (height // 2**stages) * (width // 2**stages), 1)]
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x)


class TorchDCGAN:
    """The PyTorch training loop, one `train_step(real)` per batch of NCHW images in [-1, 1]."""

    def __init__(
        self,
        image_shape=(28, 28, 1),
        latent_dim=100,
        generator_filters=(128, 64),
        kernel_size=5,
        seed=0,
        device="cpu",
        channels_last=False,
        autocast=None,
        freeze_d_for_g=False,
    ):
        torch.manual_seed(seed)
        self.device = torch.device(device)
        self.latent_dim = latent_dim
        self.channels_last = channels_last
        self.autocast_dtype = autocast
        self.freeze_d_for_g = freeze_d_for_g
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.generator = Generator(image_shape, latent_dim, generator_filters, kernel_size, channels_last)
        self.discriminator = Discriminator(image_shape, tuple(generator_filters[::-1]), kernel_size)
        self.generator.to(self.device, memory_format=memory_format)
        self.discriminator.to(self.device, memory_format=memory_format)
        self.d_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.g_optimizer = torch.optim.Adam(self.generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.loss = nn.BCEWithLogitsLoss()
        self._targets = {}

    def _autocast(self):
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _ones_zeros(self, batch):
        if batch not in self._targets:
            self._targets[batch] = (torch.ones(batch, 1, device=self.device), torch.zeros(batch, 1, device=self.device))
        return self._targets[batch]

    def train_step(self, real):
        batch = real.shape[0]
        if self.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        ones, zeros = self._ones_zeros(batch)
        with self._autocast():
            fake = self.generator(torch.randn(batch, self.latent_dim, device=self.device))

        self.d_optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            d_loss = self.loss(self.discriminator(real), ones) + self.loss(self.discriminator(fake.detach()), zeros)
        d_loss.backward()
        self.d_optimizer.step()

        self.g_optimizer.zero_grad(set_to_none=True)
        if self.freeze_d_for_g:
            self.discriminator.requires_grad_(False)
        with self._autocast():
            g_loss = self.loss(self.discriminator(fake), ones)
        g_loss.backward()
        if self.freeze_d_for_g:
            self.discriminator.requires_grad_(True)
        self.g_optimizer.step()
        return d_loss.detach(), g_loss.detach()

    @torch.inference_mode()
    def generate(self, z):
        """Latents (n, latent_dim) on the device -> images in [0, 1] (NCHW), with batch
        norm's moving statistics (as Keras' `training=False`)."""
        was_training = self.generator.training
        self.generator.eval()
        with self._autocast():
            images = self.generator(z)
        self.generator.train(was_training)
        return 0.5 * (images.float() + 1.0)

    def synchronize(self):
        """Wait for the device (CUDA runs asynchronously)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def parameter_counts(self):
        return {
            "generator": sum(p.numel() for p in self.generator.parameters()),
            "discriminator": sum(p.numel() for p in self.discriminator.parameters()),
        }
