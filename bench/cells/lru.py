"""LRU, the Linear Recurrent Unit (Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks for
Long Sequences"): a complex diagonal linear recurrence with a real read-out,

    x_t = λ ⊙ x_{t-1} + γ ⊙ (B u_t),   y_t = Re(C x_t) + D u_t,   λ = exp(-exp(ν) + i·exp(θ)),

run in parallel over time (bench/cells/scan.py). The exponential parametrisation keeps |λ| < 1 (stable)
whatever ν is; γ = sqrt(1 - |λ|²) keeps x_t's scale that of B u_t however close |λ| is to 1.

Our choices, where the paper leaves room:
- the state has N = hidden_size complex units (the paper varies N apart from the model width H; one
  size keeps `hidden` meaning "state size" for every cell of the suite);
- |λ| starts uniform (by area) on the ring r_min = 0.9 .. r_max = 0.999 and the phase in [0, 2π):
  the paper's ring for long-range tasks, where it finds that starting near the unit circle is what
  lets the LRU learn long dependencies; its code's default 0 .. 1 fills the disk, and most units then
  forget within a few steps. At |λ| = 0.999 a unit's memory is ~1,000 steps, the suite's longest T;
- γ is trained, starting at sqrt(1 - |λ|²), as in the paper's code (log-parametrised, like ν and θ);
- D is a full hidden x input matrix (the paper's D is diagonal because its input and output widths are
  equal; here they need not be), started like B at N(0, 1/input);
- the output step t is y_t, what the next layer or the head reads; the carried state is x_t (complex).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bench.cells.scan import linear_scan

R_MIN, R_MAX, MAX_PHASE = 0.9, 0.999, 2 * math.pi


class LRU(nn.Module):
    """One layer, one direction. The state is x (B, N), complex; None means x_0 = 0."""

    state_is_output = False  # the stack returns the complex x_T beside the outputs y_T

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        r_min: float = R_MIN,
        r_max: float = R_MAX,
        max_phase: float = MAX_PHASE,
    ):
        super().__init__()
        self.hidden_size = state_size = hidden_size
        # 1 - U[0, 1) is in (0, 1]: no log(0) below
        modulus_squared = (1 - torch.rand(state_size)) * (r_max**2 - r_min**2) + r_min**2
        self.nu_log = nn.Parameter(torch.log(-0.5 * torch.log(modulus_squared)))  # |λ| = exp(-exp(ν))
        self.theta_log = nn.Parameter(torch.log(max_phase * (1 - torch.rand(state_size))))
        self.gamma_log = nn.Parameter(0.5 * torch.log(1 - modulus_squared))
        self.B_re = nn.Parameter(torch.randn(state_size, input_size) / math.sqrt(2 * input_size))
        self.B_im = nn.Parameter(torch.randn(state_size, input_size) / math.sqrt(2 * input_size))
        self.C_re = nn.Parameter(torch.randn(hidden_size, state_size) / math.sqrt(state_size))
        self.C_im = nn.Parameter(torch.randn(hidden_size, state_size) / math.sqrt(state_size))
        self.D = nn.Parameter(torch.randn(hidden_size, input_size) / math.sqrt(input_size))

    def eigenvalues(self) -> torch.Tensor:
        """λ (N,), complex: exp(-exp(ν) + i·exp(θ))."""
        return torch.exp(torch.complex(-torch.exp(self.nu_log), torch.exp(self.theta_log)))

    def forward(self, u: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """u (B, T, I) -> (y_1..y_T (B, T, H), x_T (B, N) complex), all steps at once."""
        batch, steps, _ = u.shape
        # Complex products as real matmuls over interleaved (re, im) pairs, which view_as_complex and
        # view_as_real read and write without a copy: B u -> rows (γ B_re, γ B_im) per state unit ...
        gamma = torch.exp(self.gamma_log)[:, None, None]
        weight_in = (torch.stack([self.B_re, self.B_im], dim=1) * gamma).reshape(-1, u.shape[-1])
        inputs = torch.view_as_complex(F.linear(u, weight_in).reshape(batch, steps, -1, 2))
        lam = self.eigenvalues()
        x = linear_scan(lam.expand(1, steps, -1), inputs, state)
        # ... and Re(C x) = C_re x_re - C_im x_im -> columns (C_re, -C_im) per state unit
        weight_out = torch.stack([self.C_re, -self.C_im], dim=2).reshape(self.hidden_size, -1)
        y = F.linear(torch.view_as_real(x).reshape(batch, steps, -1), weight_out) + F.linear(u, self.D)
        return y, x[:, -1]

    def sequential(self, u: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The same, one step at a time, in complex arithmetic as the paper writes it: the reference. (The
        matmuls that do not depend on x, B u_t and the read-out, are done for all steps at once.)"""
        lam = self.eigenvalues()
        B = torch.complex(self.B_re, self.B_im) * torch.exp(self.gamma_log)[:, None]
        C = torch.complex(self.C_re, self.C_im)
        inputs = u.to(B.dtype) @ B.T
        x = u.new_zeros(u.shape[0], self.hidden_size, dtype=lam.dtype) if state is None else state
        states = []
        for t in range(u.shape[1]):
            x = lam * x + inputs[:, t]
            states.append(x)
        return (torch.stack(states, dim=1) @ C.T).real + u @ self.D.T, x
