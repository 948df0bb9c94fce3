"""Workbench and handles: the check's side gets plain data and Remotes, never the student's objects."""

import pytest
import torch
from torch import nn

from buflesson.handles import LocalLink, Refused, Remote, Session, StudentError
from buflesson.wire import Ref
from buflesson.workbench import Workbench, global_state


def session_for(answer):
    bench = Workbench(answer)
    return bench, Session(LocalLink(bench))


class Model(nn.Module):
    def __init__(self, size=3):
        super().__init__()
        self.linear = nn.Linear(size, 2)
        self.register_buffer("offset", torch.ones(2))

    def forward(self, x):
        return self.linear(x) + self.offset


def test_describe_tells_kinds_without_running_student_code():
    kinds = {}
    for name, answer in {
        "placeholder": ...,
        "none": None,
        "class": Model,
        "module": Model(),
        "function": len,
        "data": [1, 2],
        "tensor": torch.ones(1),
    }.items():
        _, session = session_for(answer)
        kinds[name] = Remote(session, Ref(1)).kind
    assert kinds == {k: k for k in kinds}
    _, session = session_for(Model)
    info = Remote(session, Ref(1)).info
    assert info["module_class"] and info["name"] == "Model" and "Module" in info["bases"]


def test_a_built_model_stays_on_the_students_side_and_answers_with_data():
    bench, session = session_for(Model)
    cls = Remote(session, Ref(1))
    model = cls.call(4, seed=0, keep=True)
    assert isinstance(model, Remote) and model.kind == "module"
    out = model(torch.zeros(5, 4))
    assert isinstance(out, torch.Tensor) and out.shape == (5, 2)
    state = model.method("state_dict")
    assert list(state) == ["offset", "linear.weight", "linear.bias"]
    # The data is a copy: changing it here does not change the student's model.
    state["offset"].add_(5)
    assert torch.equal(model.attr("offset"), torch.ones(2))
    rows = {row["name"]: row["kind"] for row in model.inventory()}
    assert rows["offset"] == "buffer"


def test_seeded_calls_leave_the_random_state_alone():
    _, session = session_for(Model)
    cls = Remote(session, Ref(1))
    before = global_state()
    first = cls.call(seed=5, keep=True).attr("linear.weight")
    second = cls.call(seed=5, keep=True).attr("linear.weight")
    assert torch.equal(first, second)
    assert global_state() == before


def test_the_students_errors_come_back_as_student_error():
    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            raise ValueError("boom")

    _, session = session_for(Broken)
    with pytest.raises(StudentError) as info:
        Remote(session, Ref(1)).call(keep=True)
    assert info.value.type_name == "ValueError" and info.value.message == "boom"
    assert not info.value.not_implemented

    class NotYet(nn.Module):
        def __init__(self):
            raise NotImplementedError

    _, session = session_for(NotYet)
    with pytest.raises(StudentError) as info:
        Remote(session, Ref(1))()
    assert info.value.not_implemented


def test_a_keyboard_interrupt_is_not_swallowed():
    def interrupted():
        raise KeyboardInterrupt

    _, session = session_for(interrupted)
    with pytest.raises(KeyboardInterrupt):
        Remote(session, Ref(1))()


def test_lib_names_torch_or_buflesson_only():
    _, session = session_for(None)
    assert isinstance(session.lib("torch:save"), Remote)
    with pytest.raises(Refused):
        session.lib("os:system")
    with pytest.raises(Refused):
        session.lib("__main__:answer")


def test_non_plain_values_are_refused_and_unknown_refs_too():
    _, session = session_for(object())
    with pytest.raises(Refused):
        Remote(session, Ref(1)).value()
    with pytest.raises(Refused):
        Remote(session, Ref(99)).value()


def test_a_file_round_trip_on_the_students_side():
    bench, session = session_for(Model)
    model = Remote(session, Ref(1)).call(seed=1, keep=True)
    folder = session.folder()
    path = f"{folder}/m.pt"
    session.lib("torch:save")(model.call(method="state_dict", keep=True), path)
    loaded = session.lib("torch:load").call(path, weights_only=True, keep=True)
    fresh = Remote(session, Ref(1)).call(seed=2, keep=True)
    assert fresh.call(loaded, method="load_state_dict") == ([], [])
    assert torch.equal(fresh.attr("linear.weight"), model.attr("linear.weight"))
    bench.close()
    import os

    assert not os.path.exists(folder)


def test_global_state_sees_what_student_code_changes():
    before = global_state()
    torch.set_grad_enabled(False)
    try:
        assert global_state()["grad_enabled"] is False and before["grad_enabled"] is True
    finally:
        torch.set_grad_enabled(True)
