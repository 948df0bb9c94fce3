"""Real models to check `inventory` and `audit` against: torch.nn layers, torch.nn.utils, quantization,
CNN and ViT blocks built here (torchvision and timm do not install next to the CPU torch), and
Hugging Face Transformers models built from small configs (no download).

`CLEAN` models are written the way their libraries write them: `audit` must find nothing.
`BUGGY` models carry a state bug each, with the problems `audit` must report.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils import parametrize

# -- torch.nn -------------------------------------------------------------------------------


def _shared_twice() -> nn.Module:
    shared = nn.Linear(4, 4)
    return nn.Sequential(shared, nn.ReLU(), shared)


def _tied_modules() -> nn.Module:
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(10, 4)
            self.head = nn.Linear(4, 10, bias=False)
            self.head.weight = self.embed.weight

    return Tied()


def _lazy() -> nn.Module:
    return nn.Sequential(nn.LazyLinear(4), nn.LazyBatchNorm1d(), nn.LazyConv1d(3, 2))


def _lazy_after_forward() -> nn.Module:
    model = nn.Sequential(nn.LazyConv2d(4, 3), nn.LazyBatchNorm2d(), nn.Flatten(), nn.LazyLinear(2))
    model(torch.zeros(1, 3, 6, 6))
    return model


def _rnns() -> nn.Module:
    return nn.ModuleDict(
        {
            "rnn": nn.RNN(3, 4, num_layers=2, nonlinearity="relu"),
            "lstm": nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2),
            "gru": nn.GRU(3, 4, batch_first=True, bias=False),
            "cell": nn.LSTMCell(3, 4),
        }
    )


def _attention() -> nn.Module:
    return nn.ModuleDict(
        {
            "mha": nn.MultiheadAttention(8, 2),
            "mha_kv": nn.MultiheadAttention(8, 2, kdim=6, vdim=5, add_bias_kv=True),
            "transformer": nn.Transformer(
                d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=16
            ),
        }
    )


def _norms() -> nn.Module:
    return nn.ModuleDict(
        {
            "bn": nn.BatchNorm2d(3),
            "bn_no_stats": nn.BatchNorm1d(3, track_running_stats=False),
            "bn_no_affine": nn.BatchNorm1d(3, affine=False),
            "inorm": nn.InstanceNorm2d(3, affine=True, track_running_stats=True),
            "inorm_plain": nn.InstanceNorm1d(3),
            "group": nn.GroupNorm(1, 3),
            "layer": nn.LayerNorm([3, 2]),
            "rms": nn.RMSNorm(3),
            "local": nn.LocalResponseNorm(2),
            "sync": nn.SyncBatchNorm(3),
        }
    )


def _layers() -> nn.Module:
    return nn.ModuleDict(
        {
            "conv1": nn.Conv1d(2, 3, 3),
            "conv3": nn.Conv3d(2, 3, 1, bias=False),
            "deconv": nn.ConvTranspose2d(2, 3, 2, groups=1),
            "embed": nn.Embedding(7, 3, padding_idx=0),
            "bag": nn.EmbeddingBag(7, 3, mode="sum"),
            "bilinear": nn.Bilinear(2, 3, 4),
            "prelu": nn.PReLU(3),
            "adaptive": nn.AdaptiveLogSoftmaxWithLoss(8, 20, cutoffs=[5, 10]),
            "params": nn.ParameterList([nn.Parameter(torch.ones(2)), nn.Parameter(torch.zeros(3))]),
            "pdict": nn.ParameterDict({"a": nn.Parameter(torch.ones(1))}),
        }
    )


def _frozen_and_meta() -> nn.Module:
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    model[0].weight.requires_grad_(False)
    return model.to(torch.float16)


# -- torch.nn.utils -----------------------------------------------------------------------


def _quiet(build: Callable[[], nn.Module]) -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build()


def _legacy_weight_norm() -> nn.Module:
    return _quiet(
        lambda: nn.Sequential(nn.utils.weight_norm(nn.Linear(3, 4)), nn.utils.weight_norm(nn.Conv1d(2, 2, 1)))
    )


def _legacy_spectral_norm() -> nn.Module:
    return nn.Sequential(nn.utils.spectral_norm(nn.Linear(3, 4)), nn.utils.spectral_norm(nn.Conv2d(2, 2, 1)))


def _pruned() -> nn.Module:
    import torch.nn.utils.prune as prune

    model = nn.Sequential(nn.Linear(4, 4), nn.Conv1d(2, 2, 1))
    prune.l1_unstructured(model[0], "weight", amount=0.5)
    prune.random_unstructured(model[0], "weight", amount=0.25)  # a PruningContainer
    prune.ln_structured(model[1], "weight", amount=0.5, n=2, dim=0)
    prune.l1_unstructured(model[1], "bias", amount=0.5)
    return model


def _parametrized() -> nn.Module:
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 2))
    nn.utils.parametrizations.weight_norm(model[0])  # two originals
    nn.utils.parametrizations.spectral_norm(model[1])  # buffers inside the parametrization
    nn.utils.parametrizations.orthogonal(model[2])

    class Symmetric(nn.Module):
        def forward(self, x):
            return x.triu() + x.triu(1).transpose(-1, -2)

    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.factor = nn.Parameter(torch.tensor(2.0))

        def forward(self, x):
            return x * self.factor

    parametrize.register_parametrization(model[2], "weight", Symmetric())  # two steps on one tensor
    parametrize.register_parametrization(model[3], "bias", Scale())
    return model


def _parametrized_buffer() -> nn.Module:
    class Calibrated(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("scale", torch.ones(3))

        def forward(self, x):
            return x * self.scale

    class Positive(nn.Module):
        def forward(self, x):
            return x.abs()

    model = Calibrated()
    parametrize.register_parametrization(model, "scale", Positive())
    return model


def _quantized_dynamic() -> nn.Module:
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.LSTM(4, 3), nn.Linear(3, 2))
    return _quiet(lambda: torch.ao.quantization.quantize_dynamic(model, {nn.Linear, nn.LSTM}, torch.qint8))


def _quantized_static() -> nn.Module:
    return _quiet(
        lambda: nn.Sequential(
            torch.ao.nn.quantized.Quantize(0.1, 0, torch.quint8),
            torch.ao.nn.quantized.Linear(4, 3),
            torch.ao.nn.quantized.DeQuantize(),
        )
    )


def _extra_state() -> nn.Module:
    class Versioned(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(2, 2)
            self.calls = 0

        def get_extra_state(self):
            return {"calls": self.calls}

        def set_extra_state(self, state):
            self.calls = state["calls"]

    return nn.Sequential(Versioned(), nn.ReLU())


# -- CNN and ViT blocks, written as torchvision and timm write them -----------------------


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNetLike(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.layer1 = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 8))
        self.layer2 = nn.Sequential(BasicBlock(8, 16, 2), BasicBlock(16, 16))
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.bn1(self.conv1(x)).relu()
        x = self.layer2(self.layer1(x))
        return self.fc(x.mean((2, 3)))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_res = cin == cout
        self.conv = nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, hidden, 3, 1, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


def _mobilenet_like() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, 2, 1, bias=False),
        nn.BatchNorm2d(8),
        InvertedResidual(8, 8, 2),
        InvertedResidual(8, 12, 3),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(12, 5),
    )


class ViTLike(nn.Module):
    def __init__(self, dim: int = 16, depth: int = 2, patches: int = 4) -> None:
        super().__init__()
        self.patch_embed = nn.Conv2d(3, dim, 4, 4)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, patches + 1, dim))
        layer = nn.TransformerEncoderLayer(dim, 2, 32, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 10)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embed
        return self.head(self.norm(self.blocks(x))[:, 0])


class LeViTAttention(nn.Module):
    """timm's LeViT attention: a per-device cache of attention biases, cleared by its train() and _apply()."""

    def __init__(self, dim: int = 8, heads: int = 2, resolution: int = 2) -> None:
        super().__init__()
        self.qkv = nn.Linear(dim, dim * 3)
        points = torch.stack(
            torch.meshgrid(torch.arange(resolution), torch.arange(resolution), indexing="ij")
        )
        points = points.flatten(1)
        rel = (points[..., :, None] - points[..., None, :]).abs()
        rel = rel[0] * resolution + rel[1]
        self.attention_biases = nn.Parameter(torch.zeros(heads, resolution * resolution))
        self.register_buffer("attention_bias_idxs", rel, persistent=False)
        self.attention_bias_cache: dict[str, torch.Tensor] = {}
        self.heads = heads

    @torch.no_grad()
    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.attention_bias_cache:
            self.attention_bias_cache = {}
        return self

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        self.attention_bias_cache = {}
        return self

    def get_attention_biases(self, device: torch.device) -> torch.Tensor:
        if self.training:
            return self.attention_biases[:, self.attention_bias_idxs]
        key = str(device)
        if key not in self.attention_bias_cache:
            self.attention_bias_cache[key] = self.attention_biases[:, self.attention_bias_idxs]
        return self.attention_bias_cache[key]

    def forward(self, x):
        batch, tokens, dim = x.shape
        q, k, v = self.qkv(x).reshape(batch, tokens, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1)) + self.get_attention_biases(x.device)
        return (attn.softmax(-1) @ v).transpose(1, 2).reshape(batch, tokens, dim)


def _levit_cached() -> nn.Module:
    model = nn.Sequential(LeViTAttention(), LeViTAttention()).eval()
    model(torch.zeros(1, 4, 8))  # fills the caches, as inference does
    return model


# -- state bugs people write ----------------------------------------------------------------


class PlainListLayers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(3, 4)
        self.layers = [nn.Linear(4, 4), nn.BatchNorm1d(4)]
        self.heads = {"a": nn.Linear(4, 2)}

    def forward(self, x):
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x)
        return self.heads["a"](x)


class HiddenTeacher(nn.Module):
    """A module stored with object.__setattr__ so that PyTorch does not register it."""

    def __init__(self) -> None:
        super().__init__()
        self.student = nn.Linear(3, 3)
        object.__setattr__(self, "teacher", nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)))

    def forward(self, x):
        return self.student(x) + self.teacher(x)


class StaleRefs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 3)
        self.register_buffer("mean", torch.zeros(3))
        self.stats = {"mean": self.mean}  # goes stale after .to()
        self.weights = [self.linear.weight]  # fine: a parameter keeps its object

    def forward(self, x):
        return self.linear(x - self.stats["mean"])


# -- Hugging Face Transformers, from small configs ----------------------------------------


def _hf(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import transformers as hf

        hf.logging.set_verbosity_error()
        small = dict(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, vocab_size=99
        )
        seq2seq = dict(
            d_model=32,
            encoder_layers=1,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            encoder_ffn_dim=37,
            decoder_ffn_dim=37,
            vocab_size=99,
            max_position_embeddings=32,
            pad_token_id=1,
            bos_token_id=0,
            eos_token_id=2,
            decoder_start_token_id=2,
        )
        audio = dict(conv_dim=(8, 8), conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=16)
        configs = {
            "gpt2": lambda: hf.GPT2LMHeadModel(
                hf.GPT2Config(
                    n_layer=2,
                    n_embd=32,
                    n_head=2,
                    vocab_size=99,
                    n_positions=16,
                    bos_token_id=0,
                    eos_token_id=0,
                )
            ),
            "bert": lambda: hf.BertForMaskedLM(hf.BertConfig(**small)),
            "t5": lambda: hf.T5ForConditionalGeneration(
                hf.T5Config(d_model=32, d_kv=16, d_ff=37, num_layers=2, num_heads=2, vocab_size=99)
            ),
            "llama": lambda: hf.LlamaForCausalLM(hf.LlamaConfig(**small, num_key_value_heads=1)),
            "whisper": lambda: hf.WhisperForConditionalGeneration(
                hf.WhisperConfig(
                    **{k: v for k, v in seq2seq.items() if k != "max_position_embeddings"},
                    num_mel_bins=8,
                    max_source_positions=16,
                    max_target_positions=16,
                )
            ),
            "bart": lambda: hf.BartForConditionalGeneration(hf.BartConfig(**seq2seq)),
            "marian": lambda: hf.MarianMTModel(hf.MarianConfig(**seq2seq)),
            "vit": lambda: hf.ViTForImageClassification(
                hf.ViTConfig(**small, image_size=16, patch_size=8, num_labels=3)
            ),
            "distilbert": lambda: hf.DistilBertForMaskedLM(
                hf.DistilBertConfig(dim=32, n_layers=2, n_heads=2, hidden_dim=37, vocab_size=99)
            ),
            "albert": lambda: hf.AlbertForMaskedLM(hf.AlbertConfig(**small, embedding_size=16)),
            "gemma": lambda: hf.GemmaForCausalLM(hf.GemmaConfig(**small, num_key_value_heads=1, head_dim=16)),
            "gpt_neox": lambda: hf.GPTNeoXForCausalLM(hf.GPTNeoXConfig(**small)),
            "opt": lambda: hf.OPTForCausalLM(
                hf.OPTConfig(
                    hidden_size=32,
                    num_hidden_layers=2,
                    num_attention_heads=2,
                    ffn_dim=37,
                    vocab_size=99,
                    word_embed_proj_dim=16,
                )
            ),
            "mamba": lambda: hf.MambaForCausalLM(
                hf.MambaConfig(hidden_size=32, num_hidden_layers=2, vocab_size=99, state_size=4)
            ),
            "swin": lambda: hf.SwinModel(
                hf.SwinConfig(
                    image_size=16, patch_size=2, embed_dim=8, depths=[1, 2], num_heads=[1, 2], window_size=4
                )
            ),
            "resnet": lambda: hf.ResNetForImageClassification(
                hf.ResNetConfig(
                    embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="bottleneck"
                )
            ),
            "clip": lambda: hf.CLIPModel(
                hf.CLIPConfig(
                    text_config=dict(**small, max_position_embeddings=16),
                    vision_config=dict(
                        hidden_size=32,
                        num_hidden_layers=1,
                        num_attention_heads=2,
                        intermediate_size=37,
                        image_size=16,
                        patch_size=8,
                    ),
                    projection_dim=16,
                )
            ),
            "wav2vec2": lambda: hf.Wav2Vec2ForCTC(hf.Wav2Vec2Config(**small, **audio)),
            "levit": lambda: hf.LevitModel(
                hf.LevitConfig(
                    image_size=32,
                    hidden_sizes=[16, 24, 32],
                    num_attention_heads=[1, 2, 2],
                    depths=[1, 1, 1],
                    key_dim=[8, 8, 8],
                )
            ),
        }
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return configs[name]()

    build.__name__ = f"hf_{name}"
    return build


def _hf_levit_cached() -> nn.Module:
    model = _hf("levit")().eval()
    model(torch.zeros(1, 3, 32, 32))
    return model


HF = [
    "gpt2", "bert", "t5", "llama", "whisper", "bart", "marian", "vit", "distilbert", "albert", "gemma",
    "gpt_neox", "opt", "mamba", "swin", "resnet", "clip", "wav2vec2", "levit",
]  # fmt: skip

CLEAN: dict[str, Callable[[], nn.Module]] = {
    "shared module used twice": _shared_twice,
    "tied embedding and head": _tied_modules,
    "lazy modules": _lazy,
    "lazy modules after forward": _lazy_after_forward,
    "RNN, LSTM, GRU, LSTMCell": _rnns,
    "MultiheadAttention and Transformer": _attention,
    "norm layers": _norms,
    "conv, embedding, bilinear, parameter lists": _layers,
    "frozen, float16, on meta": _frozen_and_meta,
    "weight_norm (legacy hook)": _legacy_weight_norm,
    "spectral_norm (legacy hook)": _legacy_spectral_norm,
    "prune": _pruned,
    "parametrizations": _parametrized,
    "parametrized buffer": _parametrized_buffer,
    "dynamic quantization": _quantized_dynamic,
    "static quantized Linear": _quantized_static,
    "get_extra_state": _extra_state,
    "ResNet-like": ResNetLike,
    "MobileNetV2-like": _mobilenet_like,
    "ViT-like": ViTLike,
    "timm LeViT attention, cache filled": _levit_cached,
    **{f"transformers {name}": _hf(name) for name in HF},
    "transformers levit, cache filled": _hf_levit_cached,
}

BUGGY: dict[str, tuple[Callable[[], nn.Module], dict[str, str]]] = {
    "layers in a plain list and dict": (
        PlainListLayers,
        {"layers": "unregistered module", "heads": "unregistered module"},
    ),
    "teacher hidden with object.__setattr__": (HiddenTeacher, {"teacher": "unregistered module"}),
    "a dict that holds a buffer": (StaleRefs, {"stats['mean']": "stale reference"}),
}
