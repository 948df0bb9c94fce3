"""BatchNorm's running statistics: seeded data, the running_mean trace, and its plot (lesson 5)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from buflesson.figures import caption, styled

if TYPE_CHECKING:  # matplotlib is imported by the plot itself: `import buflesson` stays light
    from matplotlib.figure import Figure

TRUE_MEAN = 2.0
TRUE_STD = 1.5


def seeded_batches(
    steps: int = 30,
    batch_size: int = 8,
    features: int = 1,
    mean: float = TRUE_MEAN,
    std: float = TRUE_STD,
    seed: int = 0,
) -> torch.Tensor:
    """`steps` batches drawn from a normal distribution with known `mean` and `std`.

    Shape (steps, batch_size, features); the same values on every run for the same `seed`.
    """
    generator = torch.Generator().manual_seed(seed)
    return mean + std * torch.randn(steps, batch_size, features, generator=generator)


def running_mean_trace(batches: torch.Tensor, momentum: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Feed `batches` one by one to a fresh `BatchNorm1d` in train mode; no optimizer anywhere.

    Returns `(running, batch_means)` for feature 0: `running[k]` is `running_mean` after k forward
    passes (`running[0]` is its starting value, 0), `batch_means[k]` the mean of batch k.
    """
    norm = nn.BatchNorm1d(batches.shape[-1], momentum=momentum)
    norm.train()
    running = [norm.running_mean[0].item()]
    with torch.no_grad():  # no_grad stops gradient tracking only: the running statistics still update
        for batch in batches:
            norm(batch)
            running.append(norm.running_mean[0].item())
    return torch.tensor(running), batches[:, :, 0].mean(dim=1)


def plot_running_mean(
    momenta: Sequence[float] = (0.1, 0.5), batches: torch.Tensor | None = None, true_mean: float = TRUE_MEAN
) -> Figure:
    """One panel per momentum: `running_mean` per step against the batch means and the mean of the
    normal distribution the batches are drawn from (not the mean of the values drawn).

    Uses `seeded_batches()` unless `batches` is given; the figure is the same on every run.
    """
    from matplotlib.figure import Figure

    if batches is None:
        batches = seeded_batches()
    steps = torch.arange(batches.shape[0] + 1)
    with styled():
        figure = Figure(figsize=(10, 4), dpi=100, layout="constrained")
        axes = figure.subplots(1, len(momenta), sharey=True, squeeze=False)[0]
        for ax, momentum in zip(axes, momenta, strict=True):
            running, batch_means = running_mean_trace(batches, momentum)
            ax.plot(steps[1:], batch_means, "o", color="0.55", markersize=4, label=caption("batch mean"))
            ax.plot(steps, running, "-", color="tab:blue", linewidth=2, label="running_mean")
            ax.axhline(
                true_mean,
                color="tab:red",
                linestyle="--",
                label=caption("mean the batches are drawn from ({mean})", mean=f"{true_mean:g}"),
            )
            ax.set_title(f"momentum = {momentum:g}")
            ax.set_xlabel(caption("step (forward passes in train() mode)"))
            ax.grid()
        axes[0].set_ylabel(caption("mean of feature 0"))
        axes[0].legend(loc="lower right")
        figure.suptitle(caption("BatchNorm1d.running_mean moves towards the data mean without any optimizer"))
    return figure
