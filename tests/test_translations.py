"""The Chinese lessons: every catalog complete and current, one rendering per glossary term, and the
committed notebooks/zh/ made from them."""

from pathlib import Path

import nbformat
import pytest

from buflesson.authoring import stable_ids, student_notebook
from buflesson.translation import (
    catalog_path,
    catalog_problems,
    glossary_problems,
    load_catalog,
    load_glossary,
)

ROOT = Path(__file__).resolve().parent.parent / "notebooks"
LANGUAGES = sorted(p.name for p in (ROOT / "translations").glob("*") if p.is_dir())
ANSWERS = sorted((ROOT / "answers").glob("*.ipynb"))
CASES = [(lang, path) for lang in LANGUAGES for path in ANSWERS]


def answer_of(path: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    stable_ids(nb)
    return nb


@pytest.mark.parametrize("lang, path", CASES, ids=[f"{lang}-{p.stem}" for lang, p in CASES])
def test_every_lesson_is_translated_and_current(lang, path):
    catalog_file = catalog_path(ROOT, lang, path.stem)
    assert catalog_file.exists(), f"no {lang} catalog for {path.name}: buflesson translations --stub"
    problems = catalog_problems(answer_of(path), load_catalog(catalog_file))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("lang, path", CASES, ids=[f"{lang}-{p.stem}" for lang, p in CASES])
def test_glossary_terms_are_rendered_one_way(lang, path):
    catalog_file = catalog_path(ROOT, lang, path.stem)
    if not catalog_file.exists():
        pytest.skip("no catalog yet (the test above fails for it)")
    glossary = load_glossary(ROOT / "translations" / lang / "glossary.yml")
    catalog = load_catalog(catalog_file)
    problems = []
    for cell in answer_of(path).cells:
        entry = catalog.get(cell.id) or {}
        if cell.cell_type == "markdown" and entry.get("text"):
            problems += glossary_problems(cell.source, entry["text"], glossary, f"{path.stem} {cell.id}")
        for english, translated in (entry.get("code") or {}).items():
            if translated != english:  # a label kept as its code name (`"momentum:"`) is not prose
                problems += glossary_problems(english, translated, glossary, f"{path.stem} {cell.id}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("lang, path", CASES, ids=[f"{lang}-{p.stem}" for lang, p in CASES])
def test_committed_translated_notebooks_are_what_the_generator_makes(lang, path):
    committed_answer = ROOT / lang / "answers" / path.name
    committed_student = ROOT / lang / path.name
    if not catalog_path(ROOT, lang, path.stem).exists():
        pytest.skip("no catalog yet")
    assert committed_answer.exists() and committed_student.exists(), "run `make notebooks`"
    answer = nbformat.read(committed_answer, as_version=4)
    from buflesson.authoring import exercise_titles
    from buflesson.i18n import tr
    from buflesson.translation import translated_notebook

    titles = {key: tr(title, lang) for key, title in exercise_titles().items()}
    made = translated_notebook(
        answer_of(path), load_catalog(catalog_path(ROOT, lang, path.stem)), lang, titles
    )
    sources = [(c.cell_type, c.source) for c in made.cells]
    assert [(c.cell_type, c.source) for c in answer.cells] == sources, f"run `make lesson N={path.stem[:2]}`"
    student = nbformat.read(committed_student, as_version=4)
    expected = [(c.cell_type, c.source) for c in student_notebook(made).cells]
    assert [(c.cell_type, c.source) for c in student.cells] == expected
