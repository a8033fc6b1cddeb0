"""The acausal encoder of a fit's smoothing posterior (``disrnn.evaluation.cosmoothing``).

    c_t   = b_s + sum_{l=-Lf..Lf} phi_{k,l} (B_s f_{t-l})_k / sum_l phi_{k,l} obs_{t-l}
            + E [h>_t ; h<_t]                                  (context path, optional)
    z^s_t = T (c_t + o)  (T: a fixed (latent, latent) basis, the identity when not given;
                          o: a fixed offset, 0 when not given)
    eta^ho_t = D c_t + d (:class:`HeldoutReadout`: the held-out units' rows of a linear
                          decoder in the c coordinates, D = A_ho T and d = a_ho + D o at the
                          start)

f (trial, time, held-in unit) input features, obs (trial, time) 1 where observed: a
normalised convolution over the trial's observed bins, future and past alike. The
context path is a bidirectional GRU over the whole trial, h>_t = GRU>([f_t obs_t, obs_t],
h>_{t-1}) forward and h<_t = GRU<([f_t obs_t, obs_t], h<_{t+1}) backward (H units each),
read out by E (latent, 2 H), which starts at 0: training starts from the convolution
alone and adds what the trial's context (its position in the trial, what happened seconds
before or after, nonlinearly) tells about the latents beyond it. With a context stride
r > 1 the GRU steps over blocks of r bins, its input each block's mean of [f obs, obs]
(bins past the trial's end count as unobserved), and E h is interpolated linearly back
to the bins (block j's value at the centre of its r bins): the context is slow, and a GRU's
steps run one after another, so at fine bins its time, not the convolution's, dominates.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

__all__ = ["HeldoutReadout", "SmoothingEncoder", "acausal_conv", "initial_kernel", "svd_basis"]


def acausal_conv(p: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """out[:, t, c] = sum_{l=-Lf..Lf} phi[c, l + Lf] p[:, t - l, c], zero outside the trial.

    Computed by FFT: with y = p * phi the full linear convolution along time (length
    T + 2 Lf, no wrap-around), out[t] = y[t + Lf]. Its cost grows with T log T instead of
    T Lf, which matters at fine bins: at 5 ms the default kernel has 401 lags, and a batch
    of 16 trials x 1,240 bins x 8 channels took 114 ms forward and backward as a direct
    convolution against 6 ms by FFT (one thread; 12 ms against 4 ms at 20 ms bins). The
    results agree with the direct sum to float rounding (about 1e-7 in float32).

    Args:
        p: (trial, time, channel) float; phi: (channel, 2 Lf + 1) or (2 Lf + 1,) weights,
            phi[..., 0] weighs t + Lf (the future), phi[..., Lf] lag 0, phi[..., -1] t - Lf.
    Returns:
        (trial, time, channel), the time convolution done per trial.
    """
    n_ch, n_time = p.shape[2], p.shape[1]
    phi = phi.expand(n_ch, -1) if phi.dim() == 1 else phi
    n_lag = phi.shape[1]
    lf = (n_lag - 1) // 2
    n = n_time + n_lag - 1
    y = torch.fft.irfft(
        torch.fft.rfft(p, n=n, dim=1) * torch.fft.rfft(phi.T, n=n, dim=0), n=n, dim=1
    )  # (trial, n, channel): y[s] = sum_j phi[j] p[s - j]
    return y[:, lf : lf + n_time]


def initial_kernel(lags: int, tau_short: float, short_weight: float) -> torch.Tensor:
    """The kernel phi starts from: (2 Lf + 1,) float32, positive, summing to 1.

    A mixture of two symmetric exponentials over lags l = -Lf..Lf,

        phi_l = w e^{-|l| / tau_s} / Z_s + (1 - w) e^{-|l| / tau_l} / Z_l,   tau_l = Lf / 3,

    w = ``short_weight``, tau_s = ``tau_short`` (bins, > 0), each term normalised to sum 1.
    The short term lets latents follow fast changes from the first step, the long one lets
    them average over the whole span; training reweighs the lags from there.
    """
    lag = torch.arange(-lags, lags + 1, dtype=torch.float32).abs()
    short = torch.softmax(-lag / max(float(tau_short), 1e-3), dim=0)
    wide = torch.softmax(-lag / max(lags / 3.0, 1.0), dim=0)
    return short_weight * short + (1.0 - short_weight) * wide


def svd_basis(A: torch.Tensor, B_in: torch.Tensor, b: torch.Tensor, rtol: float = 1e-6):
    """The coordinates of the SVD of W_in = A B_in, in which the posterior encoder learns.

    With W_in = U S V^T (unit x held-in unit, rank K), the fit's latents z = B_in f + b
    are z = T c with c = V_K^T f + T^{-1} b and A T = U_K S_K: the same predictions
    A z = W_in f + A b in coordinates that depend on the fit only through W_in, not on
    how it splits W_in into A and B_in (lrRNN, LINT and lrRNN+ICA of one fit share them).
    Each row of V_K^T has its largest entry positive.

    Args:
        A: (unit, K) decoder; B_in: (K, held-in unit) encoder columns of the held-in units;
        b: (K,) encoder bias; rtol: smallest singular value relative to the largest.
    Returns:
        (T, B_c, b_c): (K, K), (K, held-in unit), (K,) float32, T B_c = B_in; None when
        W_in has rank < K (a latent the decoder or encoder ignores): then the posterior
        keeps the fit's coordinates.
    """
    A, B_in, b = A.double(), B_in.double(), b.double()
    K = A.shape[1]
    U, S, Vt = torch.linalg.svd(A @ B_in, full_matrices=False)
    if S.numel() < K or not S[K - 1] > rtol * S[0]:
        return None
    Vt = Vt[:K]
    sign = torch.sign(Vt.gather(1, Vt.abs().argmax(1, keepdim=True)))  # (K, 1)
    Vt, Ac = Vt * sign, U[:, :K] * S[:K] * sign.T
    T = torch.linalg.lstsq(A, Ac).solution  # (K, K), A T = Ac
    b_c = torch.linalg.solve(T, b)
    return T.float(), Vt.float(), b_c.float()


class SmoothingEncoder(torch.nn.Module):
    """z^s = T (b_s + conv_phi(B_s f) / conv_phi(obs) + o): the acausal encoder (module
    docstring).

    Args:
        n_in: held-in units; rank: K latents; lags: Lf; per_latent: one phi per latent;
        B, b: (K, n_in), (K,) initial weights (None: random, scale 1/sqrt(n_in), zero);
        tau_short, short_weight: the initial kernel, :func:`initial_kernel` (the defaults
        give the single symmetric exponential of tau Lf / 3).
        basis: (K, K) fixed T from the encoder's coordinates c to the latents,
            z = T (c + offset) (None: the identity); B and b are in the c coordinates.
        offset: (K,) fixed o in the c coordinates (None: 0).
        context: H, units per direction of the context path's GRU (0: no context path).
            Its weights are drawn from ``generator`` (torch's GRU law, U(-1/sqrt H,
            1/sqrt H)); its readout E starts at 0.
        context_stride: r, bins per step of the context GRU (module docstring; 1: every
            bin).
    """

    def __init__(
        self,
        n_in,
        rank,
        lags,
        per_latent=False,
        B=None,
        b=None,
        generator=None,
        tau_short: float = 1.0,
        short_weight: float = 0.0,
        basis=None,
        context: int = 0,
        offset=None,
        context_stride: int = 1,
    ):
        super().__init__()
        if not (isinstance(context_stride, int) and context_stride >= 1):
            raise ValueError(f"context_stride must be an integer >= 1, got {context_stride!r}")
        self.context_stride = context_stride
        if basis is not None:
            basis = torch.as_tensor(basis, dtype=torch.float32).clone()
        self.register_buffer("basis", basis)
        if offset is not None:
            offset = torch.as_tensor(offset, dtype=torch.float32).clone()
        self.register_buffer("offset", offset)
        if B is None:
            B = torch.randn(rank, n_in, generator=generator) / math.sqrt(max(n_in, 1))
        self.B = torch.nn.Parameter(torch.as_tensor(B, dtype=torch.float32).clone())
        b = torch.zeros(rank) if b is None else torch.as_tensor(b, dtype=torch.float32)
        self.b = torch.nn.Parameter(b.clone())
        logits = torch.log(initial_kernel(lags, tau_short, short_weight))
        self.logits = torch.nn.Parameter(logits.repeat(rank if per_latent else 1, 1))
        self.gru = self.context_out = None
        if context > 0:
            with torch.random.fork_rng(devices=[]):  # the global RNG stays untouched
                self.gru = torch.nn.GRU(n_in + 1, context, batch_first=True, bidirectional=True)
                self.context_out = torch.nn.Linear(2 * context, rank)
            bound = 1.0 / math.sqrt(context)
            with torch.no_grad():
                for w in self.gru.parameters():
                    w.uniform_(-bound, bound, generator=generator)
                self.context_out.weight.zero_()
                self.context_out.bias.zero_()

    @property
    def phi(self) -> torch.Tensor:
        """(1 or latent, 2 Lf + 1) kernel over lags +Lf (future) .. -Lf (past)."""
        return torch.softmax(self.logits, dim=1)

    def coords(self, f: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """f: (trial, time, n_in) input features, obs: (trial, time) float 1 where observed
        (unobserved bins are left out) -> c: (trial, time, latent), the encoder's own
        coordinates."""
        phi = self.phi.expand(self.b.numel(), -1)
        num = acausal_conv((f @ self.B.T) * obs[..., None], phi)  # (trial, time, latent)
        den = acausal_conv(obs[..., None].expand(-1, -1, self.b.numel()), phi)
        # a bin with (almost) no observed bin in its span (den below 1e-6, where the
        # FFT's rounding is as large as den itself) gets c = b from the kernel path
        c = torch.where(den > 1e-6, num / den.clamp_min(1e-6), 0.0) + self.b
        if self.gru is not None:
            c = c + self._context(torch.cat([f * obs[..., None], obs[..., None]], dim=-1))
        return c

    def _context(self, g: torch.Tensor) -> torch.Tensor:
        """g: (trial, time, n_in + 1) GRU input -> E [h>; h<]: (trial, time, latent), the
        GRU stepping over blocks of ``context_stride`` bins (module docstring)."""
        r, n_time = self.context_stride, g.shape[1]
        if r == 1:
            h, _ = self.gru(g)
            return self.context_out(h)
        n_block = -(-n_time // r)
        g = F.pad(g, (0, 0, 0, n_block * r - n_time))  # the last block's missing bins: 0
        h, _ = self.gru(g.unflatten(1, (n_block, r)).mean(2))  # (trial, block, 2 H)
        e = self.context_out(h).transpose(1, 2)  # (trial, latent, block)
        e = F.interpolate(e, scale_factor=r, mode="linear", align_corners=False)
        return e[:, :, :n_time].transpose(1, 2)

    def to_latents(self, c: torch.Tensor) -> torch.Tensor:
        """c (..., latent) -> z = T (c + o) (..., latent)."""
        c = c if self.offset is None else c + self.offset
        return c if self.basis is None else c @ self.basis.T

    def forward(self, f: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """f, obs as :meth:`coords` -> z: (trial, time, latent) the fit's latents."""
        return self.to_latents(self.coords(f, obs))


class HeldoutReadout(torch.nn.Module):
    """eta_ho = c D^T + d: the held-out units' natural parameters from the encoder's
    coordinates c (z = T (c + o)), a linear readout trained with the encoder.

    Started at the fit's own decoder rows, D = A_ho T and d = a_ho + D o, so before training
    it predicts what the fit's decoder predicts from z; both D and d are then fitted to the
    held-out units of the training trials, as NLB's co-smoothing fits a readout of held-out
    neurons. A T does not depend on how a fit splits W into A and B (for A' = A M,
    B' = M^-1 B the SVD basis is T' = M^-1 T), so neither does the readout.

    Args:
        A_ho: (held-out unit, latent) the fit's decoder rows; a_ho: (held-out unit,) biases.
        basis: (latent, latent) T of the encoder, or None (the identity); offset: (latent,)
        o of the encoder, or None (0).
    """

    def __init__(self, A_ho: torch.Tensor, a_ho: torch.Tensor, basis=None, offset=None):
        super().__init__()
        D = torch.as_tensor(A_ho, dtype=torch.float32)
        if basis is not None:
            D = D @ torch.as_tensor(basis, dtype=torch.float32)
        d = torch.as_tensor(a_ho, dtype=torch.float32)
        if offset is not None:
            d = d + D @ torch.as_tensor(offset, dtype=torch.float32)
        self.D = torch.nn.Parameter(D.detach().clone())
        self.d = torch.nn.Parameter(d.detach().clone())

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        """c: (..., latent) -> (..., held-out unit) eta."""
        return c @ self.D.T + self.d
