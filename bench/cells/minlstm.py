"""minLSTM (Feng et al. 2024, "Were RNNs All We Needed?"): an LSTM whose gates read the input only and
whose forget and input gates are normalised to sum to 1, so that the scale of h does not depend on time:

    f_t = σ(W_f x_t + b_f),  i_t = σ(W_i x_t + b_i),  h̃_t = g(W_h x_t + b_h),
    f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t),  h_t = f'_t ⊙ h_{t-1} + i'_t ⊙ h̃_t.

Linear in h: it runs in parallel over time (bench/cells/scan.py). No cell state and no output gate
(the paper drops both); g is minGRU's activation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.cells.mingru import g
from bench.cells.scan import linear_scan


class MinLSTM(nn.Module):
    """One layer, one direction. The state is h (B, H); None means h_0 = 0."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.hidden_size = hidden_size
        self.linear = nn.Linear(input_size, 3 * hidden_size)  # [W_f; W_i; W_h]: one matmul

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, I) -> (h_1..h_T (B, T, H), h_T (B, H)), all steps at once."""
        forget, input_gate, candidate = self.linear(x).chunk(3, dim=-1)
        # i' = i / (f + i) = σ(log i - log f), and log σ(k) = -softplus(-k): exact where f and i are
        # both tiny (their ratio still counts) and where one rounds to 1; f' = 1 - i' = σ(log f - log i).
        log_ratio = F.softplus(-forget) - F.softplus(-input_gate)
        h = linear_scan(torch.sigmoid(-log_ratio), torch.sigmoid(log_ratio) * g(candidate), state)
        return h, h[:, -1]

    def sequential(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The same, one step at a time, as the paper writes it: the reference for the scan. (The gates'
        matmul, which does not depend on h, is done for all steps at once.)"""
        h = x.new_zeros(x.shape[0], self.hidden_size) if state is None else state
        forgets, input_gates, candidates = self.linear(x).chunk(3, dim=-1)
        outputs = []
        for t in range(x.shape[1]):
            f, i = torch.sigmoid(forgets[:, t]), torch.sigmoid(input_gates[:, t])
            h = f / (f + i) * h + i / (f + i) * g(candidates[:, t])
            outputs.append(h)
        return torch.stack(outputs, dim=1), h
