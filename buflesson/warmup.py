"""Warm, in the background, the parts of torch a check needs, so the first check answers at once.

torch loads much of itself on first use: the first operation on the `meta` device imports
`torch._dynamo` and sympy (about 1 s), so does building the first optimizer, and the first check
also loads the exercise registry. The lessons' kernel (`buflesson.kernel`) starts `start()` when it
starts, so that work is done while the student reads. It uses no random numbers and changes no
global setting (random state, default dtype, grad mode), so seeded results stay the same.

Not started on `import buflesson`: the grader forks worker processes from a parent that imported
buflesson, and a thread running during a fork can leave a lock held in the child.
"""

from __future__ import annotations

import io
import os
import tempfile
import threading
import time

DISABLE = "BUFLESSON_WARMUP"  # set to 0 to turn the warm-up off (the benchmark's baseline)
_started: threading.Thread | None = None
_lock = threading.Lock()
seconds: float | None = None  # how long the warm-up took, once it has finished


def warm() -> None:
    """Use once what a check uses: meta tensors, .to()/.double(), backward, an optimizer step,
    torch.save/load (memory and file), the GPU stand-in's rule, and the exercise registry."""
    import torch
    from torch import nn

    # Nothing here draws random numbers: zeros and ones, and BatchNorm starts from ones and zeros.
    module = nn.Module()
    module.weight = nn.Parameter(torch.zeros(2, 2))
    module.register_buffer("mean", torch.zeros(2))
    module.register_buffer("window", torch.ones(2), persistent=False)
    with torch.enable_grad():
        loss = ((torch.ones(3, 2) @ module.weight.T - module.mean) ** 2).sum()
        loss.backward()
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)  # imports torch._dynamo
    optimizer.step()
    optimizer.zero_grad()
    saved = io.BytesIO()
    torch.save(module.state_dict(), saved)
    saved.seek(0)
    module.load_state_dict(torch.load(saved, weights_only=True))
    module.double()
    on_meta = module.to("meta")
    meta = torch.ones(3, 2, device="meta", dtype=torch.float64)
    _ = meta @ on_meta.weight.T + on_meta.mean
    try:
        _ = meta + torch.ones(3, 2, dtype=torch.float64)  # the device-mismatch error the lessons show
    except RuntimeError:
        pass
    norm = nn.BatchNorm1d(2)  # ones and zeros: no random numbers
    norm(torch.ones(4, 2))
    norm.to("meta")
    with tempfile.TemporaryDirectory(prefix="buflesson-") as folder:  # the checks' files
        path = os.path.join(folder, "warm.pt")
        torch.save(module.state_dict(), path)
        torch.load(path, weights_only=True)
    _warm_device_rule(nn, torch)

    from buflesson.checks import exercises

    exercises()


def _warm_device_rule(nn, torch) -> None:
    """Run a few operations under the GPU stand-in's rule, as the checks do (this thread only)."""
    try:
        from buflesson.standin import device_rule
    except ImportError:  # a version without the stand-in
        return
    with device_rule() as device:
        layer = nn.Module()
        layer.weight = nn.Parameter(torch.zeros(2, 2))
        layer.to(device)
        x = torch.ones(3, 2, device=device)
        _ = (x @ layer.weight.T).tril()
        try:
            _ = x + torch.ones(3, 2)
        except RuntimeError:
            pass


def _run() -> None:
    global seconds
    began = time.perf_counter()
    try:
        warm()
    except Exception:  # the warm-up is an optimization: a failure here must never reach the student
        pass
    seconds = time.perf_counter() - began


def start() -> threading.Thread | None:
    """Start `warm()` in a daemon thread, once per process; None when turned off by BUFLESSON_WARMUP=0."""
    global _started
    if os.environ.get(DISABLE, "1") == "0":
        return None
    with _lock:
        if _started is None:
            _started = threading.Thread(target=_run, name="buflesson-warmup", daemon=True)
            _started.start()
        return _started


def install(ip) -> None:
    """The kernel extension's hook (buflesson.kernel): start the warm-up as a lesson kernel starts.

    Only in a Jupyter kernel (a shell with a `kernel`): a plain IPython shell loading the extension,
    such as a test's, may go on to fork, and the warm-up is for students' kernels.
    """
    if getattr(ip, "kernel", None) is not None:
        start()
