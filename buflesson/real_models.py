"""Lesson 10's models: real library code at a small size, and a model with its layers in a plain list.

Each `tiny_*` builds a Hugging Face Transformers model from a config (nothing is downloaded: the
weights are random, the structure is the library's own) with a fixed seed, leaving the caller's
random state as it was. `transformers` is imported only when a model is built.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def _seeded(build: Callable[[], nn.Module]) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build()


def tiny_gpt2() -> nn.Module:
    """GPT-2 with 2 blocks of width 32 (the real one: 12 of width 768) and a vocabulary of 100."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        n_layer=2, n_head=2, n_embd=32, n_positions=32, vocab_size=100, bos_token_id=0, eos_token_id=0
    )
    return _seeded(lambda: GPT2LMHeadModel(config))


def tiny_t5() -> nn.Module:
    """T5 with 2 encoder and 2 decoder blocks of width 32 and a vocabulary of 100."""
    from transformers import T5Config, T5ForConditionalGeneration

    config = T5Config(
        d_model=32,
        d_kv=16,
        d_ff=64,
        num_layers=2,
        num_heads=2,
        vocab_size=100,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    return _seeded(lambda: T5ForConditionalGeneration(config))


def tiny_bert() -> nn.Module:
    """BERT's encoder with 2 layers of width 32, 16 positions and a vocabulary of 100."""
    from transformers import BertConfig, BertModel

    config = BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        vocab_size=100,
        max_position_embeddings=16,
        pad_token_id=0,
    )
    return _seeded(lambda: BertModel(config))


def tiny_llama() -> nn.Module:
    """Llama with 2 layers of width 32, rotary position embeddings and a vocabulary of 100."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        intermediate_size=64,
        vocab_size=100,
        max_position_embeddings=64,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=0,
    )
    return _seeded(lambda: LlamaForCausalLM(config))


def tiny_resnet() -> nn.Module:
    """A ResNet with two stages of basic blocks (8 and 16 channels) and 3 classes."""
    from transformers import ResNetConfig, ResNetForImageClassification

    config = ResNetConfig(
        embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic", num_labels=3
    )
    return _seeded(lambda: ResNetForImageClassification(config))


class ListTower(nn.Module):
    """A stack of blocks kept in a plain Python list: PyTorch never registers them."""

    def __init__(self, width: int = 8, depth: int = 3) -> None:
        super().__init__()
        self.blocks = [
            nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU()) for _ in range(depth)
        ]
        self.head = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head(x)
