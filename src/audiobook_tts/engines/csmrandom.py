"""Randomly initialised CSM models, made in-process: a tiny one for the tests (seconds on a
CPU) and a csm-1b-shaped one for the engine benchmark. The real weights are gated; random
weights at a fixed length cost the same compute as the checkpoint, and say nothing else.

Recipe (transformers 5.x): a byte-level BPE tokenizer (256 byte tokens, no merges) with CSM's
special tokens; `vocab_size` equal to the codec's `codebook_size`; the Mimi codec with the real
upsampling ratios [8, 6, 5, 4], so that 1,920 samples make one 80 ms frame, as the processor
expects. Saved with `save_pretrained`, it is a model directory like the real one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

BOS, EOS, AUDIO, AUDIO_EOS, PAD = (
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|AUDIO|>",
    "<|audio_eos|>",
    "<|pad|>",
)
# How a conversation becomes text (csm-1b ships a chat template to the same effect): each
# turn is its speaker and text; a turn with a reference clip is followed by its audio frames.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- bos_token + '[' + message['role'] + ']' + message['content'][0]['text'] + eos_token -}}"
    "{%- if message['content'] | length > 1 -%}{{- '<|AUDIO|><|audio_eos|>' -}}{%- endif -%}"
    "{%- endfor -%}"
)


@dataclass(frozen=True)
class Shape:
    """The sizes that decide a CSM's compute."""

    hidden_size: int
    intermediate_size: int
    layers: int
    heads: int
    kv_heads: int
    depth_hidden_size: int
    depth_intermediate_size: int
    depth_layers: int
    depth_heads: int
    depth_kv_heads: int
    codebooks: int
    codebook_size: int
    # None: the library's default Mimi (the real codec's size).
    codec: dict[str, Any] | None


TINY = Shape(64, 128, 2, 4, 2, 32, 64, 1, 2, 1, 4, 128, {
    "hidden_size": 32, "num_filters": 4, "num_residual_layers": 1, "codebook_dim": 16,
    "vector_quantization_hidden_dimension": 16, "upsample_groups": 32, "num_hidden_layers": 1,
    "intermediate_size": 64, "num_attention_heads": 2, "num_key_value_heads": 2,
})  # fmt: skip
# csm-1b: a Llama-1B backbone, a 100M depth decoder over 32 codebooks, the real Mimi.
CSM_1B = Shape(2048, 8192, 16, 32, 8, 1024, 8192, 4, 8, 2, 32, 2048, None)


def byte_tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    core = Tokenizer(models.BPE(vocab={char: i for i, char in enumerate(alphabet)}, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=[AUDIO, AUDIO_EOS],
    )


def build(shape: Shape, seed: int = 0) -> tuple[Any, Any]:
    """(model, processor) with random weights of `shape`, in float32 on the CPU."""
    import torch
    from transformers import (
        CsmConfig,
        CsmForConditionalGeneration,
        CsmProcessor,
        EncodecFeatureExtractor,
        MimiConfig,
    )

    tokenizer = byte_tokenizer()
    ids = tokenizer.convert_tokens_to_ids
    codec = MimiConfig(
        upsampling_ratios=[8, 6, 5, 4],
        codebook_size=shape.codebook_size,
        num_quantizers=shape.codebooks,
        **(shape.codec or {}),
    )
    config = CsmConfig(
        num_codebooks=shape.codebooks,
        vocab_size=shape.codebook_size,
        text_vocab_size=len(tokenizer),
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.kv_heads,
        max_position_embeddings=2048,
        pad_token_id=ids(PAD),
        bos_token_id=ids(BOS),
        audio_token_id=ids(AUDIO),
        audio_eos_token_id=ids(AUDIO_EOS),
        codebook_pad_token_id=shape.codebook_size - 1,
        codebook_eos_token_id=0,
        depth_decoder_config={
            "num_codebooks": shape.codebooks,
            "backbone_hidden_size": shape.hidden_size,
            "vocab_size": shape.codebook_size,
            "hidden_size": shape.depth_hidden_size,
            "intermediate_size": shape.depth_intermediate_size,
            "num_hidden_layers": shape.depth_layers,
            "num_attention_heads": shape.depth_heads,
            "num_key_value_heads": shape.depth_kv_heads,
            "max_position_embeddings": shape.codebooks + 1,
        },
        codec_config=codec.to_dict(),
    )
    torch.manual_seed(seed)
    model = CsmForConditionalGeneration(config).eval()
    # Mimi's codebooks start at zero (a trained codec learns them): every code would decode
    # to the same audio. Random centroids make the audio depend on the codes, as it does
    # with real weights, so tests that compare audio compare codes too.
    with torch.no_grad():
        for name, buffer in model.codec_model.named_buffers():
            if name.endswith("codebook.embed_sum"):
                buffer.normal_()
    extractor = EncodecFeatureExtractor(feature_size=1, sampling_rate=24000, padding_value=0.0)
    processor = CsmProcessor(extractor, tokenizer, chat_template=CHAT_TEMPLATE)
    return model, processor


def save(directory: Path, shape: Shape = TINY, seed: int = 0) -> Path:
    """A model directory as `AUDIOBOOK_TTS_CSM_MODEL` expects it."""
    model, processor = build(shape, seed)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


if __name__ == "__main__":
    import sys

    target = Path(sys.argv[1] if len(sys.argv) > 1 else "tiny-csm")
    print(save(target))
