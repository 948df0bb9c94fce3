"""Lesson 10 checks: 10.1 GPT-2's tied matrix, 10.2 what Llama does not save, 10.3 what a forward pass
changes in a ResNet, 10.4 a tower whose blocks must be registered."""

from collections import OrderedDict

import pytest
import torch
from torch import nn

from buflesson import ListTower, check, inventory, tiny_gpt2, tiny_resnet, tiny_t5
from buflesson.checks import Fail
from buflesson.exercises.lesson10 import Why, compare_names, names_from
from buflesson.results import FAILED, NOT_ATTEMPTED

from corpus import Wrong, verdict_tests

pytest.importorskip("transformers")

# -- 10.1 ---------------------------------------------------------------------------------------

TIED = {"shared.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight"}


def predict_tied():  # the answer notebook's answer
    return {"shared.weight", "encoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight"}


def tied_from_pytorch():  # asks PyTorch, as the lesson shows
    model = tiny_t5()
    shared = model.shared.weight
    return {name for name, p in model.named_parameters(remove_duplicate=False) if p is shared}


def tied_from_inventory():  # the row's names
    return inventory(tiny_t5())["shared.weight"].names


def tied_from_named_parameters():  # named_parameters() gives the shared tensor once
    model = tiny_t5()
    return {name for name, p in model.named_parameters() if p is model.shared.weight}


def tied_raises():
    return tiny_t5().no_such_attribute


def tied_not_yet():
    raise NotImplementedError


# -- 10.2 ---------------------------------------------------------------------------------------

ROTARY = ("model.rotary_emb.inv_freq", "model.rotary_emb.original_inv_freq")


def predict_not_saved():
    return {"model.rotary_emb.inv_freq", "model.rotary_emb.original_inv_freq"}


def not_saved_from_pytorch():
    from buflesson import tiny_llama

    model = tiny_llama()
    return {name for name, _ in model.named_buffers()} - set(model.state_dict())


# -- 10.3 ---------------------------------------------------------------------------------------

STATS = ("running_mean", "running_var", "num_batches_tracked")


def predict_changed():
    return {name for name in tiny_resnet().state_dict() if name.rsplit(".", 1)[-1] in STATS}


def changed_by_running():  # runs the model itself, as PyTorch would
    model = tiny_resnet().train()
    before = {name: value.clone() for name, value in model.state_dict().items()}
    with torch.no_grad():
        model(torch.zeros(2, 3, 16, 16).normal_(generator=torch.Generator().manual_seed(1)))
    return {name for name, value in model.state_dict().items() if not torch.equal(value, before[name])}


def changed_from_buffers():  # every buffer of the model is a BatchNorm statistic
    return tuple(name for name, _ in tiny_resnet().named_buffers())


def running_only():
    return {name for name in predict_changed() if "running" in name}


def without_running_var():
    return {name for name in predict_changed() if not name.endswith("running_var")}


def with_norm_weights():
    return predict_changed() | {"resnet.embedder.embedder.normalization.weight"}


def everything_saved():
    return set(tiny_resnet().state_dict())


# -- 10.4 ---------------------------------------------------------------------------------------


def _block(width: int) -> nn.Module:
    return nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU())


class Tower(nn.Module):  # the answer notebook's answer
    def __init__(self, width=8, depth=3):
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), nn.ReLU()) for _ in range(depth)
        )
        self.head = nn.Linear(width, 1)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.head(x)


class TowerSequential(Tower):  # an nn.Sequential registers its blocks under the same names
    def __init__(self, width=8, depth=3):
        super().__init__(width, depth)
        self.blocks = nn.Sequential(*(_block(width) for _ in range(depth)))


class TowerAppend(nn.Module):  # blocks appended one by one
    def __init__(self, width=8, depth=3):
        super().__init__()
        self.blocks = nn.ModuleList()
        for _ in range(depth):
            self.blocks.append(_block(width))
        self.head = nn.Linear(width, 1)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.head(x)


class TowerWrapsTheList(ListTower):  # the lesson's class, its list wrapped afterwards
    def __init__(self, width=8, depth=3):
        super().__init__(width, depth)
        self.blocks = nn.ModuleList(self.blocks)


Tower.__name__ = TowerSequential.__name__ = TowerAppend.__name__ = TowerWrapsTheList.__name__ = "Tower"


class InTuple(ListTower):
    def __init__(self, width=8, depth=3):
        super().__init__(width, depth)
        self.blocks = tuple(self.blocks)


class Renamed(Tower):  # registered as layers; blocks is a plain list pointing at them
    def __init__(self, width=8, depth=3):
        super().__init__(width, depth)
        self.layers = self.blocks
        del self.blocks
        self.blocks = list(self.layers)


class NoNorm(Tower):
    def forward(self, x):
        for block in self.blocks:
            x = torch.relu(block[0](x))
        return self.head(x)


class NoRelu(Tower):
    def forward(self, x):
        for block in self.blocks:
            x = block[1](block[0](x))
        return self.head(x)


class FrozenBlocks(Tower):
    def __init__(self, width=8, depth=3):
        super().__init__(width, depth)
        self.blocks.requires_grad_(False)


class FixedSize(Tower):  # ignores its arguments
    def __init__(self, width=8, depth=3):
        super().__init__(8, 3)


class HeadInList(Tower):
    def __init__(self, width=8, depth=3):
        super().__init__(width, depth)
        head = self.head
        del self.head
        self.heads = [head]

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.heads[0](x)


class SharedBlock(Tower):  # one block object listed depth times: depth names, one set of tensors
    def __init__(self, width=8, depth=3):
        super().__init__(width, depth)
        self.blocks = nn.ModuleList([_block(width)] * depth)


class DictTower(Tower):  # an nn.ModuleDict: registered, but named by keys, and the loop gets the keys
    def __init__(self, width=8, depth=3):
        super().__init__(width, depth)
        self.blocks = nn.ModuleDict({f"b{i}": _block(width) for i in range(depth)})


class TowerExtended(nn.Module):  # an empty nn.ModuleList, extended; blocks before the head
    def __init__(self, width=8, depth=3):
        super().__init__()
        self.blocks = nn.ModuleList()
        self.blocks.extend(_block(width) for _ in range(depth))
        self.head = nn.Linear(width, 1)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.head(x)


TowerExtended.__name__ = "Tower"


class FrozenHead(Tower):
    def __init__(self, width=8, depth=3):
        super().__init__(width, depth)
        self.head.requires_grad_(False)


class DoubleBlocks(Tower):
    def __init__(self, width=8, depth=3):
        super().__init__(width, depth)
        self.blocks.double()


class BuiltInFloat64(Tower):  # the default dtype switched while the tower is built, then back
    def __init__(self, width=8, depth=3):
        torch.set_default_dtype(torch.float64)
        try:
            super().__init__(width, depth)
        finally:
            torch.set_default_dtype(torch.float32)


class NamedLayers(Tower):  # each block an nn.Sequential of named layers: other state_dict keys
    def __init__(self, width=8, depth=3):
        super().__init__(width, depth)
        self.blocks = nn.ModuleList(
            nn.Sequential(OrderedDict(linear=block[0], norm=block[1], act=block[2])) for block in self.blocks
        )


class EvalBlocks(Tower):  # blocks switched to eval mode in __init__
    def __init__(self, width=8, depth=3):
        super().__init__(width, depth)
        self.blocks.eval()


class OtherMomentum(Tower):  # registered, but the blocks are not the given ones
    def __init__(self, width=8, depth=3):
        super().__init__(width, depth)
        for block in self.blocks:
            block[1].momentum = 0.5


class WithDropout(Tower):  # registered, but every block gained a Dropout
    def __init__(self, width=8, depth=3):
        super().__init__(width, depth)
        self.blocks = nn.ModuleList(nn.Sequential(*block, nn.Dropout(0.5)) for block in self.blocks)


class GradOffTower(Tower):  # switches autograd off for the whole session
    def __init__(self, width=8, depth=3):
        super().__init__(width, depth)
        torch.set_grad_enabled(False)


class SeededTower(Tower):  # reseeds torch's generator for everything that runs after it
    def __init__(self, width=8, depth=3):
        torch.manual_seed(0)
        super().__init__(width, depth)


class OwnSeedTower(Tower):  # a seed in a forked random state is the student's own business
    def __init__(self, width=8, depth=3):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            super().__init__(width, depth)


def tied_twice():
    return [*sorted(TIED), "shared.weight"]


def tied_grad_off():
    torch.set_grad_enabled(False)
    return set(TIED)


def tied_none():
    set(TIED)


def changed_seeded():
    torch.manual_seed(0)
    return predict_changed()


def changed_twice():
    return [*sorted(predict_changed()), sorted(predict_changed())[0]]


class TowerNotYet(nn.Module):
    def __init__(self, width=8, depth=3):
        super().__init__()
        raise NotImplementedError


RIGHT = {
    "10.1": [predict_tied, tied_from_pytorch, tied_from_inventory, sorted(TIED)],
    "10.2": [predict_not_saved, not_saved_from_pytorch, list(ROTARY), tuple(reversed(ROTARY))],
    "10.3": [predict_changed, changed_by_running, changed_from_buffers, sorted(predict_changed())],
    "10.4": [Tower, TowerSequential, TowerAppend, TowerWrapsTheList, OwnSeedTower, TowerExtended],
}

WRONG = {
    "10.1": [
        Wrong(sorted(TIED - {"lm_head.weight"}), "misses lm_head.weight: T5's config ties", "'also' line"),
        Wrong(["shared.weight", "lm_head.weight"], "misses decoder.embed_tokens.weight", "'also' line"),
        Wrong(sorted(TIED - {"shared.weight"}), "misses shared.weight itself", "shared.weight too"),
        Wrong(
            sorted(TIED | {"encoder.final_layer_norm.weight"}),
            "is a tensor of its own (shape (32,))",
            "one row",
        ),
        Wrong(
            sorted(TIED | {"embed_tokens.weight"}), "no tensor named 'embed_tokens.weight'", "Copy the names"
        ),
        Wrong("shared.weight", "Expected a set of tensor names, got str", "Write it as"),
        Wrong(4, "got int", "Write it as"),
        Wrong({1, 2}, "Every name is a string", "in quotes"),
        Wrong(tied_from_named_parameters, "misses decoder.embed_tokens.weight", "remove_duplicate=False"),
        Wrong(tied_twice, "Listed more than once: 'shared.weight' (2 times)", "Each name counts once"),
        Wrong(tied_grad_off, "changed gradient tracking", "torch.no_grad()"),
        Wrong(tied_none, "tied_none() returned None", "End the function with `return`"),
        Wrong(tied_raises, "tied_raises() raised AttributeError", "Run that step yourself"),
    ],
    "10.2": [
        Wrong({ROTARY[0]}, "misses model.rotary_emb.original_inv_freq", "kind='non-persistent buffer'"),
        Wrong([*ROTARY, "lm_head.weight"], "lm_head.weight is a parameter", "non-persistent buffer"),
        Wrong(["inv_freq", "original_inv_freq"], "no tensor named 'inv_freq'", "module path"),
        Wrong(set(), "misses model.rotary_emb.inv_freq", "non-persistent buffer"),
        Wrong({ROTARY[0]: 1}, "got dict", "Write it as"),
        Wrong([*ROTARY, ROTARY[0]], "Listed more than once", "Each name counts once"),
        Wrong(tiny_gpt2, "tiny_gpt2 is buflesson's own", "Write the answer yourself"),
    ],
    "10.3": [
        Wrong(running_only, "num_batches_tracked: it counts the batches", "num_batches_tracked"),
        Wrong(without_running_var, "running_var: BatchNorm updates its running statistics", "kind='buffer'"),
        Wrong(with_norm_weights, "normalization.weight is a parameter", "no optimizer here"),
        Wrong(everything_saved, "classifier.1.bias is a parameter", "no optimizer here"),
        Wrong({"running_mean"}, "no tensor named 'running_mean'", "module path"),
        Wrong(set(), "misses resnet.embedder.embedder.normalization.num_batches_tracked", "num_batches"),
        Wrong(changed_seeded, "changed torch's random seed", "leave torch's seed alone"),
        Wrong(changed_twice, "Listed more than once", "Each name counts once"),
    ],
    "10.4": [
        Wrong(ListTower, "modules kept in a plain list or dict", "nn.ModuleList"),
        Wrong(InTuple, "modules kept in a plain list or dict", "self.blocks = nn.ModuleList"),
        Wrong(HeadInList, "heads[0].weight", "nn.ModuleList"),
        Wrong(Renamed, "no key that starts with blocks.", "Keep the name blocks"),
        Wrong(NoNorm, "left blocks.0.1.running_mean as it was", "Keep the given forward"),
        Wrong(
            FrozenBlocks,
            "do not require grad, so backward() gives them no gradient",
            "Leave the blocks' parameters",
        ),
        Wrong(FixedSize, "blocks of width 8", "Build the tower from the arguments"),
        Wrong(NoRelu, "other values than the blocks", "Keep the given forward"),
        Wrong(Tower(), "not the class", "check(..., Tower)"),
        Wrong(SharedBlock, "are one tensor: the tower holds the same block", "not [block] * depth"),
        Wrong(GradOffTower, "changed gradient tracking", "torch.no_grad()"),
        Wrong(DictTower, "registered under the names b0, b1", "nn.ModuleDict names them"),
        Wrong(SeededTower, "changed torch's random seed", "leave torch's seed alone"),
        Wrong(FrozenHead, "did not change head.weight", "Leave the head trainable too"),
        Wrong(DoubleBlocks, "blocks.0.0.weight is torch.float64", "change no dtype in __init__"),
        Wrong(BuiltInFloat64, "blocks.0.0.weight is torch.float64", "torch.set_default_dtype included"),
        Wrong(
            NamedLayers,
            "inside blocks.0 the layers are named linear, norm",
            "Keep the blocks themselves",
        ),
        Wrong(EvalBlocks, "blocks.0.1 is in eval mode", "no .eval() in __init__"),
        Wrong(OtherMomentum, "by another amount than nn.BatchNorm1d(width)", "BatchNorm's default settings"),
        Wrong(WithDropout, "In training mode, forward gives other values", "Keep the blocks themselves"),
    ],
}

test_right_answer_passes, test_wrong_answer_fails_naming_its_mistake = verdict_tests(RIGHT, WRONG)


@pytest.mark.parametrize("exercise_id", ["10.1", "10.2", "10.3"])
def test_placeholders_and_unwritten_functions_are_not_attempted(exercise_id):
    assert check(exercise_id, ...).status == NOT_ATTEMPTED
    assert check(exercise_id, tied_not_yet).status == NOT_ATTEMPTED
    assert check(exercise_id, None).status == FAILED


def test_10_4_not_attempted():
    assert check("10.4", ...).status == NOT_ATTEMPTED
    assert check("10.4", TowerNotYet).status == NOT_ATTEMPTED


def test_10_4_leaves_the_students_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    check("10.4", Tower)
    assert torch.equal(torch.rand(1), expected)


# -- the comparison itself, on plain data ---------------------------------------------------------

WHY = Why(missing=lambda name: ("missing {name}", "m"), extra=lambda name: ("extra {name}", "e"))


@pytest.mark.parametrize(
    "given, message",
    [
        ({"a", "b", "zzz"}, "M has no tensor named 'zzz'."),
        ({"a", "b", "c"}, "extra c"),
        ({"a"}, "missing b"),
        ({"c", "zzz"}, "M has no tensor named 'zzz'."),  # unknown names first, then extra, then missing
    ],
)
def test_compare_names_names_the_first_mistake(given, message):
    with pytest.raises(Fail) as failure:
        compare_names(given, {"a", "b"}, {"a", "b", "c"}, WHY, "M")
    assert failure.value.message == message


def test_compare_names_passes_the_truth_and_names_from_accepts_collections_without_repeats():
    compare_names({"a", "b"}, {"a", "b"}, {"a", "b"}, WHY, "M")
    assert names_from(["a", "b"]) == names_from(("b", "a")) == names_from(frozenset("ab")) == {"a", "b"}
    with pytest.raises(Fail, match="Listed more than once"):
        names_from(["a", "b", "a"])
