"""A fast decoder for CSM: static KV caches and the decode steps written over the
model's own layers, so that on CUDA each frame (one backbone step, then the depth decoder's
31 codebooks) is one captured CUDA graph instead of ~200 Python-driven forward calls.

transformers' `generate` spends a frame's time launching kernels from Python (the GPU idles
between them); a graph replays the same kernels in one launch. The prompt is prefilled by
the model's own forward (its audio context, its masks), then copied into the static caches.
Greedy or top-k sampled with temperature (`csmsampling`: seeded per row, inside the graph).
The eager path of this module runs the same steps without a graph (CPU, or where capture
fails) and is checked against `generate` token for token (greedy). Each layer runs as two
parts around attention (q/k/v merged, gate/up merged; grouped-query attention reads the cache
as it is), which torch.compile can fuse on a GPU.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from audiobook_tts.engines.csmsampling import GREEDY, Sampling, gumbel_noise, lanes, pick, row_key

if TYPE_CHECKING:  # torch is imported where it is used: the espeak image has none
    import torch

# Eager runs of the decoder's steps (the prompt's first frame, a capture, eager decoding), one
# thread at a time: the compiled parts are traced on first use, and dynamo's tracing is not
# safe beside another thread calling them. Graph replays need no lock.
EAGER_LOCK = threading.RLock()

# Cache lengths come in steps of this many tokens: one captured graph per step and batch size.
CAPACITY_STEP = 256


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    import torch

    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _rms_norm(hidden: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """Llama's RMSNorm as transformers computes it (float32 inside, the weight after)."""
    import torch

    wide = hidden.to(torch.float32)
    wide = wide * torch.rsqrt(wide.pow(2).mean(-1, keepdim=True) + eps)
    return weight * wide.to(hidden.dtype)


@dataclass(frozen=True)
class LayerWeights:
    """One decoder layer's weights, the projections merged: q, k and v in one matrix, the
    MLP's gate and up in another (two matrix products where there were five)."""

    input_norm: torch.Tensor
    qkv: torch.Tensor
    qkv_bias: torch.Tensor | None
    output: torch.Tensor
    output_bias: torch.Tensor | None
    post_norm: torch.Tensor
    gate_up: torch.Tensor
    gate_up_bias: torch.Tensor | None
    down: torch.Tensor
    down_bias: torch.Tensor | None
    eps: float
    heads: int
    kv_heads: int
    head_dim: int
    scaling: float

    @classmethod
    def of(cls, layer: Any) -> LayerWeights:
        import torch

        attention, mlp = layer.self_attn, layer.mlp
        if type(mlp.act_fn).__name__ not in ("SiLU", "SiLUActivation"):
            raise ValueError(f"the fast CSM decoder expects SiLU, not {mlp.act_fn!r}")

        def merged(*linears: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
            weight = torch.cat([linear.weight for linear in linears]).contiguous()
            biases = [linear.bias for linear in linears]
            if all(bias is None for bias in biases):
                return weight, None
            return weight, torch.cat(
                [
                    bias if bias is not None else linear.weight.new_zeros(linear.weight.shape[0])
                    for bias, linear in zip(biases, linears, strict=True)
                ]
            )

        qkv, qkv_bias = merged(attention.q_proj, attention.k_proj, attention.v_proj)
        gate_up, gate_up_bias = merged(mlp.gate_proj, mlp.up_proj)
        head_dim = attention.head_dim
        return cls(
            layer.input_layernorm.weight,
            qkv,
            qkv_bias,
            attention.o_proj.weight,
            attention.o_proj.bias,
            layer.post_attention_layernorm.weight,
            gate_up,
            gate_up_bias,
            mlp.down_proj.weight,
            mlp.down_proj.bias,
            float(layer.input_layernorm.variance_epsilon),
            attention.q_proj.weight.shape[0] // head_dim,
            attention.k_proj.weight.shape[0] // head_dim,
            head_dim,
            float(attention.scaling),
        )


# Merged weights, made once per model (decoders of every batch size and bucket share them).
_MERGED: dict[int, tuple[Any, list[LayerWeights]]] = {}


_PROJECTED: dict[int, tuple[Any, torch.Tensor]] = {}


def projected_embeddings(model: Any) -> torch.Tensor:
    """The depth decoder's codebook embeddings already through its input projection
    (codebooks * vocab rows of its width): a step's input is one row, not an embedding and a
    matrix product. Made once per model."""
    import weakref

    import torch

    held = _PROJECTED.get(id(model))
    if held is not None and held[0]() is model:
        return held[1]
    decoder = model.depth_decoder.model
    with torch.no_grad():
        table = decoder.inputs_embeds_projector(decoder.embed_tokens.weight).contiguous()
    _PROJECTED[id(model)] = (weakref.ref(model), table)
    return table


def merged_layers(model: Any, count: int) -> list[LayerWeights]:
    """The first `count` layers of a transformer, merged (cached while the model lives)."""
    import weakref

    held = _MERGED.get(id(model))
    if held is not None and held[0]() is model:
        return held[1]
    import torch

    with torch.no_grad():
        layers = [LayerWeights.of(layer) for layer in model.layers[:count]]
    _MERGED[id(model)] = (weakref.ref(model), layers)
    return layers


def attend_input(
    hidden: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    slots: torch.Tensor,
    norm: torch.Tensor,
    qkv_weight: torch.Tensor,
    qkv_bias: torch.Tensor | None,
    heads: int,
    kv_heads: int,
    eps: float,
) -> torch.Tensor:
    """Norm, the merged q/k/v projection, rotary; k and v written to the cache at `slots`.
    Returns the query (B, heads, T, head_dim). Tensors and numbers only (torch.compile
    guards on shapes, not on which layer's weights come in: one compile serves every layer)."""
    from torch.nn import functional

    batch, steps, _ = hidden.shape
    head_dim = keys.shape[-1]
    normed = _rms_norm(hidden, norm, eps)
    qkv = functional.linear(normed, qkv_weight, qkv_bias)
    qkv = qkv.view(batch, steps, heads + 2 * kv_heads, head_dim).transpose(1, 2)
    query = qkv[:, :heads]
    key = qkv[:, heads : heads + kv_heads]
    value = qkv[:, heads + kv_heads :]
    query = query * cos + _rotate_half(query) * sin
    key = key * cos + _rotate_half(key) * sin
    keys.index_copy_(2, slots, key)
    values.index_copy_(2, slots, value)
    return query


def attend_output(
    hidden: torch.Tensor,
    attended: torch.Tensor,
    output: torch.Tensor,
    output_bias: torch.Tensor | None,
    norm: torch.Tensor,
    gate_up: torch.Tensor,
    gate_up_bias: torch.Tensor | None,
    down: torch.Tensor,
    down_bias: torch.Tensor | None,
    eps: float,
) -> torch.Tensor:
    """The attention's output projection and residual, then the MLP (merged gate and up,
    SiLU) and its residual."""
    from torch.nn import functional

    batch, steps, width = hidden.shape
    merged = attended.transpose(1, 2).reshape(batch * steps, -1)
    # Each residual added by the matrix product itself (C = residual + A @ W^T: one kernel).
    hidden = _residual_linear(hidden.reshape(batch * steps, width), merged, output, output_bias)
    normed = _rms_norm(hidden, norm, eps)
    gate, up = functional.linear(normed, gate_up, gate_up_bias).chunk(2, dim=-1)
    result = _residual_linear(hidden, functional.silu(gate) * up, down, down_bias)
    return result.view(batch, steps, width)


def _residual_linear(
    residual: torch.Tensor, inputs: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """`residual + linear(inputs, weight, bias)` for 2-D operands, as one addmm."""
    import torch

    if bias is not None:
        residual = residual + bias
    return torch.addmm(residual, inputs, weight.t())


def _attention(
    query: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor,
    scaling: float,
) -> torch.Tensor:
    """Grouped-query attention over the cache as it is (no copy of its heads per group)."""
    from torch.nn import functional

    result: torch.Tensor = functional.scaled_dot_product_attention(
        query, keys, values, attn_mask=mask, scale=scaling, enable_gqa=True
    )
    return result


@dataclass
class StaticStack:
    """One transformer's decoder layers with a KV cache of fixed length."""

    layers: list[LayerWeights]
    rotary: Any
    norm: Any
    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    # The layer's parts before and after attention: plain functions, or torch.compile'd ones.
    before: Any = attend_input
    after: Any = attend_output
    # Slot numbers 0..L-1, and (cos, sin) of every slot (`forward_prefix`, made on first use).
    slot_ids: Any = None
    table: tuple[torch.Tensor, torch.Tensor] | None = None
    # The final norm (Llama's RMSNorm, one fused kernel when compiled) and its epsilon.
    final: Any = _rms_norm
    eps: float = 1e-6

    @classmethod
    def make(cls, model: Any, batch: int, length: int, compiled: bool = False) -> StaticStack:
        import torch

        config = model.config
        head_dim = getattr(config, "head_dim", None) or (
            config.hidden_size // config.num_attention_heads
        )
        parameter = next(model.parameters())
        shape = (batch, config.num_key_value_heads, length, head_dim)
        count = config.num_hidden_layers
        before, after = compiled_parts() if compiled else (attend_input, attend_output)
        return cls(
            merged_layers(model, count),
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
            before,
            after,
            torch.arange(length, device=parameter.device),
            None,
            compiled_norm() if compiled else _rms_norm,
            float(model.norm.variance_epsilon),
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
        cos, sin = self.rotary(hidden, positions)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        mask = visible.unsqueeze(1)
        for index, weights in enumerate(self.layers):
            keys, values = self.keys[index], self.values[index]
            query = self.before(
                hidden,
                cos,
                sin,
                keys,
                values,
                slots,
                weights.input_norm,
                weights.qkv,
                weights.qkv_bias,
                weights.heads,
                weights.kv_heads,
                weights.eps,
            )
            attended = _attention(query, keys, values, mask, weights.scaling)
            hidden = self.after(
                hidden,
                attended,
                weights.output,
                weights.output_bias,
                weights.post_norm,
                weights.gate_up,
                weights.gate_up_bias,
                weights.down,
                weights.down_bias,
                weights.eps,
            )
        normed_output: torch.Tensor = self.final(hidden, self.norm.weight, self.eps)
        return normed_output

    def forward_prefix(self, hidden: torch.Tensor, start: int) -> torch.Tensor:
        """The depth decoder's step: `hidden` (B, T, D) at positions and cache slots `start`..,
        the same for every row, so the rotary angles come from a table made once and each
        query attends to the cache's first `start + T` slots, with no mask (T = 2 only at
        slot 0: causal). Same result as `forward`, fewer kernels."""
        from torch.nn import functional

        steps = hidden.shape[1]
        if self.table is None:
            positions = self.slot_ids[None]
            self.table = self.rotary(hidden, positions)
        cos = self.table[0][:, None, start : start + steps]
        sin = self.table[1][:, None, start : start + steps]
        slots = self.slot_ids[start : start + steps]
        end = start + steps
        for index, weights in enumerate(self.layers):
            keys, values = self.keys[index], self.values[index]
            query = self.before(
                hidden,
                cos,
                sin,
                keys,
                values,
                slots,
                weights.input_norm,
                weights.qkv,
                weights.qkv_bias,
                weights.heads,
                weights.kv_heads,
                weights.eps,
            )
            attended = functional.scaled_dot_product_attention(
                query,
                keys[:, :, :end],
                values[:, :, :end],
                is_causal=steps > 1,
                scale=weights.scaling,
                enable_gqa=True,
            )
            hidden = self.after(
                hidden,
                attended,
                weights.output,
                weights.output_bias,
                weights.post_norm,
                weights.gate_up,
                weights.gate_up_bias,
                weights.down,
                weights.down_bias,
                weights.eps,
            )
        normed_output: torch.Tensor = self.final(hidden, self.norm.weight, self.eps)
        return normed_output


_COMPILED: tuple[Any, Any] | None = None
_COMPILED_PICK: Any = None
_COMPILED_NORM: Any = None


def compiled_norm() -> Any:
    """Llama's RMSNorm through torch.compile: one kernel instead of six."""
    global _COMPILED_NORM
    if _COMPILED_NORM is None:
        import torch

        compiled_parts()  # the recompile limits
        _COMPILED_NORM = torch.compile(_rms_norm, dynamic=None)
    return _COMPILED_NORM


def compiled_pick() -> Any:
    """`pick` through torch.compile: the cast, temperature, noise, argmax and gather around
    top-k in one or two kernels."""
    global _COMPILED_PICK
    if _COMPILED_PICK is None:
        import torch

        compiled_parts()  # the recompile limits
        _COMPILED_PICK = torch.compile(pick, dynamic=None)
    return _COMPILED_PICK


def compiled_parts() -> tuple[Any, Any]:
    """`attend_input` and `attend_output` through torch.compile (inductor, no graphs of its
    own: the frame's CUDA graph holds its kernels): norm, rotary and the cache write fused,
    residuals and the MLP's activation fused. Compiled once a process, on first use."""
    global _COMPILED
    if _COMPILED is None:
        import torch

        # One code object serves both transformers (two widths), the depth decoder's first
        # step (two tokens) and every batch size and cache bucket: specialisations beyond
        # the library's 8 (sizes seen twice become dynamic, so this stays small).
        config = torch._dynamo.config
        config.recompile_limit = max(config.recompile_limit, 64)
        config.accumulated_recompile_limit = max(config.accumulated_recompile_limit, 256)

        _COMPILED = (
            torch.compile(attend_input, dynamic=None, fullgraph=True),
            torch.compile(attend_output, dynamic=None, fullgraph=True),
        )
    return _COMPILED


def on_device(device: Any) -> AbstractContextManager[Any]:
    """`device` made current where it is a GPU (graphs and streams belong to one); nothing on
    the CPU."""
    import torch

    if torch.device(device).type != "cuda":
        return nullcontext()
    current: AbstractContextManager[Any] = torch.cuda.device(device)
    return current


def capacity_for(tokens: int) -> int:
    """The cache length a request of `tokens` (prompt + frames) decodes in: rounded up, so
    that one decoder (and its captured graph) serves every request of a bucket."""
    return max(CAPACITY_STEP, -(-tokens // CAPACITY_STEP) * CAPACITY_STEP)


class FastCsmDecoder:
    """CSM decoding for one batch size and one cache length (`capacity`): any prompt and frame
    count that fit, greedy or top-k sampled (`sampling`, fixed for the decoder's life). The
    graph is captured once and replayed for every request: it reads the prompt's length, the
    step and each row's seed from tensors, not from Python."""

    def __init__(
        self,
        model: Any,
        batch: int,
        capacity: int,
        sampling: Sampling = GREEDY,
        compiled: bool = False,
    ) -> None:
        import torch

        self.model = model
        self.batch = batch
        self.capacity = capacity
        self.sampling = sampling
        config = model.config
        self.codebooks = config.num_codebooks
        self.depth_vocab = model.depth_decoder.config.vocab_size
        device = next(model.parameters()).device
        self.device = device
        self.backbone = StaticStack.make(model.backbone_model, batch, capacity, compiled)
        self.depth = StaticStack.make(
            model.depth_decoder.model, batch, self.codebooks + 1, compiled
        )
        length = capacity
        # Which backbone cache slots each row may see: its real prompt tokens and its frames.
        self.visible = torch.zeros(batch, 1, length, dtype=torch.bool, device=device)
        self.position = torch.zeros(batch, 1, dtype=torch.long, device=device)
        self.slot = torch.zeros(1, dtype=torch.long, device=device)
        self.codes = torch.zeros(batch, self.codebooks, dtype=torch.long, device=device)
        self.hidden = torch.zeros(
            batch, config.hidden_size, dtype=next(model.parameters()).dtype, device=device
        )
        # Sampling: each row's key (from its sentence's seed), the frame number, and the
        # frame's Gumbel noise for every codebook and rank in the top k.
        self.top_k = min(sampling.top_k, config.vocab_size, self.depth_vocab)
        self.row_keys = torch.zeros(batch, dtype=torch.long, device=device)
        self.step = torch.zeros(1, dtype=torch.long, device=device)
        self.lane_keys = lanes(self.codebooks, self.top_k, device)
        self.noise = torch.zeros(
            batch, self.codebooks, self.top_k, dtype=torch.float32, device=device
        )
        self.pick = compiled_pick() if compiled else pick
        self.graph: torch.cuda.CUDAGraph | None = None

    # --- the steps (graph-safe: no host sync, fixed shapes) --------------------------------

    def draw_noise(self) -> None:
        """This frame's noise, for every row, codebook and rank (sampled decoding only)."""
        if not self.sampling.greedy:
            noise = gumbel_noise(self.row_keys, self.step, self.lane_keys)
            self.noise.copy_(noise.view(self.batch, self.codebooks, self.top_k))

    def choose(self, logits: torch.Tensor, book: int) -> torch.Tensor:
        """Codebook `book`'s tokens from its logits (B, V)."""
        noise = None if self.sampling.greedy else self.noise[:, book]
        chosen: torch.Tensor = self.pick(logits, noise, self.sampling)
        return chosen

    def depth_frame(self) -> None:
        """`self.codes[:, 0]` and `self.hidden` (the backbone's) -> the other codebooks."""
        decoder = self.model.depth_decoder
        embed = decoder.model.embed_tokens
        project = decoder.model.inputs_embeds_projector
        heads = decoder.codebooks_head.weight
        import torch

        first = embed(self.codes[:, :1])
        inputs = torch.cat([self.hidden[:, None, :].to(first.dtype), first], dim=1)
        last = self.depth.forward_prefix(project(inputs), 0)[:, -1]
        table = projected_embeddings(self.model)
        for book in range(1, self.codebooks):
            logits = last @ heads[book - 1]
            token = self.choose(logits, book)
            self.codes[:, book] = token
            if book == self.codebooks - 1:
                break
            # project(embed(token + book * vocab)) as one row of a table made once
            rows = table[book * self.depth_vocab : (book + 1) * self.depth_vocab]
            last = self.depth.forward_prefix(rows[token][:, None], book + 1)[:, -1]

    def backbone_step(self) -> None:
        """The previous frame's codes -> the backbone's next hidden state and codebook 0."""
        embedded = self.model.backbone_model.embed_tokens(self.codes[:, None, :])
        self.visible.index_fill_(2, self.slot, True)
        out = self.backbone.forward(embedded, self.position, self.slot, self.visible)
        self.hidden.copy_(out[:, -1])
        self.step += 1
        self.draw_noise()
        self.codes[:, 0] = self.choose(self.model.lm_head(out[:, -1]), 0)
        self.slot += 1
        self.position += 1

    def frame(self) -> None:
        self.backbone_step()
        self.depth_frame()

    # --- driving ----------------------------------------------------------------------------

    def prefill(self, inputs: Any, seeds: list[int] | None = None) -> None:
        """The prompt through the model's own forward; its cache copied into the static one.
        `seeds`: each row's (sampled decoding; none: 0 each)."""
        import torch

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
        keys = [row_key(seed) for seed in (seeds or [0] * self.batch)]
        self.row_keys.copy_(torch.tensor(keys, dtype=torch.long))
        self.step.zero_()
        self.draw_noise()
        self.codes.zero_()
        self.codes[:, 0] = self.choose(output.logits[:, -1], 0)
        self.position += 1

    def capture(self) -> None:
        """Record one frame as a CUDA graph (after a warm-up on a side stream)."""
        import torch

        # On this decoder's GPU, whichever is current (one engine a GPU, a thread each); an
        # error mode local to this thread, so another GPU's thread may sync meanwhile.
        with on_device(self.device):
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            state = (self.visible, self.position, self.slot, self.codes, self.step, self.noise)
            saved = [item.clone() for item in state]
            with torch.cuda.stream(stream):
                for _ in range(2):
                    self.frame()
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                self.frame()
            for target, value in zip(state, saved, strict=True):
                target.copy_(value)
        self.graph = graph

    def chunks(
        self,
        inputs: Any,
        frames: int,
        use_graph: bool,
        eos: int | None = None,
        sizes: Iterable[int] = (),
        seeds: list[int] | None = None,
    ) -> Iterator[torch.Tensor]:
        """Codes (each row sampled with its seed, or greedy), (B, n, codebooks) a chunk, `frames` in all; frame 0 from the prefill.
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
            # Serialised across threads (one engine a GPU): torch.compile traces on first
            # use, and a trace must not meet another thread calling the compiled parts.
            with EAGER_LOCK:
                if seeds is not None and len(seeds) != self.batch:
                    raise ValueError(f"{len(seeds)} seeds for a batch of {self.batch}")
                self.prefill(inputs, seeds)
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
                with on_device(self.device):  # the graph replays on its GPU's stream
                    for index in range(size):
                        if done + index > 0:
                            if self.graph is not None and use_graph:
                                self.graph.replay()
                            else:
                                with EAGER_LOCK:
                                    self.frame()
                        chunk[:, index] = self.codes
                done += size
                yield chunk
                if eos is not None:
                    ended |= (chunk == eos).all(dim=-1).any(dim=-1)
                    if bool(ended.all()):
                        return

    def run(
        self,
        inputs: Any,
        frames: int,
        use_graph: bool,
        eos: int | None = None,
        seeds: list[int] | None = None,
    ) -> torch.Tensor:
        """(B, n, codebooks) codes, n = `frames`, or fewer once every row has ended."""
        import torch

        chunks = self.chunks(inputs, frames, use_graph, eos, seeds=seeds)
        return torch.cat(list(chunks), dim=1)
