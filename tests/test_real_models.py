"""inventory and audit on real models: every row matches PyTorch's own account, and audit is silent
on models written the way their libraries write them.

The models (tests/model_zoo.py) are torch.nn layers, torch.nn.utils (weight_norm, spectral_norm,
pruning, parametrizations), quantized modules, CNN and ViT blocks, and Hugging Face Transformers
models built from small configs.
"""

import warnings

import pytest
import torch

from buflesson import audit, inventory

from model_zoo import BUGGY, CLEAN, HF
from pytorch_account import mismatches

pytest.importorskip("transformers")
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)


def _build(build):
    with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        return build()


@pytest.mark.parametrize("name", list(CLEAN) + list(BUGGY))
def test_every_row_matches_pytorchs_own_account(name):
    build = CLEAN[name] if name in CLEAN else BUGGY[name][0]
    assert mismatches(_build(build)) == []


@pytest.mark.parametrize("name", list(CLEAN))
def test_audit_is_silent_on_models_written_as_their_libraries_write_them(name):
    found = audit(_build(CLEAN[name]))
    assert found.ok, str(found)


@pytest.mark.parametrize("name", list(BUGGY))
def test_audit_finds_each_bug(name):
    build, expected = BUGGY[name]
    assert audit(_build(build)).problems() == expected


@pytest.mark.parametrize("name", list(CLEAN) + list(BUGGY))
def test_text_fits_100_columns_and_html_renders(name):
    build = CLEAN[name] if name in CLEAN else BUGGY[name][0]
    table = inventory(_build(build))
    assert max(len(line) for line in str(table).splitlines()) <= 100
    assert table._repr_html_().count("<tr class=") >= 1
    assert max(len(line) for line in str(audit(_build(build))).splitlines()) <= 100


def test_the_zoo_covers_transformers_and_what_the_issue_names():
    assert {"gpt2", "bert", "t5", "llama", "whisper", "bart", "vit", "distilbert"} <= set(HF)
    assert len(CLEAN) + len(BUGGY) >= 40


def test_gpt2_ties_its_head_to_the_token_embedding():
    table = inventory(_build(CLEAN["transformers gpt2"]))
    row = table["lm_head.weight"]
    assert row.name == "transformer.wte.weight" and row.aliases == ("lm_head.weight",)


def test_t5_shares_one_embedding_under_its_names():
    import transformers

    config = transformers.T5Config(
        d_model=8, d_kv=4, d_ff=8, num_layers=1, num_heads=2, vocab_size=20, tie_word_embeddings=True
    )
    table = inventory(_build(lambda: transformers.T5ForConditionalGeneration(config)))
    row = table["shared.weight"]
    assert set(row.names) == {
        "shared.weight",
        "encoder.embed_tokens.weight",
        "decoder.embed_tokens.weight",
        "lm_head.weight",
    }


def test_bert_position_ids_are_not_saved_and_llama_inv_freq_is_non_persistent():
    bert = inventory(_build(CLEAN["transformers bert"]))
    assert not bert["bert.embeddings.position_ids"].in_state_dict
    assert bert["bert.embeddings.position_ids"].follows_to
    llama = inventory(_build(CLEAN["transformers llama"]))
    assert llama["model.rotary_emb.inv_freq"].kind == "non-persistent buffer"


def test_wav2vec2_positional_conv_is_weight_normed_by_a_parametrization():
    row = inventory(_build(CLEAN["transformers wav2vec2"]))["wav2vec2.encoder.pos_conv_embed.conv.weight"]
    assert row.kind == "computed" and len(row.sources) == 2 and row.shape is not None
