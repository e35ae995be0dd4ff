"""A fast greedy decoder for CSM: static KV caches and the decode steps written over the
model's own layers, so that on CUDA each frame (one backbone step, then the depth decoder's
31 codebooks) is one captured CUDA graph instead of ~200 Python-driven forward calls.

transformers' `generate` spends a frame's time launching kernels from Python (the GPU idles
between them); a graph replays the same kernels in one launch. The prompt is prefilled by
the model's own forward (its audio context, its masks), then copied into the static caches.
Greedy only. The eager path of this module runs the same steps without a graph (CPU, or
where capture fails) and is checked against `generate` token for token.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported where it is used: the espeak image has none
    import torch

# Cache lengths come in steps of this many tokens: one captured graph per step and batch size.
CAPACITY_STEP = 256


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    import torch

    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


@dataclass
class StaticStack:
    """One transformer's decoder layers with a KV cache of fixed length."""

    layers: Any
    rotary: Any
    norm: Any
    keys: list[torch.Tensor]
    values: list[torch.Tensor]

    @classmethod
    def make(cls, model: Any, batch: int, length: int) -> StaticStack:
        import torch

        config = model.config
        head_dim = getattr(config, "head_dim", None) or (
            config.hidden_size // config.num_attention_heads
        )
        parameter = next(model.parameters())
        shape = (batch, config.num_key_value_heads, length, head_dim)
        count = config.num_hidden_layers
        return cls(
            model.layers[:count],
            model.rotary_emb,
            model.norm,
            [
                torch.zeros(shape, dtype=parameter.dtype, device=parameter.device)
                for _ in range(count)
            ],
            [
                torch.zeros(shape, dtype=parameter.dtype, device=parameter.device)
                for _ in range(count)
            ],
        )

    def forward(
        self,
        hidden: torch.Tensor,
        positions: torch.Tensor,
        slots: torch.Tensor,
        visible: torch.Tensor,
    ) -> torch.Tensor:
        """`hidden` (B, T, D) at `positions` (B, T), written to cache `slots` (T,); each query
        sees the cache slots where `visible` (B, T, L) is true. Returns the normed output."""
        from torch.nn import functional

        cos, sin = self.rotary(hidden, positions)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        mask = visible.unsqueeze(1)
        for index, layer in enumerate(self.layers):
            attention = layer.self_attn
            normed = layer.input_layernorm(hidden)
            batch, steps, _ = normed.shape
            shape = (batch, steps, -1, attention.head_dim)
            query = attention.q_proj(normed).view(shape).transpose(1, 2)
            key = attention.k_proj(normed).view(shape).transpose(1, 2)
            value = attention.v_proj(normed).view(shape).transpose(1, 2)
            query = query * cos + _rotate_half(query) * sin
            key = key * cos + _rotate_half(key) * sin
            self.keys[index].index_copy_(2, slots, key)
            self.values[index].index_copy_(2, slots, value)
            groups = attention.num_key_value_groups
            keys = self.keys[index].repeat_interleave(groups, dim=1)
            values = self.values[index].repeat_interleave(groups, dim=1)
            attended = functional.scaled_dot_product_attention(
                query, keys, values, attn_mask=mask, scale=attention.scaling
            )
            hidden = hidden + attention.o_proj(attended.transpose(1, 2).reshape(batch, steps, -1))
            hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
        normed_output: torch.Tensor = self.norm(hidden)
        return normed_output


def capacity_for(tokens: int) -> int:
    """The cache length a request of `tokens` (prompt + frames) decodes in: rounded up, so
    that one decoder (and its captured graph) serves every request of a bucket."""
    return max(CAPACITY_STEP, -(-tokens // CAPACITY_STEP) * CAPACITY_STEP)


class FastCsmDecoder:
    """Greedy CSM decoding for one batch size and one cache length (`capacity`): any prompt
    and frame count that fit. The graph is captured once and replayed for every request:
    it reads the prompt's length and the step from tensors, not from Python."""

    def __init__(self, model: Any, batch: int, capacity: int) -> None:
        import torch

        self.model = model
        self.batch = batch
        self.capacity = capacity
        config = model.config
        self.codebooks = config.num_codebooks
        self.depth_vocab = model.depth_decoder.config.vocab_size
        device = next(model.parameters()).device
        self.device = device
        self.backbone = StaticStack.make(model.backbone_model, batch, capacity)
        self.depth = StaticStack.make(model.depth_decoder.model, batch, self.codebooks + 1)
        length = capacity
        # Which backbone cache slots each row may see: its real prompt tokens and its frames.
        self.visible = torch.zeros(batch, 1, length, dtype=torch.bool, device=device)
        self.position = torch.zeros(batch, 1, dtype=torch.long, device=device)
        self.slot = torch.zeros(1, dtype=torch.long, device=device)
        self.codes = torch.zeros(batch, self.codebooks, dtype=torch.long, device=device)
        self.hidden = torch.zeros(
            batch, config.hidden_size, dtype=next(model.parameters()).dtype, device=device
        )
        depth_slots = torch.arange(self.codebooks + 1, device=device)
        self.depth_slots = depth_slots
        # Depth decoding: query k sees slots 0..k (causal over the frame's codebooks).
        self.depth_visible = (depth_slots[None, :] <= depth_slots[:, None])[None].expand(
            batch, -1, -1
        )
        self.graph: torch.cuda.CUDAGraph | None = None

    # --- the steps (graph-safe: no host sync, fixed shapes) --------------------------------

    def depth_frame(self) -> None:
        """`self.codes[:, 0]` and `self.hidden` (the backbone's) -> the other codebooks."""
        decoder = self.model.depth_decoder
        embed = decoder.model.embed_tokens
        project = decoder.model.inputs_embeds_projector
        heads = decoder.codebooks_head.weight
        import torch

        first = embed(self.codes[:, :1])
        inputs = torch.cat([self.hidden[:, None, :].to(first.dtype), first], dim=1)
        positions = self.depth_slots[:2][None].expand(self.batch, -1)
        out = self.depth.forward(
            project(inputs), positions, self.depth_slots[:2], self.depth_visible[:, :2]
        )
        last = out[:, -1]
        for book in range(1, self.codebooks):
            logits = last @ heads[book - 1]
            token = logits.argmax(dim=-1)
            self.codes[:, book] = token
            if book == self.codebooks - 1:
                break
            embedded = embed((token + book * self.depth_vocab)[:, None])
            slot = self.depth_slots[book + 1 : book + 2]
            positions = slot[None].expand(self.batch, -1)
            visible = self.depth_visible[:, book + 1 : book + 2]
            last = self.depth.forward(project(embedded), positions, slot, visible)[:, -1]

    def backbone_step(self) -> None:
        """The previous frame's codes -> the backbone's next hidden state and codebook 0."""
        embedded = self.model.backbone_model.embed_tokens(self.codes[:, None, :])
        self.visible.index_fill_(2, self.slot, True)
        out = self.backbone.forward(embedded, self.position, self.slot, self.visible)
        self.hidden.copy_(out[:, -1])
        self.codes[:, 0] = self.model.lm_head(out[:, -1]).argmax(dim=-1)
        self.slot += 1
        self.position += 1

    def frame(self) -> None:
        self.backbone_step()
        self.depth_frame()

    # --- driving ----------------------------------------------------------------------------

    def prefill(self, inputs: Any) -> None:
        """The prompt through the model's own forward; its cache copied into the static one."""
        output = self.model(**inputs, use_cache=True, output_hidden_states=True, return_dict=True)
        cache = output.past_key_values
        length = inputs["attention_mask"].shape[1]
        for index in range(len(self.backbone.keys)):
            layer = cache.layers[index]
            self.backbone.keys[index][:, :, :length].copy_(layer.keys)
            self.backbone.values[index][:, :, :length].copy_(layer.values)
        self.visible.zero_()
        self.visible[:, 0, :length] = inputs["attention_mask"].bool()
        # As the backbone numbers them: by slot, padding included (RoPE is relative anyway).
        self.position.fill_(length - 1)
        self.slot.fill_(length)
        self.hidden.copy_(output.hidden_states[-1][:, -1])
        self.codes.zero_()
        self.codes[:, 0] = output.logits[:, -1].argmax(dim=-1)
        self.position += 1

    def capture(self) -> None:
        """Record one frame as a CUDA graph (after a warm-up on a side stream)."""
        import torch

        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        saved = [item.clone() for item in (self.visible, self.position, self.slot, self.codes)]
        with torch.cuda.stream(stream):
            for _ in range(2):
                self.frame()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.frame()
        for target, value in zip(
            (self.visible, self.position, self.slot, self.codes), saved, strict=True
        ):
            target.copy_(value)
        self.graph = graph

    def chunks(
        self,
        inputs: Any,
        frames: int,
        use_graph: bool,
        eos: int | None = None,
        sizes: Iterable[int] = (),
    ) -> Iterator[torch.Tensor]:
        """Greedy codes, (B, n, codebooks) a chunk, `frames` in all; frame 0 from the prefill.
        Chunk lengths come from `sizes` (then 16 each). With `eos`, it stops after the chunk
        in which every row has said its end: a chunk's end is where the host waits on the GPU.
        """
        import torch

        length = inputs["attention_mask"].shape[1]
        if inputs["attention_mask"].shape[0] != self.batch or length + frames > self.capacity:
            raise ValueError(
                f"a batch of {inputs['attention_mask'].shape[0]} x ({length} + {frames}) tokens "
                f"does not fit this decoder ({self.batch} x {self.capacity})"
            )
        planned = iter(sizes)
        with torch.inference_mode():
            self.prefill(inputs)
            self.depth_frame()
            if use_graph and self.graph is None:
                saved_hidden = self.hidden.clone()
                caches = [*self.backbone.keys, *self.backbone.values]
                saved_caches = [item.clone() for item in caches]
                self.capture()
                # The warm-up frames wrote to the caches: put the prefilled state back.
                self.hidden.copy_(saved_hidden)
                for target, value in zip(caches, saved_caches, strict=True):
                    target.copy_(value)
            done = 0
            ended = torch.zeros(self.batch, dtype=torch.bool, device=self.device)
            while done < frames:
                size = min(max(1, next(planned, 16)), frames - done)
                chunk = torch.empty(
                    self.batch, size, self.codebooks, dtype=torch.long, device=self.device
                )
                for index in range(size):
                    if done + index > 0:
                        if self.graph is not None and use_graph:
                            self.graph.replay()
                        else:
                            self.frame()
                    chunk[:, index] = self.codes
                done += size
                yield chunk
                if eos is not None:
                    ended |= (chunk == eos).all(dim=-1).any(dim=-1)
                    if bool(ended.all()):
                        return

    def run(
        self, inputs: Any, frames: int, use_graph: bool, eos: int | None = None
    ) -> torch.Tensor:
        """(B, n, codebooks) greedy codes, n = `frames`, or fewer once every row has ended."""
        import torch

        return torch.cat(list(self.chunks(inputs, frames, use_graph, eos)), dim=1)
