"""cuda_rule reads the installed torch's native_functions.yaml as a YAML parser would."""

import pytest
import torch

from buflesson import cuda_rule


def _keys(entry, by_name):
    keys = set()
    for key in entry.get("dispatch") or {}:
        keys |= {part.strip() for part in key.split(",")}
    if "ufunc_inner_loop" in entry:
        keys |= {"CPU", "CUDA"}
    if entry.get("structured_delegate") in by_name:
        keys |= _keys(by_name[entry["structured_delegate"]], by_name)
    return keys


def test_the_line_reader_agrees_with_a_yaml_parser_on_every_operator():
    yaml = pytest.importorskip("yaml")
    path = cuda_rule.native_functions_path()
    assert path is not None, "torch ships torchgen/packaged/ATen/native/native_functions.yaml"
    entries = yaml.load(
        path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    )
    by_name = {entry["func"].split("(", 1)[0]: entry for entry in entries}
    table = cuda_rule.native_functions()
    assert set(table) == set(by_name)
    for name, entry in by_name.items():
        keys = _keys(entry, by_name)
        expected = cuda_rule.OpInfo(
            no_check=entry.get("device_check") == "NoCheck",
            cuda="CUDA" in keys,
            composite=bool(keys & {"CompositeExplicitAutograd", "CompositeExplicitAutogradNonFunctional"}),
        )
        assert table[name] == expected, name


@pytest.mark.parametrize(
    "name, no_check, cuda",
    [
        ("add.Tensor", True, True),  # TensorIterator, CUDA kernel from a ufunc loop through add.out
        ("mm", False, True),
        ("addmm", False, True),
        ("cat", False, True),
        ("index_select", False, True),
        ("index.Tensor", True, True),
        ("where.self", True, True),
        ("embedding", False, False),
        ("copy_", True, False),
    ],
)
def test_the_operators_of_the_lessons_are_classified_as_their_source_says(name, no_check, cuda):
    info = cuda_rule.native_functions()[name]
    assert (info.no_check, info.cuda) == (no_check, cuda)


def test_an_operator_name_matches_its_yaml_entry():
    assert cuda_rule.yaml_name(torch.ops.aten.add.Tensor) == "add.Tensor"
    assert cuda_rule.yaml_name(torch.ops.aten.mm.default) == "mm"


def test_without_the_yaml_the_known_generated_checks_still_hold(monkeypatch):
    monkeypatch.setattr(cuda_rule, "native_functions", lambda: {})
    meta, cpu = torch.ones(2, 3, device="meta"), torch.ones(3, 3)
    verdict = cuda_rule.judge(torch.ops.aten.mm.default, (meta, cpu), {})
    assert verdict.error and "got mat2 is on cpu" in verdict.error
    scalar = cuda_rule.judge(torch.ops.aten.add.Tensor, (meta, torch.tensor(1.0)), {})
    assert scalar.error is None
