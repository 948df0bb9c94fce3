"""Lesson 10's models: real library code at a small size, and a model with its layers in a plain list.

Each `tiny_*` builds a Hugging Face Transformers model from a config: the library's own classes,
random weights, nothing downloaded. `from_config` seeds the weights and leaves the caller's random
state as it was; `transformers` is imported only when a model is built.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn


def from_config(model_class: str, config_class: str, **config: object) -> nn.Module:
    """`transformers.<model_class>(transformers.<config_class>(**config))`, with seeded weights."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tqdm warns on import in Jupyter when ipywidgets is missing
        import transformers
    settings = getattr(transformers, config_class)(**config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return getattr(transformers, model_class)(settings)


def tiny_gpt2() -> nn.Module:
    """GPT-2 with 2 blocks of width 32 (the real one: 12 of width 768) and a vocabulary of 100."""
    return from_config(
        "GPT2LMHeadModel",
        "GPT2Config",
        n_layer=2,
        n_head=2,
        n_embd=32,
        n_positions=32,
        vocab_size=100,
        bos_token_id=0,
        eos_token_id=0,
    )


def tiny_t5() -> nn.Module:
    """T5 with 2 encoder and 2 decoder blocks of width 32 and a vocabulary of 100."""
    return from_config(
        "T5ForConditionalGeneration",
        "T5Config",
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


def tiny_bert() -> nn.Module:
    """BERT's encoder with 2 layers of width 32, 16 positions and a vocabulary of 100."""
    return from_config(
        "BertModel",
        "BertConfig",
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        vocab_size=100,
        max_position_embeddings=16,
        pad_token_id=0,
    )


def tiny_llama() -> nn.Module:
    """Llama with 2 layers of width 32, rotary position embeddings and a vocabulary of 100."""
    return from_config(
        "LlamaForCausalLM",
        "LlamaConfig",
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


def tiny_resnet() -> nn.Module:
    """A ResNet for images: two stages of basic blocks (8 and 16 channels), 3 classes."""
    return from_config(
        "ResNetForImageClassification",
        "ResNetConfig",
        embedding_size=8,
        hidden_sizes=[8, 16],
        depths=[1, 1],
        layer_type="basic",
        num_labels=3,
    )


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
