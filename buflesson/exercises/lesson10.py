"""Lesson 10: predictions about real library models, and a model whose blocks must be registered.

Nothing here holds an answer. The prediction checks (10.1 to 10.3) build the lesson's model on
the check's side and ask PyTorch: which names `named_parameters(remove_duplicate=False)` gives
the tensor of T5's `shared.weight`, which buffers `state_dict()` leaves out, which tensors one
forward pass in training mode changes. The comparison is `compare_names`, a function of plain
data; each wrong name gets the hint for its own kind. 10.4 runs the student's class: it must
register its blocks so that they are saved, reloaded, trained and moved.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from buflesson.checks import Fail, exercise
from buflesson.handles import Remote
from buflesson.i18n import N_, Msg
from buflesson.inventory import BUFFER, PARAMETER, inventory
from buflesson.probes import (
    Draw,
    as_msg,
    build,
    close,
    code,
    expect_module_class,
    expect_plain_forward,
    expect_runs_on_device,
    forward,
    leaves_global_state,
    names_in,
    prediction,
    rows,
    save_and_reload,
    sgd_step,
    state_dict,
    student,
)
from buflesson.real_models import tiny_llama, tiny_resnet, tiny_t5

# -- the student's set of names -----------------------------------------------------------------


EXPECTED = N_("a set of tensor names")


def answer_names(answer: Remote, example: str) -> set[str]:
    """The student's names: a set (list, tuple) of strings, or a function that returns one; a name
    listed twice fails as it does in lesson 9. `example` shows the form with this model's names."""
    return names_from(prediction(answer, expected=EXPECTED, example=example, call=True), example)


def names_from(value: object, example: str = '{"shared.weight", "lm_head.weight"}') -> set[str]:
    """`value` as a set of names, or `Fail` saying what it is instead (a name given twice too)."""
    return set(names_in(value, expected=EXPECTED, example=example))


@dataclass(frozen=True)
class Why:
    """Why a name belongs in the answer or not: one (message, hint) per kind of mistake, templates
    (marked with `N_`) filled with the name and, as a third item, any other values they need."""

    missing: Callable[[str], tuple]
    extra: Callable[[str], tuple]


def compare_names(given: set[str], truth: set[str], known: set[str], why: Why, model: str | Msg) -> None:
    """Fail at the first name that is unknown, then extra, then missing (each in sorted order);
    `model` names the model in messages (marked with `N_`)."""
    for name in sorted(given - known):
        raise Fail(
            "{model} has no tensor named {name!r}.",
            "Copy the names from inventory(model) or model.state_dict(): a name is the module path, "
            "a dot, and the attribute.",
            model=as_msg(model),
            name=name,
        )
    for name in sorted(given - truth):
        message, hint, *values = why.extra(name)
        raise Fail(message, hint, name=name, **(values[0] if values else {}))
    for name in sorted(truth - given):
        message, hint, *values = why.missing(name)
        raise Fail(message, hint, name=name, **(values[0] if values else {}))


def _known(model: nn.Module) -> set[str]:
    names = {name for row in inventory(model) for name in row.names}
    return names | set(model.state_dict())


# -- 10.1 T5's shared embedding --------------------------------------------------------------


def tied_names(model: nn.Module) -> set[str]:
    """Every name PyTorch gives the tensor that `shared.weight` holds."""
    shared = model.shared.weight
    return {name for name, param in model.named_parameters(remove_duplicate=False) if param is shared}


def _why_tied(model: nn.Module) -> Why:
    shapes = {name: tuple(param.shape) for name, param in model.named_parameters(remove_duplicate=False)}

    def missing(name: str) -> tuple:
        if name == "shared.weight":
            return (
                N_("Your set misses {name} itself: it is the tensor's first name."),
                N_("Include every name the tensor has, shared.weight too."),
            )
        if name == "lm_head.weight":
            return (
                N_(
                    "Your set misses {name}: T5's config ties the output head to the shared embedding "
                    "(tie_word_embeddings=True), as GPT-2 does."
                ),
                N_(
                    "Read the row of shared.weight in inventory(model): its 'also' line names every other "
                    "name (named_parameters() gives a shared tensor once, under its first name; "
                    "named_parameters(remove_duplicate=False) and state_dict() give every name)."
                ),
            )
        return (
            N_(
                "Your set misses {name}: T5's encoder and decoder both embed their tokens with the shared "
                "matrix."
            ),
            N_(
                "Read the row of shared.weight in inventory(model): its 'also' line names every other name "
                "(named_parameters() gives a shared tensor once, under its first name; "
                "named_parameters(remove_duplicate=False) and state_dict() give every name)."
            ),
        )

    def extra(name: str) -> tuple:
        return (
            N_("{name} is a tensor of its own (shape {shape}): no other name holds it."),
            N_("Only the names on one row share a tensor: the row's name and its 'also' line."),
            {"shape": shapes.get(name, "?")},
        )

    return Why(missing, extra)


@exercise(
    "10.1",
    "Name T5's shared embedding",
    passed="shared.weight, both embed_tokens and lm_head.weight are one tensor: saved under four names, "
    "trained once.",
)
def t5_tied(answer: Remote) -> None:
    given = answer_names(answer, '{"shared.weight", "lm_head.weight"}')
    model = tiny_t5()
    compare_names(given, tied_names(model), _known(model), _why_tied(model), code("T5"))


# -- 10.2 what Llama leaves out of state_dict() ---------------------------------------------------


def not_saved(model: nn.Module) -> set[str]:
    """The tensors `.to()` moves (every buffer) that `state_dict()` leaves out."""
    saved = set(model.state_dict())
    return {name for name, _ in model.named_buffers(remove_duplicate=False) if name not in saved}


def _why_not_saved(model: nn.Module) -> Why:
    kinds = {name: row.kind for row in inventory(model) for name in row.names}

    def missing(name: str) -> tuple:
        return (
            N_(
                "Your set misses {name}: a non-persistent buffer, moved by .to() and left out of "
                "state_dict()."
            ),
            N_("inventory(model, kind='non-persistent buffer') lists every one of them."),
        )

    def extra(name: str) -> tuple:
        if kinds.get(name) == PARAMETER:
            return (
                N_("{name} is a parameter: state_dict() saves every parameter."),
                N_(
                    "Look for the rows whose kind is non-persistent buffer: only they move without being "
                    "saved."
                ),
            )
        if kinds.get(name) == BUFFER:
            return (
                N_("{name} is a persistent buffer: state_dict() saves it."),
                N_("Keep the non-persistent buffers only."),
            )
        return (N_("{name} is not a buffer that .to() moves."), N_("Keep the non-persistent buffers only."))

    return Why(missing, extra)


@exercise(
    "10.2",
    "What Llama does not save",
    passed="inv_freq and original_inv_freq are non-persistent buffers: moved by .to(), rebuilt by __init__.",
)
def llama_not_saved(answer: Remote) -> None:
    given = answer_names(answer, '{"model.norm.weight", "lm_head.weight"}')
    model = tiny_llama()
    compare_names(given, not_saved(model), _known(model), _why_not_saved(model), N_("The Llama model"))


# -- 10.3 what one forward pass changes ---------------------------------------------------------


def changed_by_forward(model: nn.Module, batch: torch.Tensor) -> set[str]:
    """The `state_dict()` entries one forward pass in training mode changes (no optimizer at all)."""
    model.train()
    before = {name: value.clone() for name, value in model.state_dict().items()}
    with torch.no_grad():
        model(batch)
    return {name for name, value in model.state_dict().items() if not torch.equal(value, before[name])}


def _why_changed(model: nn.Module) -> Why:
    kinds = {name: row.kind for row in inventory(model) for name in row.names}

    def missing(name: str) -> tuple:
        if name.endswith("num_batches_tracked"):
            return (
                N_(
                    "Your set misses {name}: it counts the batches, and each forward pass in training mode "
                    "adds 1."
                ),
                N_("Every BatchNorm layer has running_mean, running_var and num_batches_tracked."),
            )
        return (
            N_(
                "Your set misses {name}: BatchNorm updates its running statistics in every forward pass in "
                "training mode."
            ),
            N_("inventory(model, kind='buffer') lists the running statistics of every BatchNorm layer."),
        )

    def extra(name: str) -> tuple:
        if kinds.get(name) == PARAMETER:
            return (
                N_(
                    "{name} is a parameter: a forward pass leaves it alone; only optimizer.step() changes it."
                ),
                N_("There is no optimizer here: keep the tensors the forward pass itself writes."),
            )
        return (
            N_("The forward pass does not change {name}."),
            N_("Keep BatchNorm's running statistics only."),
        )

    return Why(missing, extra)


@exercise(
    "10.3",
    "What a forward pass changes",
    passed="One forward pass in training mode updates every BatchNorm's running statistics and count.",
)
def resnet_forward(answer: Remote) -> None:
    given = answer_names(answer, '{"resnet.embedder.embedder.convolution.weight", "classifier.1.bias"}')
    model = tiny_resnet()
    batch = Draw().randn(2, 3, 16, 16)
    truth = changed_by_forward(tiny_resnet(), batch)
    compare_names(given, truth, _known(model), _why_changed(model), N_("The ResNet"))


# -- 10.4 register the blocks -------------------------------------------------------------------

LESSON_SIZE = (8, 3)  # the width and depth the lesson shows: never the only ones checked


def tower_keys(depth: int) -> list[str]:
    """The state_dict keys of a Tower whose blocks are registered."""
    keys = []
    for i in range(depth):
        keys += [f"blocks.{i}.0.weight", f"blocks.{i}.0.bias"]
        keys += [f"blocks.{i}.1.{name}" for name in ("weight", "bias", "running_mean", "running_var")]
        keys.append(f"blocks.{i}.1.num_batches_tracked")
    return [*keys, "head.weight", "head.bias"]


def tower_eval(x: torch.Tensor, state: dict, depth: int) -> torch.Tensor:
    """What a Tower computes in eval mode, from its state: blocks of linear, batch norm, relu; then head."""
    for i in range(depth):
        p = f"blocks.{i}."
        x = F.linear(x, state[p + "0.weight"], state[p + "0.bias"])
        x = F.batch_norm(
            x,
            state[p + "1.running_mean"],
            state[p + "1.running_var"],
            state[p + "1.weight"],
            state[p + "1.bias"],
        )
        x = torch.relu(x)
    return F.linear(x, state["head.weight"], state["head.bias"])


def tower_train(x: torch.Tensor, state: dict, depth: int) -> torch.Tensor:
    """What a Tower computes in training mode from its state before the call: batch statistics."""
    for i in range(depth):
        p = f"blocks.{i}."
        x = F.linear(x, state[p + "0.weight"], state[p + "0.bias"])
        x = F.batch_norm(x, None, None, state[p + "1.weight"], state[p + "1.bias"], training=True)
        x = torch.relu(x)
    return F.linear(x, state["head.weight"], state["head.bias"])


def _expect_float32(state: dict) -> None:
    """Every floating-point tensor float32, as nn.Linear and nn.BatchNorm1d make them."""
    for name, value in state.items():
        if value.is_floating_point() and value.dtype != torch.float32:
            raise Fail(
                "{name} is {dtype}, but a model's tensors are torch.float32 until .double() converts them.",
                "Build the model with the default dtype, float32: change no dtype in __init__ "
                "(torch.set_default_dtype included).",
                name=name,
                dtype=str(value.dtype),
            )


def _expect_registered(model: Remote) -> None:
    hidden = [row for row in rows(model).values() if row.get("unregistered_in")]
    if hidden:
        raise Fail(
            "{count} tensors ({first}, ...) belong to modules kept in a plain list or dict: PyTorch never "
            "registers them, so they are not saved, not moved and not trained.",
            "Keep the blocks in an nn.ModuleList: self.blocks = nn.ModuleList([...]).",
            count=len(hidden),
            first=hidden[0]["name"],
        )


def _expect_own_blocks(model: Remote, depth: int) -> None:
    """Each block its own tensors: `[block] * depth` lists one block `depth` times."""
    for row in rows(model).values():
        names = [name for name in (row["name"], *row.get("aliases", ())) if name.startswith("blocks.")]
        if len(names) > 1:
            raise Fail(
                "{first} and {second} are one tensor: the tower holds the same block more than once, so "
                "its {depth} blocks are one block applied {depth} times.",
                "Build a new block for each place: nn.ModuleList([make_block() for _ in range(depth)]), "
                "not [block] * depth.",
                first=names[0],
                second=names[1],
                depth=depth,
            )


def _expect_keys(state: dict, width: int, depth: int) -> None:
    blocks = {key.split(".")[1] for key in state if key.startswith("blocks.")}
    if not blocks:
        raise Fail(
            "state_dict() has no key that starts with blocks.: the blocks are not registered as blocks.",
            "Keep the name blocks: self.blocks = nn.ModuleList([...]).",
        )
    first = state.get("blocks.0.0.weight")
    if first is None and "0" in blocks and all(name.isdigit() for name in blocks):
        inner = sorted({key.split(".")[2] for key in state if key.startswith("blocks.0.")})
        raise Fail(
            "The blocks are registered at the positions 0, 1, ..., but inside blocks.0 the layers are named "
            "{names}, not 0, 1, 2: the blocks are not the given ones.",
            "Keep the blocks themselves: nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), "
            "nn.ReLU()), with BatchNorm's default settings; change only how they are kept.",
            names=", ".join(inner[:3]),
        )
    if first is None:
        raise Fail(
            "state_dict() has no blocks.0.0.weight: the blocks are registered under the names {names}, not "
            "under the positions 0, 1, ... of a list.",
            "Keep the blocks in an nn.ModuleList: self.blocks = nn.ModuleList([...]) (an nn.ModuleDict "
            "names them by its keys, and iterating over it gives the keys, not the blocks).",
            names=", ".join(sorted(blocks)[:3]),
        )
    shown = first.shape[-1]
    if len(blocks) != depth or shown != width:
        raise Fail(
            "Tower({width}, {depth}) has {count} blocks of width {shown}.",
            "Build the tower from the arguments: depth blocks, each of the given width.",
            width=width,
            depth=depth,
            count=len(blocks),
            shown=shown,
        )
    missing = [key for key in tower_keys(depth) if key not in state]
    if missing:
        raise Fail(
            "For Tower({width}, {depth}), state_dict() has no {missing}.",
            "Keep one nn.Sequential(nn.Linear, nn.BatchNorm1d, nn.ReLU) per block, in an nn.ModuleList.",
            width=width,
            depth=depth,
            missing=", ".join(missing[:3]),
        )


@exercise(
    "10.4",
    "Register the blocks",
    passed="The blocks are registered: saved, reloaded, trained by the optimizer and moved with the model.",
)
def tower(answer: Remote) -> None:
    expect_module_class(answer, "Tower")
    draw = Draw()
    before = answer.session.state()
    width = draw.integer(3, 9, avoid=(LESSON_SIZE[0],))
    depth = draw.integer(2, 5, avoid=(LESSON_SIZE[1],))
    x = draw.randn(draw.integer(4, 9), width)
    model = build(answer, width, depth, seed=draw.seed())
    _expect_registered(model)
    _expect_keys(state_dict(model), width, depth)
    _expect_own_blocks(model, depth)
    _expect_float32(state_dict(model))
    expect_plain_forward(answer, x, args=(width, depth), fresh=False)
    initial = state_dict(model)
    out = forward(model, x, what=N_("forward in training mode"))
    state = state_dict(model)
    if torch.equal(state["blocks.0.1.running_mean"], initial["blocks.0.1.running_mean"]) and (
        model.attr_or_none("blocks.0.1.training") is False
    ):
        raise Fail(
            "blocks.0.1 is in eval mode in a tower in training mode: a forward pass normalizes with its "
            "running statistics and leaves blocks.0.1.running_mean as it was.",
            "Leave the blocks in training mode (every module starts in it): no .eval() in __init__; "
            "model.train() and model.eval() switch the whole tower.",
        )
    if torch.equal(state["blocks.0.1.running_mean"], initial["blocks.0.1.running_mean"]):
        raise Fail(
            "A forward pass in training mode left blocks.0.1.running_mean as it was: forward does not "
            "run the blocks' BatchNorm layers.",
            "Keep the given forward: for block in self.blocks: x = block(x), then self.head(x).",
        )
    with student(code("model.eval()")):
        model.method("eval")
    if not close(forward(model, x), tower_eval(x, state, depth)):
        raise Fail(
            "In eval mode, forward gives other values than the blocks (linear, batch norm, relu) then head.",
            "Keep the given forward: for block in self.blocks: x = block(x), then self.head(x).",
        )
    batch_mean = F.linear(x, initial["blocks.0.0.weight"], initial["blocks.0.0.bias"]).mean(0)
    moved = 0.9 * initial["blocks.0.1.running_mean"] + 0.1 * batch_mean
    if not close(state["blocks.0.1.running_mean"], moved):
        raise Fail(
            "A forward pass in training mode moved blocks.0.1.running_mean by another amount than "
            "nn.BatchNorm1d(width) does (momentum 0.1): the blocks are not the given ones.",
            "Keep the blocks themselves: nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), "
            "nn.ReLU()), with BatchNorm's default settings; change only how they are kept.",
        )
    if not close(out, tower_train(x, initial, depth)):
        raise Fail(
            "In training mode, forward gives other values than the blocks (linear, batch norm, relu) then "
            "head.",
            "Keep the blocks themselves: nn.Sequential(nn.Linear(width, width), nn.BatchNorm1d(width), "
            "nn.ReLU()), with BatchNorm's default settings; change only how they are kept.",
        )
    fresh = save_and_reload(model, lambda: build(answer, width, depth, seed=draw.seed()))
    with student(code("model.eval()")):
        fresh.method("eval")
    if not close(forward(fresh, x), forward(model, x)):
        raise Fail("A model reloaded from the checkpoint computes something else: the blocks were not saved.")
    with student(code("model.train()")):
        model.method("train")
    sgd_step(model, x)
    after = state_dict(model)
    weights = [*(f"blocks.{i}.0.weight" for i in range(depth)), "head.weight", "head.bias"]
    frozen = [name for name in weights if torch.equal(after[name], state[name])]
    off = [
        row["name"] for row in rows(model).values() if row["kind"] == PARAMETER and not row["requires_grad"]
    ]
    if frozen and off:
        raise Fail(
            "optimizer.step() did not change {name}: {off} do not require grad, so backward() gives them no "
            "gradient and the step skips them.",
            (
                N_(
                    "Leave the blocks' parameters trainable: requires_grad stays True unless the exercise "
                    "asks to freeze something."
                )
                if frozen[0].startswith("blocks.")
                else N_(
                    "Leave the head trainable too: the exercise changes how the blocks are kept, and "
                    "nothing else."
                )
            ),
            name=frozen[0],
            off=", ".join(off[:3]),
        )
    if frozen:
        raise Fail(
            "optimizer.step() did not change {name}: the optimizer only gets model.parameters().",
            "Register the blocks (nn.ModuleList) so that parameters() yields their weights.",
            name=frozen[0],
        )
    names = ("blocks.0.0.weight", "blocks.0.1.running_mean", "head.weight")
    expect_runs_on_device(answer, draw.randn(4, LESSON_SIZE[0]), names)
    leaves_global_state(before, answer.session.state(), N_("Building and running your model"))
