"""The one configurable recurrent network. Every variant is an instance of `RecurrentNet`.

encoder (token embedding or float projection) -> recurrent stack (nn.RNN / nn.LSTM / nn.GRU,
cuDNN on GPU) -> head (per step, or per sequence from the final state or a pooled state).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from bench.variants import CELL_SPECS


class LinearRNN(nn.Module):
    """h_t = A·[h_{t-1}; x_t] + b with no activation, for the ablation: torch's nn.RNN only offers
    tanh and relu. A plain loop (no cuDNN); same parameter names and outputs as nn.RNN."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
        batch_first: bool = True,
    ):
        super().__init__()
        self.hidden_size, self.num_layers, self.bidirectional = hidden_size, num_layers, bidirectional
        self.directions = 2 if bidirectional else 1
        self.dropout = nn.Dropout(dropout)
        self.cells = nn.ModuleList()
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * self.directions
            for _ in range(self.directions):
                self.cells.append(nn.Linear(layer_input + hidden_size, hidden_size))

    def _run(
        self, cell: nn.Linear, x: torch.Tensor, mask: torch.Tensor | None, reverse: bool, h: torch.Tensor | None = None
    ):
        batch, steps, _ = x.shape
        h = x.new_zeros(batch, self.hidden_size) if h is None else h
        outputs = [None] * steps
        order = range(steps - 1, -1, -1) if reverse else range(steps)
        for t in order:
            new_h = cell(torch.cat([h, x[:, t]], dim=-1))
            h = new_h if mask is None else torch.where(mask[:, t, None], new_h, h)  # hold h past the end
            outputs[t] = h
        return torch.stack(outputs, dim=1), h

    def forward(self, x: torch.Tensor, hx: torch.Tensor | None = None, lengths: torch.Tensor | None = None):
        """Like nn.RNN: `hx` (layers x directions, B, H) is the initial state (zeros if None)."""
        mask = None
        if lengths is not None:
            mask = torch.arange(x.shape[1], device=x.device)[None, :] < lengths.to(x.device)[:, None]
        finals = []
        for layer in range(self.num_layers):
            if layer:
                x = self.dropout(x)
            index = [layer * self.directions + d for d in range(self.directions)]
            results = [
                self._run(self.cells[i], x, mask, reverse=i % self.directions == 1, h=None if hx is None else hx[i])
                for i in index
            ]
            x = torch.cat([out for out, _ in results], dim=-1)
            finals.extend(h for _, h in results)
        return x, torch.stack(finals, dim=0)


class RecurrentNet(nn.Module):
    def __init__(
        self,
        *,
        input_kind: Literal["tokens", "floats"],
        input_size: int,
        output_size: int,
        output_kind: Literal["per-step", "per-sequence"],
        cell: str = "rnn",
        activation: str = "tanh",
        init: str = "default",
        layers: int = 1,
        bidirectional: bool = False,
        hidden: int = 64,
        embedding_size: int = 32,
        dropout: float = 0.0,
        pooling: str = "last",
        pretrained_embedding: torch.Tensor | None = None,
        freeze_embedding: bool = True,
        pack: bool = True,
    ):
        super().__init__()
        # pack=False reads a padded batch's last valid steps instead of packing it (see bench/text.py,
        # `batching`): exact only for one direction, where padding comes after the last valid step.
        if not pack and bidirectional:
            raise ValueError("unpacked padded batches need a unidirectional network")
        self.pack = pack
        self.output_kind, self.pooling, self.cell = output_kind, pooling, cell
        self.directions = 2 if bidirectional else 1
        if input_kind == "tokens":
            if pretrained_embedding is not None:
                self.encoder = nn.Embedding.from_pretrained(pretrained_embedding.float(), freeze=freeze_embedding)
            else:
                self.encoder = nn.Embedding(input_size, embedding_size)
        else:
            self.encoder = nn.Linear(input_size, embedding_size)
        recurrent_input = self.encoder.embedding_dim if input_kind == "tokens" else embedding_size
        options = dict(
            num_layers=layers, bidirectional=bidirectional, batch_first=True, dropout=dropout if layers > 1 else 0.0
        )
        spec = CELL_SPECS[cell]
        if spec.simple and activation == "linear":
            self.recurrent = LinearRNN(recurrent_input, hidden, **options)
        elif spec.simple:
            self.recurrent = nn.RNN(recurrent_input, hidden, nonlinearity=activation, **spec.options, **options)
            single_bias(self.recurrent)
        else:
            self.recurrent = getattr(nn, spec.layer)(recurrent_input, hidden, **spec.options, **options)
        if init == "identity":
            identity_init(self.recurrent)
        self.head = nn.Linear(hidden * self.directions, output_size)

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """inputs (B, L) token ids or (B, L, F) floats; `lengths` (B,) of a padded batch: packed (only
        valid steps computed), or with pack=False run whole and read at each sequence's last step.
        Returns (B, L, C) per step or (B, C) per sequence; C is squeezed for regression."""
        x = self.encoder(inputs)
        steps = x.shape[1]
        last_index = None
        if isinstance(self.recurrent, LinearRNN):
            outputs, final = self.recurrent(x, lengths=lengths)
        elif lengths is not None and not self.pack:
            outputs, final = self.recurrent(x)
            last_index = lengths.to(x.device) - 1
        elif lengths is not None:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            packed_out, final = self.recurrent(packed)
            outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=steps)
        else:
            outputs, final = self.recurrent(x)
        return self.read_out(outputs, final, lengths, last_index)

    def read_out(
        self, outputs: torch.Tensor, final, lengths: torch.Tensor | None = None, last_index: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The head on the recurrent outputs (B, L, D) and final state (h_n, or (h_n, c_n) for LSTM)."""
        if isinstance(final, tuple):  # LSTM: (h_n, c_n)
            final = final[0]
        if self.output_kind == "per-step":
            features = outputs
        elif last_index is not None and self.pooling == "last":
            features = outputs[torch.arange(outputs.shape[0], device=outputs.device), last_index]
        elif self.pooling == "last":
            # h_n holds each sequence's last valid state; forward and backward of the top layer
            features = torch.cat([final[-self.directions + d] for d in range(self.directions)], dim=-1)
        else:
            features = pool(outputs, lengths, self.pooling)
        logits = self.head(features)
        return logits.squeeze(-1) if logits.shape[-1] == 1 else logits


def pool(outputs: torch.Tensor, lengths: torch.Tensor | None, how: str) -> torch.Tensor:
    """Mean or max over the valid steps of (B, L, D) outputs."""
    if lengths is None:
        return outputs.mean(dim=1) if how == "mean" else outputs.amax(dim=1)
    mask = torch.arange(outputs.shape[1], device=outputs.device)[None, :] < lengths.to(outputs.device)[:, None]
    mask = mask.unsqueeze(-1)
    if how == "mean":
        return (outputs * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
    return outputs.masked_fill(~mask, float("-inf")).amax(dim=1)


def single_bias(rnn: nn.RNN) -> None:
    """Make nn.RNN the textbook cell h_t = act(A·[h;x] + b): torch keeps two bias vectors (b_ih and
    b_hh) whose sum is the one b; we fix b_hh at zero and train b_ih alone."""
    for name, parameter in rnn.named_parameters():
        if name.startswith("bias_hh"):
            with torch.no_grad():
                parameter.zero_()
            parameter.requires_grad_(False)


def identity_init(recurrent: nn.Module) -> None:
    """IRNN (Le, Jaitly & Hinton 2015): recurrent weights = identity, biases = 0, input weights
    ~ N(0, 0.001²), so that at the start h_t = act(h_{t-1} + small input) carries the state unchanged."""
    with torch.no_grad():
        if isinstance(recurrent, LinearRNN):
            for cell in recurrent.cells:
                hidden = recurrent.hidden_size
                cell.weight[:, :hidden].copy_(torch.eye(hidden))
                cell.weight[:, hidden:].normal_(0.0, 0.001)
                cell.bias.zero_()
            return
        for name, parameter in recurrent.named_parameters():
            if name.startswith("weight_hh"):
                parameter.copy_(torch.eye(parameter.shape[1]))
            elif name.startswith("weight_ih"):
                parameter.normal_(0.0, 0.001)
            else:
                parameter.zero_()


def count_parameters(module: nn.Module) -> int:
    """Trainable parameters (what the optimiser updates)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def textbook_rnn_parameters(hidden: int, input_size: int) -> int:
    """The simple RNN's count from the material: h·(h+x) + h."""
    return hidden * (hidden + input_size) + hidden
