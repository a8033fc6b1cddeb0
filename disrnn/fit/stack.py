"""S networks of one architecture trained as one: the seed stack of ``disrnn.fit.loop``.

A fit of S seeds of one method on one dataset has S networks of the same shapes. Their
parameters are stacked along a leading seed dimension (``torch.func.stack_module_state``)
and the objective of every seed is computed in one call, vmapped over that dimension:

    terms[s] = loss_terms(network_s, h[s], x[s], eps[s], ...)        (seed, term)

One backward pass of sum_s terms[s, 0] gives each seed's parameters the gradient of its
own loss (the seeds share no parameter), and one AdamW step over the stacked tensors is,
element by element, the step each seed's own optimiser would take (AdamW is elementwise;
the seeds share the learning rate, weight decay and step count). So S seeds cost one
Python loop of optimiser steps instead of S; the arithmetic is the same up to the float
rounding of batched matrix products (tests compare with lone fits to a tolerance).

One seed (S = 1) calls the network directly, exactly as a lone fit always has.

Each seed's part can be read out and written back in the format of a lone fit
(:meth:`SeedStack.state_dict`, :meth:`SeedStack.optimizer_state`), so every seed keeps
its own checkpoint file, which a lone fit of that seed could resume from too.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from disrnn.fit.objective import loss_terms
from disrnn.models.modules import DisRNN

__all__ = ["SeedStack"]


class _Objective(nn.Module):
    """``forward`` = the loss terms of ``net`` (what the stack vmaps)."""

    def __init__(self, net: DisRNN, kl_weight: float):
        super().__init__()
        self.net = net
        self.kl_weight = kl_weight

    def forward(self, h, x, eps, n_total, beta, alpha, pc_h, pc_eps, u):
        args = (self.net, h, x, eps, n_total, beta, alpha, pc_h, pc_eps)
        return loss_terms(*args, u=u, kl_weight=self.kl_weight)


_PREFIX = "net."


class SeedStack:
    """The networks of S seeds as one set of stacked parameters.

    Args:
        modules: S DisRNN networks of one config (same shapes, same device). With S > 1
            their parameters are copied into stacked tensors: train through the stack,
            then :meth:`write_back` before using the modules again.
        kl_weight: the objective's weight of the KL term (``FitConfig.kl_weight``).
    """

    def __init__(self, modules: list[DisRNN], kl_weight: float = 1.0):
        if not modules:
            raise ValueError("a seed stack needs at least one network")
        self.modules = list(modules)
        self.size = len(modules)
        self.kl_weight = float(kl_weight)
        if self.size == 1:
            self._params = list(modules[0].parameters())
            return
        from torch.func import functional_call, stack_module_state, vmap

        self._keys = list(modules[0].state_dict())  # a network's state-dict keys
        wrapped = [_Objective(m, self.kl_weight) for m in modules]
        self._stacked, self._buffers = stack_module_state(wrapped)  # name -> (seed, ...)
        self._params = list(self._stacked.values())
        base = copy.deepcopy(wrapped[0]).to("meta")

        def one(params, buffers, h, x, eps, pc_h, pc_eps, u, n_total, beta, alpha):
            args = (h, x, eps, n_total, beta, alpha, pc_h, pc_eps, u)
            return functional_call(base, (params, buffers), args)

        self._one = one
        self._vmaps: dict = {}
        self._vmap = vmap

    @property
    def template(self) -> DisRNN:
        """The first network: the architecture's attributes (rank, groups, ...)."""
        return self.modules[0]

    def parameters(self) -> list[torch.Tensor]:
        """The tensors the optimiser updates (a lone network's own parameters, or the
        stacked (seed, ...) tensors in the order of ``named_parameters``)."""
        return self._params

    def loss_terms(
        self, h, x, eps, n_total: int, beta: float, alpha: float, pc_h=None, pc_eps=None, u=None
    ) -> torch.Tensor:
        """(seed, term) loss terms of :func:`disrnn.fit.objective.loss_terms`.

        Args:
            h: (seed, batch, unit) or (seed, batch, L, unit); x: (seed, batch, unit);
            eps: (seed, batch, latent); pc_h, pc_eps: the same for a separate PC batch or
            None; u: (seed, batch, unit) known input or None.
        """
        if self.size == 1:
            m = self.modules[0]
            first = (None if t is None else t[0] for t in (pc_h, pc_eps, u))
            pc_h0, pc_eps0, u0 = first
            args = (m, h[0], x[0], eps[0], n_total, beta, alpha, pc_h0, pc_eps0)
            return loss_terms(*args, u=u0, kl_weight=self.kl_weight)[None]
        key = (pc_h is None, u is None)
        if key not in self._vmaps:
            opt = [None if t is None else 0 for t in (pc_h, pc_eps, u)]
            dims = (0, 0, 0, 0, 0, *opt, None, None, None)
            self._vmaps[key] = self._vmap(self._one, in_dims=dims)
        return self._vmaps[key](
            self._stacked, self._buffers, h, x, eps, pc_h, pc_eps, u, n_total, beta, alpha
        )

    # ------------------------------------------------------- one seed's part, lone format
    def state_dict(self, s: int) -> dict:
        """Seed ``s``'s network state, keyed as its ``module.state_dict()`` (copies)."""
        if self.size == 1:
            return copy.deepcopy(self.modules[0].state_dict())
        tensors = {**self._stacked, **self._buffers}
        return {k: tensors[_PREFIX + k][s].detach().clone() for k in self._keys}

    @torch.no_grad()
    def load_state_dict(self, s: int, state: dict) -> None:
        """Seed ``s`` takes ``state`` (a ``module.state_dict()``)."""
        if self.size == 1:
            self.modules[0].load_state_dict(state)
            return
        self.modules[s].load_state_dict(state)
        tensors = {**self._stacked, **self._buffers}
        for k, v in state.items():
            tensors[_PREFIX + k][s].copy_(v)

    @torch.no_grad()
    def write_back(self) -> None:
        """Copy every seed's stacked parameters and buffers into its own network."""
        if self.size == 1:
            return
        for s, m in enumerate(self.modules):
            m.load_state_dict(self.state_dict(s))

    def optimizer_state(self, opt: torch.optim.Optimizer, s: int) -> dict:
        """Seed ``s``'s part of ``opt.state_dict()``: what a lone fit's AdamW would hold
        (copies, which the optimiser's later steps leave as they are)."""
        full = opt.state_dict()
        if self.size == 1:
            return copy.deepcopy(full)
        state = {
            i: {k: (v[s].clone() if k != "step" else v.clone()) for k, v in st.items()}
            for i, st in full["state"].items()
        }
        return {"state": state, "param_groups": copy.deepcopy(full["param_groups"])}

    def load_optimizer_states(self, opt: torch.optim.Optimizer, states: list) -> None:
        """Load each seed's lone-format optimiser state into ``opt`` (the stacked one).

        ``states[s]`` is seed s's state or None (seed s starts afresh: zero moments);
        the step count is taken from the first seed that has one (the seeds resume
        together, so theirs agree).
        """
        if self.size == 1:
            if states[0] is not None:
                opt.load_state_dict(states[0])
            return
        known = [st for st in states if st is not None and st["state"]]
        if not known:
            return
        ref = known[0]
        merged = {}
        for i, ref_st in ref["state"].items():
            entry = {"step": ref_st["step"].clone()}
            for k, v in ref_st.items():
                if k == "step":
                    continue
                parts = [
                    st["state"][i][k] if st is not None and st["state"] else torch.zeros_like(v)
                    for st in states
                ]
                entry[k] = torch.stack(parts)
            merged[i] = entry
        opt.load_state_dict({"state": merged, "param_groups": ref["param_groups"]})
