"""How CSM's decoders choose each token: top-k sampling with temperature, as CSM's makers
decode (k 50, temperature 0.9, for the backbone's codebook 0 and for the depth decoder's
codebooks), or greedy (temperature 0).

Sampling here is seeded a sentence at a time and reads no generator state. Each draw is the
Gumbel-max trick over the top k: the token whose `logit / temperature + g` is largest, with
`g = -log(-log(u))` and `u` uniform. That picks token i with probability
softmax(logits / temperature) over the top k. The uniforms come from a counter-based hash of
(the sentence's seed, the frame, the codebook, the rank in the top k), written as integer
tensor arithmetic. So:
- a sentence gets the same codes alone or in any batch, on any row;
- the draws are plain tensor operations: they run inside a captured CUDA graph, eagerly, and
  on the CPU alike;
- a sentence made again (a resumed book) gets the same codes, and another seed another take.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import torch

# The makers' decoding (Sesame's generator and transformers' CSM defaults).
REFERENCE_TOP_K = 50
REFERENCE_TEMPERATURE = 0.9

MASK32 = 0xFFFFFFFF
# Thomas Mueller's 32-bit integer hash multiplier: products of a 32-bit value stay under 2**59,
# so int64 tensors never overflow.
_MULTIPLIER = 0x45D9F3B
_GOLDEN = 0x9E3779B9
_UNIFORM_BITS = 24  # a float32's mantissa

Hashable = TypeVar("Hashable", int, "torch.Tensor")


@dataclass(frozen=True)
class Sampling:
    """Top-k sampling with temperature; temperature 0 is greedy (top_k is then unused)."""

    top_k: int = REFERENCE_TOP_K
    temperature: float = REFERENCE_TEMPERATURE

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError(f"top-k {self.top_k}: use 1 or more")
        if not self.temperature >= 0.0:
            raise ValueError(f"temperature {self.temperature}: use 0 (greedy) or more")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def describe(self) -> str:
        if self.greedy:
            return "greedy"
        return f"top-k {self.top_k}, temperature {self.temperature:g}, seeded per sentence"


GREEDY = Sampling(top_k=1, temperature=0.0)
REFERENCE = Sampling()


def mix(value: Hashable) -> Hashable:
    """A 32-bit integer hash (two multiply-xorshift rounds), of an int or an int64 tensor whose
    values lie in [0, 2**32): the same numbers from Python, the CPU and CUDA."""
    value = ((value >> 16) ^ value) * _MULTIPLIER & MASK32
    value = ((value >> 16) ^ value) * _MULTIPLIER & MASK32
    return (value >> 16) ^ value


def row_key(seed: int) -> int:
    """A sentence's 32-bit key from its seed (any int; 63 bits from `sentence_seed`)."""
    seed &= (1 << 64) - 1
    key: int = mix(mix(seed & MASK32) ^ (seed >> 32))
    return key


def lanes(codebooks: int, top_k: int, device: torch.device | str) -> torch.Tensor:
    """(codebooks * top_k,) hashed lane numbers: one per codebook and rank of a frame."""
    import torch

    numbers = torch.arange(codebooks * top_k, dtype=torch.long, device=device)
    return mix((numbers + _GOLDEN) & MASK32)


def gumbel_noise(keys: torch.Tensor, step: torch.Tensor, lane_keys: torch.Tensor) -> torch.Tensor:
    """(B, lanes) Gumbel noise for rows with `keys` (B,) at frame `step` (1,): a function of
    the key, the step and the lane alone (no generator state, no host sync)."""
    import torch

    frame = mix(keys ^ mix(step & MASK32))
    bits = mix(mix(frame[:, None] ^ lane_keys[None, :]) ^ frame[:, None])
    uniform = ((bits >> (32 - _UNIFORM_BITS)).to(torch.float32) + 0.5) * 2.0**-_UNIFORM_BITS
    return -torch.log(-torch.log(uniform))


def pick(logits: torch.Tensor, noise: torch.Tensor | None, sampling: Sampling) -> torch.Tensor:
    """(B,) tokens from (B, V) logits: greedy, or the Gumbel-max draw over the top k with
    `noise` (B, k) (k at most V)."""
    if sampling.greedy or noise is None:
        return logits.argmax(dim=-1)
    values, indices = logits.float().topk(noise.shape[-1], dim=-1)
    choice = (values / sampling.temperature + noise).argmax(dim=-1, keepdim=True)
    return indices.gather(-1, choice).squeeze(-1)
