"""The warm-up loads what a check needs and changes nothing a lesson can see."""

import random
import subprocess
import sys

import numpy as np
import torch

from buflesson import warmup


def test_warm_up_draws_no_random_number_and_changes_no_setting():
    torch.manual_seed(7)
    random.seed(7)
    np.random.seed(7)
    before = (
        torch.random.get_rng_state(),
        random.getstate(),
        np.random.get_state()[1].copy(),
        torch.get_default_dtype(),
        torch.is_grad_enabled(),
        torch.get_num_threads(),
    )
    with torch.no_grad():
        warmup.warm()
        assert not torch.is_grad_enabled()
    after = (
        torch.random.get_rng_state(),
        random.getstate(),
        np.random.get_state()[1].copy(),
        torch.get_default_dtype(),
        torch.is_grad_enabled(),
        torch.get_num_threads(),
    )
    assert torch.equal(before[0], after[0]) and before[1] == after[1] and (before[2] == after[2]).all()
    assert before[3:] == after[3:]
    assert "torch._dynamo" in sys.modules  # what the first meta operation or optimizer would import


def _run(code: str, env_value: str | None) -> str:
    env = {"PATH": "", "BUFLESSON_WARMUP": env_value} if env_value else {"PATH": ""}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout.strip()


def test_start_runs_once_in_the_background_and_can_be_turned_off():
    code = (
        "from buflesson import warmup\n"
        "first = warmup.start(); second = warmup.start()\n"
        "print(first is second, first is not None and first.daemon)\n"
        "first and first.join()\n"
        "import sys; print('torch._dynamo' in sys.modules)"
    )
    assert _run(code, None).split() == ["True", "True", "True"]
    assert _run(code, "0").split() == ["True", "False", "False"]


def test_the_extension_starts_it_only_in_a_jupyter_kernel():
    code = (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "from buflesson import kernel, warmup\n"
        "kernel.load_ipython_extension(InteractiveShell.instance())\n"
        "print(warmup._started is None)"
    )
    assert _run(code, None) == "True"
