"""Folding repeated blocks: names that differ only in numeric path parts become one line."""

from buflesson.grouping import fold, ranges, short_list, template


def test_template_finds_numeric_path_parts_only():
    assert template("h.11.attn.c_attn.weight") == ("h.\x00.attn.c_attn.weight", (11,))
    assert template("0.weight") == ("\x00.weight", (0,))
    assert template("layers[3].bias") == ("layers[\x00].bias", (3,))
    assert template("weight_ih_l0") == ("weight_ih_l0", ())
    assert template("conv2d.1x1.weight") == ("conv2d.1x1.weight", ())


def test_ranges_are_short():
    assert ranges([0, 1, 2, 3]) == "{0..3}"
    assert ranges([0, 1]) == "{0,1}"
    assert ranges([5, 0, 2]) == "{0,2,5}"
    assert ranges([0, 1, 2, 7, 8, 9, 11]) == "{0..2,7..9,11}"


def test_ranges_with_a_step_or_many_parts_stay_short():
    assert ranges(range(0, 300, 3)) == "{0..297..3}"
    assert ranges([0, 2, 4]) == "{0,2,4}"  # three numbers read as they are
    squares = [n * n for n in range(40)]
    assert ranges(squares) == "{0,1,4,9,16,25,…+34}"
    assert len(ranges(list(range(0, 2000, 7)) + [3])) < 30


def _names(groups):
    return [(group.name, len(group.items)) for group in groups]


def test_fold_keeps_order_and_folds_only_alike_items():
    names = [f"h.{i}.{part}" for i in range(3) for part in ("w", "b")] + ["head.w"]
    assert _names(fold(names, name=str, key=lambda n: 0)) == [
        ("h.{0..2}.w", 3),
        ("h.{0..2}.b", 3),
        ("head.w", 1),
    ]
    unlike = fold(names, name=str, key=lambda n: n.startswith("h.1"))
    assert _names(unlike) == [("h.{0,2}.w", 2), ("h.{0,2}.b", 2), ("h.1.w", 1), ("h.1.b", 1), ("head.w", 1)]


def test_a_full_grid_is_one_line_and_a_ragged_one_is_split_by_its_first_number():
    grid = [f"stages.{s}.blocks.{b}.w" for s in range(2) for b in range(3)]
    assert _names(fold(grid, name=str, key=lambda n: 0)) == [("stages.{0,1}.blocks.{0..2}.w", 6)]
    ragged = ["stages.0.blocks.0.w", "stages.0.blocks.1.w", "stages.1.blocks.0.w"]
    assert _names(fold(ragged, name=str, key=lambda n: 0)) == [
        ("stages.0.blocks.{0,1}.w", 2),
        ("stages.1.blocks.0.w", 1),
    ]


def test_none_as_key_never_folds():
    assert _names(fold(["a.0", "a.1"], name=str, key=lambda n: None)) == [("a.0", 1), ("a.1", 1)]


def test_short_list():
    names = [f"h.{i}.bias" for i in range(12)] + ["a", "b", "c", "d"]
    assert short_list(names, 2) == "h.{0..11}.bias, a (+3 more)"
    assert short_list(["x"], mark="`") == "`x`"
