"""Shared test set-up: what nbval must not collect as a lesson notebook, and torch's global state."""

import pytest
import torch

# Jupyter's checkpoint copies, and the grader's fixture course (its checks exist only in the grader).
collect_ignore_glob = ["**/.ipynb_checkpoints/*", "fixtures/*"]


@pytest.fixture(autouse=True)
def _torch_global_state():
    """A test whose student answer leaks global state (grad mode, default dtype) leaks it no further."""
    grad, dtype = torch.is_grad_enabled(), torch.get_default_dtype()
    yield
    torch.set_grad_enabled(grad)
    torch.set_default_dtype(dtype)
