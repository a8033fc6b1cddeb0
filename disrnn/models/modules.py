"""The DisRNN network: history kernel, encoder, decoder (``nn.Module``s only).

Built, trained and saved by ``disrnn.fit``; the loss is ``disrnn.fit.objective``.

Notation (the model of the design, docs/design.md): x_t (unit,) activity at bin t; L history bins;
K = sum(groups) latent dimensions.

    h_t   = sum_{l=1..L} psi_l tanh(x_{t-l})                       (unit,)
    q(z_t | x_<t) = N(B h_t + b, sigma_q^2 I)                       (latent,)
    x_t | z_t ~ N(A z_t + a + u_t, diag(s^2))   or   Poisson(f(A z_t + a + u_t))

u_t (unit,) is a known input (the dataset's optional ``input``), zero when absent.

With a linear encoder and decoder the one-step mean is the low-rank RNN
x_t = f(A B h_t + A b + a): W = A B (unit, unit), J = B A (latent, latent).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def fixed_kernel(history: int) -> torch.Tensor:
    """psi_l proportional to exp(-(l-1)), l = 1..L, normalised to sum 1: (L,) float32."""
    w = torch.exp(-torch.arange(history, dtype=torch.float32))
    return w / w.sum()


class HistoryKernel(nn.Module):
    """h = sum_l psi_l * lagged[..., l-1, :] for lagged = tanh(x_{t-l}), l = 1..L.

    ``learned=True`` parametrises psi = softmax(logits), initialised at the fixed kernel.
    """

    def __init__(self, history: int = 1, learned: bool = False):
        super().__init__()
        self.history = history
        self.learned = learned
        logits = torch.log(fixed_kernel(history))
        if learned and history > 1:
            self.logits = nn.Parameter(logits)
        else:
            self.register_buffer("logits", logits)

    @property
    def psi(self) -> torch.Tensor:
        """(L,) kernel weights, psi[0] weighs x_{t-1}."""
        return torch.softmax(self.logits, dim=0)

    def forward(self, lagged: torch.Tensor) -> torch.Tensor:
        """lagged: (..., L, unit) tanh of the L previous bins -> h: (..., unit)."""
        if self.history == 1:
            return lagged[..., 0, :]
        return torch.einsum("l,...ln->...n", self.psi, lagged)


class DisRNN(nn.Module):
    """Encoder + decoder of one fit; the history kernel is ``self.kernel``.

    Args:
        n_units: N, all units (held-out included).
        groups: latent group sizes; K = sum(groups).
        likelihood: ``gaussian`` or ``poisson``; link: ``softplus`` or ``exp`` (Poisson).
        history, learned_kernel: L and whether psi is learned.
        log_sigma: initial log sigma_q (the rule of thumb -log(N_tot)/(K+4)).
        learned_sigma: make log sigma_q a parameter.
        encoder, decoder: ``linear`` or ``mlp`` (one hidden tanh layer of ``hidden``).
        input_mask: (unit,) bool, True for units the encoder may see (held-in units).
        generator: torch.Generator for the initial weights.
    """

    def __init__(
        self,
        n_units: int,
        groups: tuple[int, ...],
        likelihood: str = "gaussian",
        link: str = "softplus",
        history: int = 1,
        learned_kernel: bool = False,
        log_sigma: float = -1.0,
        learned_sigma: bool = False,
        encoder: str = "linear",
        decoder: str = "linear",
        hidden: int = 64,
        input_mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.n_units = n_units
        self.groups = tuple(groups)
        self.rank = K = sum(groups)
        self.likelihood = likelihood
        self.link = link
        self.encoder_kind = encoder
        self.decoder_kind = decoder
        self.kernel = HistoryKernel(history, learned_kernel)
        if input_mask is None:
            input_mask = torch.ones(n_units, dtype=torch.bool)
        self.register_buffer("input_mask", input_mask.to(torch.float32))
        # latent_group: (latent,) group index of each latent
        self.register_buffer(
            "latent_group",
            torch.repeat_interleave(torch.arange(len(groups)), torch.tensor(groups)),
        )
        ls = torch.tensor(float(log_sigma))
        if learned_sigma:
            self.log_sigma = nn.Parameter(ls)
        else:
            self.register_buffer("log_sigma", ls)

        def randn(*shape, scale):
            return torch.randn(*shape, generator=generator) * scale

        n_in = max(int(input_mask.sum()), 1)
        if encoder == "linear":
            self.B_raw = nn.Parameter(randn(K, n_units, scale=1 / math.sqrt(n_in)))
            self.b = nn.Parameter(torch.zeros(K))
        else:
            self.enc_w1 = nn.Parameter(randn(hidden, n_units, scale=1 / math.sqrt(n_in)))
            self.enc_b1 = nn.Parameter(torch.zeros(hidden))
            self.enc_w2 = nn.Parameter(randn(K, hidden, scale=1 / math.sqrt(hidden)))
            self.b = nn.Parameter(torch.zeros(K))
        if decoder == "linear":
            self.A = nn.Parameter(randn(n_units, K, scale=1 / math.sqrt(K)))
            self.a = nn.Parameter(torch.zeros(n_units))
        else:
            self.dec_w1 = nn.Parameter(randn(hidden, K, scale=1 / math.sqrt(K)))
            self.dec_b1 = nn.Parameter(torch.zeros(hidden))
            self.dec_w2 = nn.Parameter(randn(n_units, hidden, scale=1 / math.sqrt(hidden)))
            self.a = nn.Parameter(torch.zeros(n_units))
        if likelihood == "gaussian":
            self.log_s = nn.Parameter(torch.full((n_units,), -1.0))

    # --------------------------------------------------------------------- pieces
    @property
    def B(self) -> torch.Tensor:
        """(latent, unit) encoder weights; held-out columns are zero."""
        return self.B_raw * self.input_mask

    def features(self, h) -> torch.Tensor:
        """History features h_t: (bin, unit) as given (fixed kernel, precomputed), or the
        learned kernel applied to (bin, L, unit) tanh of the L previous bins: a tensor, or
        a lazy stack with ``weighted(psi)`` (``disrnn.fit.tensors.HistoryBins``)."""
        if not isinstance(h, torch.Tensor):
            return h.weighted(self.kernel.psi)
        return self.kernel(h) if h.dim() == 3 else h

    def encode(self, h: torch.Tensor) -> torch.Tensor:
        """h: (..., unit) history features -> mu: (..., latent) posterior means."""
        if self.encoder_kind == "linear":
            return h @ self.B.T + self.b
        hid = torch.tanh(h @ (self.enc_w1 * self.input_mask).T + self.enc_b1)
        return hid @ self.enc_w2.T + self.b

    def decode(self, z: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        """z: (..., latent), u: (..., unit) known input or None -> eta: (..., unit)
        natural parameter (Gaussian mean or Poisson pre-link), A z + a (+ u)."""
        if self.decoder_kind == "linear":
            eta = z @ self.A.T + self.a
        else:
            eta = torch.tanh(z @ self.dec_w1.T + self.dec_b1) @ self.dec_w2.T + self.a
        return eta if u is None else eta + u

    def mean(self, eta: torch.Tensor) -> torch.Tensor:
        """Expected activity per bin from eta (counts per bin for Poisson)."""
        if self.likelihood == "gaussian":
            return eta
        return torch.exp(eta) if self.link == "exp" else F.softplus(eta)

    def forward(self, lagged: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        """lagged: (..., L, unit) tanh of previous bins, u: (..., unit) known input or
        None -> (..., unit) one-step mean (decoder applied to the posterior mean)."""
        return self.mean(self.decode(self.encode(self.kernel(lagged)), u))
