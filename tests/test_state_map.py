"""state_map(): one row per tensor, grouped by kind, showing inventory's saved / moved / trained columns."""

import io

from matplotlib.figure import Figure
from torch import nn

from buflesson import everything_model, inventory, state_map
from buflesson.state_map import KIND_ORDER


def _cells(fig):
    """The yes/no texts of the figure, row by row (three per row)."""
    words = [t.get_text() for t in fig.axes[0].texts if t.get_text() in ("yes", "no")]
    return [words[i : i + 3] for i in range(0, len(words), 3)]


def test_one_row_per_tensor_grouped_by_kind():
    model = everything_model()
    fig = state_map(model)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    table = inventory(model)
    assert sorted(labels) == sorted(table.names())
    order = [KIND_ORDER.index(table[name].kind) for name in labels]
    assert order == sorted(order)
    assert labels[:2] == ["gain", "frozen_bias"] and labels[-3:] == ["window", "cache", "shift"]


def test_cells_show_what_inventory_says_is_saved_moved_and_trained():
    model = everything_model()
    fig = state_map(model)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    table = inventory(model)
    expected = [
        ["yes" if flag else "no" for flag in (row.in_state_dict, row.follows_to, row.stepped_by_optimizer)]
        for row in (table[name] for name in labels)
    ]
    assert _cells(fig) == expected
    kinds = [t.get_text() for t in fig.axes[0].texts if t.get_text() not in ("yes", "no", "kind")]
    assert kinds[1] == "frozen parameter" and kinds[-1] == "plain attribute"


def test_title_columns_and_legend():
    fig = state_map(everything_model())
    assert fig.get_suptitle() == "Every tensor of Everything: what is saved, moved and trained"
    columns = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert columns == ["saved\nin state_dict()", "moved\nby .to()", "trained\nby optimizer.step()"]
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    kinds = {row.kind for row in inventory(everything_model())}
    assert legend == [kind for kind in KIND_ORDER if kind in kinds] + ["no"]
    assert len(kinds) == 5
    assert state_map(nn.Linear(2, 2), title="Linear").get_suptitle() == "Linear"
    assert [t.get_text() for t in state_map(nn.Linear(2, 2)).legends[0].get_texts()] == ["parameter", "no"]


def test_the_drawing_is_deterministic():
    def pixels():
        buffer = io.BytesIO()
        state_map(everything_model()).savefig(buffer, format="rgba", dpi=50)
        return buffer.getvalue()

    assert pixels() == pixels()


def test_a_module_without_tensors():
    fig = state_map(nn.ReLU())
    assert "(no tensors)" in [t.get_text() for t in fig.axes[0].texts]
