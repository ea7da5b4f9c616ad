"""The same DCGAN in PyTorch, as a user would write it from the PyTorch DCGAN
example: the networks mirror genzoo's DCGAN layer for layer (project + batch
norm + ReLU, 5x5 stride-2 transposed convolutions, tanh; strided 5x5
convolutions with LeakyReLU(0.2) and batch norm but on the input layer),
BCE-with-logits losses, Adam(2e-4, beta_1=0.5), and per batch one
discriminator step on real and detached fake images, then one generator step
through the updated discriminator (non-saturating loss), reusing the fake batch.

Importing this module imports torch; nothing runs at import time.
"""

import torch
from torch import nn


class Generator(nn.Module):
    def __init__(self, image_shape=(28, 28, 1), latent_dim=100, filters=(128, 64), kernel_size=5):
        super().__init__()
        height, width, channels = image_shape
        stages = len(filters)
        self.bottom = (filters[0], height // 2**stages, width // 2**stages)
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
        return self.body(self.project(z).view(-1, *self.bottom))


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

    def __init__(self, image_shape=(28, 28, 1), latent_dim=100, generator_filters=(128, 64), kernel_size=5, seed=0):
        torch.manual_seed(seed)
        self.latent_dim = latent_dim
        self.generator = Generator(image_shape, latent_dim, generator_filters, kernel_size)
        self.discriminator = Discriminator(image_shape, tuple(generator_filters[::-1]), kernel_size)
        self.d_optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.g_optimizer = torch.optim.Adam(self.generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.loss = nn.BCEWithLogitsLoss()

    def train_step(self, real):
        batch = real.shape[0]
        ones, zeros = torch.ones(batch, 1), torch.zeros(batch, 1)
        fake = self.generator(torch.randn(batch, self.latent_dim))

        self.d_optimizer.zero_grad(set_to_none=True)
        d_loss = self.loss(self.discriminator(real), ones) + self.loss(self.discriminator(fake.detach()), zeros)
        d_loss.backward()
        self.d_optimizer.step()

        self.g_optimizer.zero_grad(set_to_none=True)
        g_loss = self.loss(self.discriminator(fake), ones)
        g_loss.backward()
        self.g_optimizer.step()
        return d_loss.detach(), g_loss.detach()
