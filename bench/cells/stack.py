"""Runs one of our layer classes as torch runs nn.RNN: layers x directions, dropout between layers,
sequences of different lengths, and the same outputs (B, L, D·H) and final state (layers·D, B, H).

A layer class (bench/cells/<name>.py) is one layer in one direction:
    __init__(input_size, hidden_size); forward(x (B, T, I), state (B, S) | None) -> (outputs (B, T, H), state (B, S))
where `state` is what the layer carries from step to step; `state_is_output = False` says it differs
from the output (LRU's complex state), and the stack then returns (h_n, carried states).
"""

from __future__ import annotations

import torch
from torch import nn


def reverse_valid(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Each sequence's valid steps in reverse order, padding left where it is (its own inverse)."""
    if lengths is None:
        return x.flip(1)
    steps = torch.arange(x.shape[1], device=x.device)[None, :]
    index = lengths.to(x.device)[:, None] - 1 - steps
    index = torch.where(index >= 0, index, steps)
    return x.gather(1, index[..., None].expand_as(x))


def at_last_step(outputs: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    if lengths is None:
        return outputs[:, -1]
    return outputs[torch.arange(outputs.shape[0], device=outputs.device), lengths.to(outputs.device) - 1]


class Stack(nn.Module):
    def __init__(
        self,
        layer_class: type[nn.Module],
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.directions = 2 if bidirectional else 1
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            layer_class(input_size if layer == 0 else hidden_size * self.directions, hidden_size)
            for layer in range(num_layers)
            for _ in range(self.directions)
        )
        self.carries_state = not getattr(layer_class, "state_is_output", True)

    def forward(self, x: torch.Tensor, hx=None, lengths: torch.Tensor | None = None):
        """`hx`: the state before step 1 as this returns it after the last step (None: zeros)."""
        carried_in = hx[1] if self.carries_state and hx is not None else hx
        finals, carried = [], []
        for layer in range(self.num_layers):
            if layer:
                x = self.dropout(x)
            outputs = []
            for direction in range(self.directions):
                index = layer * self.directions + direction
                state = None if carried_in is None else carried_in[index]
                inputs = x if direction == 0 else reverse_valid(x, lengths)
                out, state = self.layers[index](inputs, state)
                finals.append(at_last_step(out, lengths))
                carried.append(state)
                outputs.append(out if direction == 0 else reverse_valid(out, lengths))
            x = torch.cat(outputs, dim=-1)
        h_n = torch.stack(finals)
        return x, ((h_n, torch.stack(carried)) if self.carries_state else h_n)
