"""The parallel scan of the modern cells: h_t = a_t ⊙ h_{t-1} + b_t for every t at once, in log2(T)
rounds of whole-tensor operations (no Python loop over time), real or complex, with its own backward.

Why this form and not minGRU's log-space scan (Heinsen 2023: h = exp(a* + logcumsumexp(log b - a*)),
a* = cumsum(log a)): in fp32 at T=1000 the log-space form subtracts two sums that grow to |a*| ~ 700.
Measured against the plain loop (B=32, T=1000, H=128, gates from N(0,1) pre-activations, one thread):
log space is off by 3e-4 in 455 ms, or chunked (log space within chunks, the state carried between
them) by 1.6e-5 in 365 ms (chunks of 64) and 5.5e-6 in 348 ms (16); this scan only multiplies and adds
numbers of the sizes the loop itself sees: off by 4.8e-7, in 49 ms (torch.logcumsumexp alone: 282 ms).
Products of gates below 1 underflow to 0, which is their true value.
"""

from __future__ import annotations

import torch


def linear_scan(a: torch.Tensor, b: torch.Tensor, initial: torch.Tensor | None = None) -> torch.Tensor:
    """h (B, T, N) with h_t = a_t ⊙ h_{t-1} + b_t, h_0 = `initial` (B, N) or zeros.

    a is (B, T, N), or (1, T, N) for a recurrence shared by the batch (e.g. LRU's λ, expanded)."""
    if initial is not None:  # h_1 = a_1 h_0 + b_1: the initial state folds into the first input
        b = torch.cat([torch.addcmul(b[:, :1], a[:, :1], initial[:, None]), b[:, 1:]], dim=1)
    return LinearScan.apply(a, b)


def exact_products(a: torch.Tensor) -> torch.Tensor:
    """`a` itself, or in float64 if it is the same at every step (expanded over time, like LRU's λ).

    The scan multiplies a's in pairs, log2(T) levels deep. Different a's keep the product's error at
    ~log2(T) roundings; one a squared over and over doubles its relative error at each level, so λ^512
    would be ~1.5e-5 off in fp32 (measured: LRU's final state 2e-5 off the loop at T=1000, |λ| up to
    0.999). In float64 each power is exact to fp32 when used. Cheap: a has no batch dimension. MPS has
    no float64, and there the products stay in fp32."""
    if a.shape[1] > 1 and a.stride(1) == 0 and a.device.type != "mps":
        return a.to(torch.complex128 if a.is_complex() else torch.float64)
    return a


class LinearScan(torch.autograd.Function):
    """Autograd through the rounds would keep every round's tensors (about 10 copies of (B, T, N)
    at T=1000) and run 3x slower than this backward, which is the same scan run backwards in time:
    g_t = dL/dh_t + conj(a_{t+1}) g_{t+1}, dL/db_t = g_t, dL/da_t = g_t conj(h_{t-1})."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        h = _scan(exact_products(a), b)
        ctx.save_for_backward(a, h)
        return h

    @staticmethod
    def backward(ctx, grad_h: torch.Tensor):
        a, h = ctx.saved_tensors
        a_next = exact_products(a)[:, 1:].conj()  # a_{t+1}, and a_{T+1} = 0
        a_next = torch.cat([a_next, torch.zeros_like(a_next[:, :1])], dim=1)
        grad_b = _scan(a_next.flip(1), grad_h.flip(1)).flip(1)
        h_before = torch.cat([torch.zeros_like(h[:, :1]), h[:, :-1]], dim=1)
        grad_a = grad_b * h_before.conj()
        if a.shape[0] == 1 and grad_a.shape[0] != 1:  # a shared by the batch
            grad_a = grad_a.sum(dim=0, keepdim=True)
        return grad_a.to(a.dtype), grad_b


def _scan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Odd-even recursion: fold each pair of steps into one step (a_2k+1 a_2k, a_2k+1 b_2k + b_2k+1),
    solve the half-length recurrence for the odd steps, then fill in the even ones from them."""
    steps = b.shape[1]
    if steps == 1:
        return b
    paired = steps // 2 * 2
    a_even, a_odd = a[:, 0:paired:2], a[:, 1:paired:2]
    b_even, b_odd = b[:, 0:paired:2], b[:, 1:paired:2]
    # a may be wider than b (exact_products): its products stay wide, what meets b is cast to b's type
    h_odd = _scan(a_odd * a_even, torch.addcmul(b_odd, a_odd.to(b.dtype), b_even))
    h_even = torch.addcmul(b_even[:, 1:], a_even[:, 1:].to(b.dtype), h_odd[:, :-1])
    h_even = torch.cat([b_even[:, :1], h_even], dim=1)
    h = torch.stack([h_even, h_odd], dim=2).reshape(b.shape[0], paired, *b.shape[2:])
    if paired < steps:  # an odd length: one last step after the pairs
        last = torch.addcmul(b[:, paired:], a[:, paired:].to(b.dtype), h[:, paired - 1 : paired])
        h = torch.cat([h, last], dim=1)
    return h
