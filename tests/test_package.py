"""`import buflesson`: the public names, loaded on first use, and nothing heavy at import."""

import importlib
import subprocess
import sys

import pytest

import buflesson


def _modules_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_import_buflesson_loads_neither_torch_nor_matplotlib():
    loaded = _modules_after("import buflesson")
    assert "torch" not in loaded and "matplotlib" not in loaded


def test_a_lesson_import_loads_no_matplotlib_until_a_figure_is_drawn():
    loaded = _modules_after("from buflesson import check, inventory, plot_running_mean, state_map")
    assert "torch" in loaded and "matplotlib" not in loaded


@pytest.mark.parametrize("name", sorted(buflesson.__all__))
def test_every_public_name_is_the_object_its_module_defines(name):
    value = getattr(buflesson, name)
    module = importlib.import_module(value.__module__)
    assert getattr(module, name) is value
    assert name in dir(buflesson)


def test_a_public_function_keeps_its_name_when_its_module_is_imported():
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import buflesson.probes, buflesson.state_map\n"
            "from buflesson import audit, inventory, state_map\n"
            "print(all(callable(f) and not hasattr(f, '__path__') for f in (audit, inventory, state_map)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "True"


def test_star_import_gives_the_public_names_and_an_unknown_name_is_an_attribute_error():
    namespace: dict = {}
    exec("from buflesson import *", namespace)
    assert set(buflesson.__all__) <= set(namespace)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        buflesson.nope  # noqa: B018


def test_no_public_name_is_shadowed_by_a_subpackage():
    """`buflesson.exercises` is the subpackage of checks; no public name may share a subpackage's name
    unless the package keeps the public object (as it does for `inventory`, `audit`, `state_map`)."""
    import pkgutil

    subpackages = {info.name for info in pkgutil.iter_modules(buflesson.__path__) if info.ispkg}
    assert not subpackages & set(buflesson.__all__)
