"""running_stats: seeded batches, the BatchNorm running_mean trace, and its plot."""

import torch
from matplotlib.figure import Figure

from buflesson import plot_running_mean, running_mean_trace, seeded_batches
from buflesson.running_stats import TRUE_MEAN


def test_batches_are_seeded_and_shaped():
    batches = seeded_batches(steps=5, batch_size=4, features=2, seed=3)
    assert batches.shape == (5, 4, 2)
    assert torch.equal(batches, seeded_batches(steps=5, batch_size=4, features=2, seed=3))
    assert not torch.equal(batches, seeded_batches(steps=5, batch_size=4, features=2, seed=4))


def test_batches_have_the_stated_mean():
    batches = seeded_batches(steps=200, batch_size=50)
    assert abs(batches.mean().item() - TRUE_MEAN) < 0.05


def test_batches_leave_the_global_random_state_alone():
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    seeded_batches()
    assert torch.equal(torch.rand(1), expected)


def test_trace_follows_the_momentum_formula():
    batches = seeded_batches(steps=6)
    running, batch_means = running_mean_trace(batches, momentum=0.3)
    assert running.shape == (7,) and batch_means.shape == (6,)
    expected = [0.0]
    for mean in batch_means.tolist():
        expected.append(0.7 * expected[-1] + 0.3 * mean)
    assert torch.allclose(running, torch.tensor(expected), atol=1e-6)


def test_trace_with_momentum_none_is_the_cumulative_average():
    batches = seeded_batches(steps=6)
    running, batch_means = running_mean_trace(batches, momentum=None)
    assert torch.allclose(running[-1], batch_means.mean(), atol=1e-6)


def test_plot_has_one_labelled_panel_per_momentum_and_is_repeatable():
    figure = plot_running_mean(momenta=(0.1, 0.5))
    assert isinstance(figure, Figure)
    assert repr(figure) == "<Figure size 1000x400 with 2 Axes>"
    axes = figure.get_axes()
    assert [ax.get_title() for ax in axes] == ["momentum = 0.1", "momentum = 0.5"]
    assert all(ax.get_xlabel() for ax in axes) and axes[0].get_ylabel()
    labels = [text.get_text() for text in axes[0].get_legend().get_texts()]
    assert labels == ["batch mean", "running_mean", f"mean the batches are drawn from ({TRUE_MEAN:g})"]
    again = plot_running_mean(momenta=(0.1, 0.5))
    for first, second in zip(axes, again.get_axes(), strict=True):
        for line, other in zip(first.get_lines(), second.get_lines(), strict=True):
            assert list(line.get_ydata()) == list(other.get_ydata())


def test_larger_momentum_tracks_the_last_batches_more_closely():
    batches = seeded_batches()
    slow, means = running_mean_trace(batches, 0.1)
    fast, _ = running_mean_trace(batches, 0.5)
    assert (fast[1:] - means).abs().mean() < (slow[1:] - means).abs().mean()
