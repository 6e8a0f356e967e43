"""The one configurable recurrent network. Every variant is an instance of `RecurrentNet`.

encoder (token embedding or float projection) -> recurrent stack (the cell's torch layer, cuDNN on GPU,
or our layer class run by `Stack`) -> head (per step, or per sequence from the final state or a pooled state).
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from bench.cells import CELLS, DEFAULT_CELL
from bench.cells.linear import LinearRecurrence
from bench.cells.stack import Stack


@dataclass(frozen=True)
class NetConfig:
    """Everything that shapes the network, one object (as nanoGPT's GPTConfig); `of` takes it from a
    run's configuration and its task's data."""

    input_kind: Literal["tokens", "floats"]
    input_size: int
    output_size: int
    output_kind: Literal["per-step", "per-sequence"]
    cell: str = DEFAULT_CELL
    activation: str = "tanh"
    init: str = "default"
    layers: int = 1
    bidirectional: bool = False
    hidden: int = 64
    embedding_size: int = 32
    dropout: float = 0.0
    pooling: str = "last"
    freeze_embedding: bool = True
    # Fine-tuned pretrained vectors: the first `trained_rows` rows (the words the training split contains)
    # are trained, the rest kept as they are (0: every row). See `PartlyFrozenEmbedding`.
    trained_rows: int = 0
    # pack=False reads a padded batch's last valid steps instead of packing it (see bench/text.py,
    # `batching`): exact only for one direction, where padding comes after the last valid step.
    pack: bool = True

    @classmethod
    def of(cls, run, task, data, pack: bool = True) -> NetConfig:
        """From a RunConfig, the task's spec (input and output kinds) and its data (sizes)."""
        shared = {f.name: getattr(run, f.name) for f in dataclasses.fields(cls) if hasattr(run, f.name)}
        return cls(
            **{
                **shared,
                "input_kind": task.input_kind,
                "output_kind": task.output_kind,
                "input_size": data.input_size,
                "output_size": data.output_size,
                "pack": pack,
            }
        )


class RecurrentNet(nn.Module):
    def __init__(self, config: NetConfig, pretrained_embedding: torch.Tensor | None = None):
        super().__init__()
        c = self.config = config
        if not c.pack and c.bidirectional:
            raise ValueError("unpacked padded batches need a unidirectional network")
        self.pack = c.pack
        self.output_kind, self.pooling, self.cell = c.output_kind, c.pooling, c.cell
        self.directions = 2 if c.bidirectional else 1
        if c.input_kind == "tokens":
            if pretrained_embedding is not None and not c.freeze_embedding and 0 < c.trained_rows < c.input_size:
                self.encoder = PartlyFrozenEmbedding(pretrained_embedding.float(), c.trained_rows)
            elif pretrained_embedding is not None:
                self.encoder = nn.Embedding.from_pretrained(pretrained_embedding.float(), freeze=c.freeze_embedding)
            else:
                self.encoder = nn.Embedding(c.input_size, c.embedding_size)
        else:
            self.encoder = nn.Linear(c.input_size, c.embedding_size)
        recurrent_input = self.encoder.embedding_dim if c.input_kind == "tokens" else c.embedding_size
        dropout = c.dropout if c.layers > 1 else 0.0
        self.recurrent = recurrent_stack(
            c.cell, recurrent_input, c.hidden, c.layers, c.bidirectional, dropout, c.activation
        )
        if c.init == "identity":
            identity_init(self.recurrent)
        self.head = nn.Linear(c.hidden * self.directions, c.output_size)

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """inputs (B, L) token ids or (B, L, F) floats; `lengths` (B,) of a padded batch: packed (only
        valid steps computed), or with pack=False run whole and read at each sequence's last step.
        Returns (B, L, C) per step or (B, C) per sequence; C is squeezed for regression."""
        x = self.encoder(inputs)
        steps = x.shape[1]
        last_index = None
        if isinstance(self.recurrent, Stack):
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
        """The head on the recurrent outputs (B, L, D) and final state (h_n, or (h_n, carried) such as
        LSTM's (h_n, c_n))."""
        if isinstance(final, tuple):
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


def recurrent_stack(
    cell: str, input_size: int, hidden: int, layers: int, bidirectional: bool, dropout: float, activation: str = "tanh"
) -> nn.Module:
    """The cell's layers, `layers` deep, in one or both directions, as its registry entry says."""
    spec = CELLS[cell]
    module_name, _, class_name = spec.layer.partition(":")
    if spec.simple_rnn and activation == "linear":
        return Stack(LinearRecurrence, input_size, hidden, layers, bidirectional, dropout)
    if not spec.torch_layer:
        layer_class = getattr(importlib.import_module(module_name), class_name)
        return Stack(layer_class, input_size, hidden, layers, bidirectional, dropout)
    options = dict(num_layers=layers, bidirectional=bidirectional, batch_first=True, dropout=dropout)
    if spec.simple_rnn:
        recurrent = nn.RNN(input_size, hidden, nonlinearity=activation, **options)
        single_bias(recurrent)
        return recurrent
    return getattr(nn, class_name)(input_size, hidden, **options)


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
        if isinstance(recurrent, Stack):  # the linear ablation: one matrix A acting on [h; x]
            for layer in recurrent.layers:
                hidden = recurrent.hidden_size
                layer.cell.weight[:, :hidden].copy_(torch.eye(hidden))
                layer.cell.weight[:, hidden:].normal_(0.0, 0.001)
                layer.cell.bias.zero_()
            return
        for name, parameter in recurrent.named_parameters():
            if name.startswith("weight_hh"):
                parameter.copy_(torch.eye(parameter.shape[1]))
            elif name.startswith("weight_ih"):
                parameter.normal_(0.0, 0.001)
            else:
                parameter.zero_()


class PartlyFrozenEmbedding(nn.Module):
    """Pretrained vectors fine-tuned where training can reach them: rows below `trained_rows` (the words of
    the training split) are trained, the rows above (words only the vectors file brings, for validation
    and test text) are kept. Those rows never receive a gradient, so Adam never moved them anyway (zero
    gradient, zero moments, zero step); leaving them out of the optimiser gives the same network at the
    cost of the training vocabulary alone, however large the vectors' vocabulary (issue 25)."""

    def __init__(self, vectors: torch.Tensor, trained_rows: int) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim = vectors.shape
        self.trained = nn.Parameter(vectors[:trained_rows].clone())
        self.kept = nn.Parameter(vectors[trained_rows:].clone(), requires_grad=False)

    @property
    def weight(self) -> torch.Tensor:
        """The whole table, in vocabulary order."""
        return torch.cat([self.trained, self.kept])

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rows = self.trained.shape[0]
        trained = nn.functional.embedding(ids.clamp(max=rows - 1), self.trained)
        kept = nn.functional.embedding((ids - rows).clamp(min=0), self.kept)
        return torch.where((ids < rows).unsqueeze(-1), trained, kept)


def count_parameters(module: nn.Module) -> int:
    """Trainable parameters (what the optimiser updates)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def textbook_rnn_parameters(hidden: int, input_size: int) -> int:
    """The simple RNN's count from the material: h·(h+x) + h."""
    return hidden * (hidden + input_size) + hidden
