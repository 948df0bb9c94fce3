"""Translated lessons: made from the English notebook and a catalog; stale or missing parts are found."""

import nbformat
import pytest

from buflesson.i18n import language, tr, using
from buflesson.translation import (
    LANGUAGE_CELL_ID,
    catalog_problems,
    source_hash,
    translatable_tokens,
    translate_code,
    translated_notebook,
)

CODE = """# the offset is a plain attribute
model = make()  # build it
print("offset saved:", model.offset)
print(f"{name}: {value}")
path = "lesson01.pt"
"""


def lesson():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Lesson 1\n\nRead this."),
        nbformat.v4.new_code_cell(CODE),
        nbformat.v4.new_markdown_cell("### Exercise 1.1 · Predict the keys"),
        nbformat.v4.new_code_cell("x = 1"),
    ]
    for number, cell in enumerate(nb.cells):
        cell.id = f"cell-{number:02d}"
    return nb


def catalog(nb):
    return {
        "cell-00": {"en": source_hash(nb.cells[0].source), "text": "# 第 1 课\n\n读这一段。"},
        "cell-01": {
            "en": source_hash(nb.cells[1].source),
            "code": {
                "# the offset is a plain attribute": "# offset 是普通属性",
                "# build it": "# 构建它",
                '"offset saved:"': '"保存的 offset："',
                'f"{name}: {value}"': 'f"{name}：{value}"',
            },
        },
        "cell-02": {"en": source_hash(nb.cells[2].source), "text": "### 练习 1.1"},
    }


def test_comments_and_printed_strings_must_be_translated_other_strings_may():
    required, optional = translatable_tokens(CODE)
    assert required == [
        "# the offset is a plain attribute",
        "# build it",
        '"offset saved:"',
        'f"{name}: {value}"',
    ]
    assert optional == ['"lesson01.pt"']


def test_markers_and_solution_lines_are_not_prose():
    required, _ = translatable_tokens("x = 1  # noqa: F401\n### BEGIN SOLUTION\ny = 2\n### END SOLUTION\n")
    assert required == []


def test_translate_code_replaces_only_whole_tokens():
    out = translate_code(CODE, catalog(lesson())["cell-01"]["code"])
    assert "# offset 是普通属性" in out and '"lesson01.pt"' in out and "model = make()" in out
    compile(out, "cell", "exec")


def test_a_complete_catalog_has_no_problems_and_builds_the_lesson():
    nb = lesson()
    assert catalog_problems(nb, catalog(nb)) == []
    zh = translated_notebook(nb, catalog(nb), "zh", {"1.1": "预测键"})
    assert zh.cells[0].source.startswith("# 第 1 课")
    assert zh.cells[1].id == LANGUAGE_CELL_ID and 'buflesson.language("zh")' in zh.cells[1].source
    assert zh.cells[3].source == "### 练习 1.1 · 预测键"
    assert [c.id for c in zh.cells if c.id != LANGUAGE_CELL_ID] == [c.id for c in nb.cells]
    assert zh.metadata["buflesson"]["language"] == "zh"


def test_stale_missing_unknown_and_broken_entries_are_reported():
    nb = lesson()
    cat = catalog(nb)
    nb.cells[0].source += "\nA new sentence."
    del cat["cell-02"]
    cat["cell-01"]["code"]["# gone"] = "# 没了"
    cat["cell-01"]["code"]['"offset saved:"'] = '"未闭合'
    cat["cell-99"] = {"en": "x", "text": "多余"}
    problems = "\n".join(catalog_problems(nb, cat))
    assert "cell-00: stale" in problems
    assert "cell-02: markdown cell without a translation" in problems
    assert "translates text the cell does not have: ['# gone']" in problems
    assert "does not compile" in problems
    assert "cell-99: no such cell" in problems


def test_language_switch_and_fallback():
    assert language() == "en"
    assert tr("no translation for this") == "no translation for this"
    with using("zh"):
        assert language() == "zh"
    assert language() == "en"
    with pytest.raises(ValueError):
        language("xx")
