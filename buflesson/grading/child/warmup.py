"""What the zygote does before it forks anything: import what notebooks use, run PyTorch's lazy
set-up once on a small module of buflesson's own (never a notebook's code, never an accelerator),
and make the IPython shell every child inherits."""

from __future__ import annotations

import os


def preload() -> None:
    """What every notebook needs, imported before the judge says what else its lessons import."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import IPython.core.interactiveshell  # noqa: F401
    import matplotlib.pyplot  # noqa: F401
    import torch

    import buflesson  # noqa: F401
    import buflesson.workbench  # noqa: F401

    torch.set_num_threads(1)  # no thread pool in a process that forks


def warm_up(imports: list[str]):
    """Import what notebooks use and run PyTorch's lazy set-up once, on a module of our own (never
    a notebook's code); the global state is put back. Returns the IPython shell children use."""
    import contextlib
    import importlib
    import io
    import random

    os.environ.setdefault("MPLBACKEND", "Agg")
    import torch

    torch.set_num_threads(1)  # no thread pool in a process that forks
    for name in ["buflesson", "buflesson.workbench", "matplotlib.pyplot", *imports]:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a lesson's optional import
            pass
    saved = torch.get_rng_state(), random.getstate(), torch.get_default_dtype(), torch.is_grad_enabled()
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        try:
            _exercise_torch()
        except Exception:  # noqa: BLE001 - a warm-up that fails only costs time later
            pass
        shell = _shell()
        shell.run_cell("_warm = 1 + 1", silent=True)
        shell.user_ns.pop("_warm", None)
    torch.set_rng_state(saved[0])
    random.setstate(saved[1])
    torch.set_default_dtype(saved[2])
    torch.set_grad_enabled(saved[3])
    return shell


def _exercise_torch() -> None:
    """What a check asks of an answer, done once on a small module of buflesson's own. Never an
    accelerator: a CUDA context made here would be unusable in every forked child."""
    import io

    import torch
    from torch import nn

    from buflesson import probes
    from buflesson.handles import LocalLink, Remote, Session
    from buflesson.wire import Ref
    from buflesson.workbench import Workbench

    class Demo(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(3, 2)
            self.register_buffer("offset", torch.zeros(2))
            self.register_buffer("scratch", torch.ones(2), persistent=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.linear(x) + self.offset

    bench = Workbench(Demo)
    try:
        answer = Remote(Session(LocalLink(bench)), Ref(1))
        x = torch.randn(4, 3)
        model = probes.build(answer, seed=1)
        probes.forward(model, x)
        probes.rows(model)
        probes.state_dict(model)
        probes.save_and_reload(model, lambda: probes.build(answer))
        probes.sgd_step(model, x)
        probes.forward(probes.move(probes.build(answer), torch.device("meta")), x.to("meta"))
        probes.expect_follows_double(answer, x, ("offset",))
    finally:
        bench.close()
    model = Demo()
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(2, 3)).sum().backward()
    optimizer.step()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    model.load_state_dict(torch.load(buffer, weights_only=True))
    model.to(torch.float64).to("meta")
    import matplotlib.pyplot as plt

    figure = plt.figure()
    plt.plot([0, 1], [1, 0])
    figure.savefig(io.BytesIO(), format="png")
    plt.close("all")


def _shell():
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    class GraderShell(InteractiveShell):
        """IPython without history, GUI or traceback printing (nothing is shown to anyone)."""

        def enable_gui(self, gui=None):
            return None

        def enable_matplotlib(self, gui=None):
            return None, None

        def showtraceback(self, *args, **kwargs):
            return None

        def showsyntaxerror(self, *args, **kwargs):
            return None

        showindentationerror = showsyntaxerror

    config = Config()
    config.HistoryManager.enabled = False
    return GraderShell.instance(config=config)
