"""Lessons in other languages, made from the English answer notebooks and one catalog per lesson.

The English answer notebook is the single source of code and structure. A lesson's catalog
(`notebooks/translations/LANG/NN-name.yml`) holds, per cell id:

    cell-05:                      # a markdown cell: its whole text
      en: 3f2a9c1b7d0e            # a hash of the English source it was translated from
      text: |
        看 `offset` 这一行 ……
    cell-06:                      # a code cell: its comments and printed strings, token by token
      en: 81c0d2e4a9f3
      code:
        '# the offset is a plain attribute': '# offset 是普通属性'
        '"offset saved:"': '"保存的 offset："'

`translated_notebook` applies it: markdown replaced, code tokens replaced (the code itself stays the
English cell's), exercise headings written from the translated check titles, and a first cell that
sets the language of buflesson's messages. `catalog_problems` lists what is missing or stale: a
cell whose English source changed since it was translated (its hash differs), a markdown cell or a
comment or printed string with no translation, a translated code cell that no longer compiles.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import io
import re
import tokenize
from pathlib import Path

import nbformat

from buflesson.authoring import BEGIN, END, INLINE

CATALOGS = Path("notebooks", "translations")
LANGUAGE_CELL_ID = "set-language"
_MARKERS = re.compile(r"^#\s*(NBVAL_\w+|noqa\b.*|type:.*|YOUR CODE HERE)$")
_HEADING = {
    "zh": ("### 练习 {id} · {title}", re.compile(r"^### 练习 (?P<id>[^\s·]+)(?: · (?P<title>.*))?$", re.M)),
}


def source_hash(source: str) -> str:
    """The short hash a catalog entry keeps of the English source it translates."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]


def load_catalog(path: Path) -> dict[str, dict]:
    """A lesson's catalog (YAML): cell id -> entry."""
    import yaml

    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a catalog is a mapping from cell id to entry")
    return data


def _is_solution_marker(text: str) -> bool:
    stripped = text.strip()
    return stripped in (BEGIN, END) or stripped.endswith(INLINE) and stripped.startswith("#")


def translatable_tokens(source: str) -> tuple[list[str], list[str]]:
    """The comments and the string literals printed with `print(...)` in a code cell: what a
    translation must cover (`required`), and every other string literal it may translate."""
    required: list[str] = []
    optional: list[str] = []
    printed: set[tuple[int, int]] = set()
    try:
        tree = ast.parse(_ipython_safe(source))
    except SyntaxError:
        tree = None
    if tree is not None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                for arg in node.args:
                    if isinstance(arg, (ast.Constant, ast.JoinedStr)) and (
                        not isinstance(arg, ast.Constant) or isinstance(arg.value, str)
                    ):
                        printed.add((arg.lineno, arg.col_offset))
    for token in _tokens(source):
        if token.type == tokenize.COMMENT:
            if not _MARKERS.match(token.string.strip()) and not _is_solution_marker(token.string):
                required.append(token.string)
        elif token.type == tokenize.STRING or token.type == getattr(tokenize, "FSTRING_START", -1):
            (required if token.start in printed else optional).append(token.string)
    return list(dict.fromkeys(required)), list(dict.fromkeys(optional))


def _ipython_safe(source: str) -> str:
    """The cell with IPython magics and shell lines blanked, so it parses as Python."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def _tokens(source: str) -> list[tokenize.TokenInfo]:
    try:
        return list(tokenize.generate_tokens(io.StringIO(_ipython_safe(source)).readline))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return []


def translate_code(source: str, replacements: dict[str, str]) -> str:
    """`source` with each comment or string token found in `replacements` replaced by its translation."""
    lines = source.splitlines(keepends=True)
    edits = []
    for token in _tokens(source):
        if token.string in replacements and token.type in (tokenize.COMMENT, tokenize.STRING):
            edits.append((token.start, token.end, replacements[token.string]))
    for (row, col), (end_row, end_col), text in sorted(edits, reverse=True):
        if row != end_row:  # a string over several lines: join, edit, split
            head = "".join(lines[row - 1 : end_row])
            offset_end = sum(len(line) for line in lines[row - 1 : end_row - 1]) + end_col
            joined = head[:col] + text + head[offset_end:]
            lines[row - 1 : end_row] = joined.splitlines(keepends=True)
        else:
            line = lines[row - 1]
            lines[row - 1] = line[:col] + text + line[end_col:]
    return "".join(lines)


def catalog_problems(answer: nbformat.NotebookNode, catalog: dict[str, dict]) -> list[str]:
    """Everything that keeps a lesson's catalog from being complete and current."""
    problems: list[str] = []
    cells = {cell.id: cell for cell in answer.cells}
    for cell_id in catalog:
        if cell_id not in cells:
            problems.append(f"{cell_id}: no such cell in the English lesson any more")
    for cell in answer.cells:
        entry = catalog.get(cell.id)
        if entry and entry.get("todo"):
            problems.append(f"{cell.id}: marked todo (translate it, then remove `todo` and `english`)")
            continue
        if cell.cell_type == "markdown":
            if not entry or not isinstance(entry.get("text"), str) or not entry["text"].strip():
                problems.append(f"{cell.id}: markdown cell without a translation")
                continue
        elif cell.cell_type == "code":
            required, _ = translatable_tokens(cell.source)
            if not required and not entry:
                continue
            if not entry:
                problems.append(f"{cell.id}: code cell without translations of {required[:3]}")
                continue
            code = entry.get("code") or {}
            missing = [token for token in required if not code.get(token)]
            if missing:
                problems.append(f"{cell.id}: untranslated {missing[:3]}")
            unknown = [token for token in code if token not in cell.source]
            if unknown:
                problems.append(f"{cell.id}: translates text the cell does not have: {unknown[:3]}")
            try:
                ast.parse(_ipython_safe(translate_code(cell.source, code)))
            except SyntaxError as error:
                problems.append(f"{cell.id}: the translated code does not compile ({error.msg})")
        else:
            continue
        if entry.get("en") != source_hash(cell.source):
            problems.append(f"{cell.id}: stale: the English cell changed since it was translated")
    return problems


def translated_notebook(
    answer: nbformat.NotebookNode, catalog: dict[str, dict], lang: str, titles: dict[str, str]
) -> nbformat.NotebookNode:
    """The answer notebook in `lang`: markdown and code tokens from `catalog`, exercise headings from
    the translated check `titles`, and a first code cell that sets buflesson's language."""
    nb = copy.deepcopy(answer)
    template, pattern = _HEADING[lang]
    for cell in nb.cells:
        entry = catalog.get(cell.id) or {}
        if cell.cell_type == "markdown" and isinstance(entry.get("text"), str):
            cell.source = entry["text"].rstrip("\n")
            cell.source = pattern.sub(
                lambda m: template.format(id=m["id"], title=titles.get(m["id"], m["title"] or "")),
                cell.source,
            )
        elif cell.cell_type == "code" and entry.get("code"):
            cell.source = translate_code(cell.source, entry["code"])
    first_code = next((i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"), len(nb.cells))
    language_cell = nbformat.v4.new_code_cell(f'import buflesson\n\nbuflesson.language("{lang}")')
    language_cell.id = LANGUAGE_CELL_ID
    nb.cells.insert(first_code, language_cell)
    nb.metadata.setdefault("buflesson", {})["language"] = lang
    return nb


_SET_LANGUAGE = re.compile(r"""^\s*buflesson\.language\(\s*["'](?P<code>\w+)["']\s*\)\s*$""", re.M)


def notebook_language(nb: nbformat.NotebookNode) -> str:
    """The language a notebook is written in, read from its data alone (nothing is run): its
    `metadata.buflesson.language` (written by the generator, kept by the release), else the
    language cell a translated lesson starts with; English when neither names a known language."""
    from buflesson.i18n import LANGUAGES

    info = nb.get("metadata", {}).get("buflesson")
    code = info.get("language") if isinstance(info, dict) else None
    if isinstance(code, str) and code in LANGUAGES:
        return code
    for cell in nb.get("cells", []):
        source = cell.get("source") if isinstance(cell, dict) else None
        if cell.get("id") == LANGUAGE_CELL_ID and cell.get("cell_type") == "code" and isinstance(source, str):
            found = _SET_LANGUAGE.search(source)
            if found and found["code"] in LANGUAGES:
                return found["code"]
    return "en"


def catalog_path(root: Path, lang: str, lesson: str) -> Path:
    """Where the catalog of `lesson` (an answer notebook's stem) in `lang` lives under `root`."""
    return Path(root) / "translations" / lang / f"{lesson}.yml"


def build_translations(root: Path, pattern: str = "*.ipynb", run: bool = True) -> list[Path]:
    """Write `root/LANG/answers/NN.ipynb` and the student notebook `root/LANG/NN.ipynb` for every
    lesson matching `pattern` that has a catalog in `root/translations/LANG/`; run both with `run`."""
    from buflesson.authoring import execute, exercise_titles, stable_ids, student_notebook
    from buflesson.i18n import tr

    root = Path(root)
    written: list[Path] = []
    for lang_dir in sorted((root / "translations").glob("*")):
        if not lang_dir.is_dir():
            continue
        lang = lang_dir.name
        titles = {key: tr(title, lang) for key, title in exercise_titles().items()}
        for path in sorted((root / "answers").glob(pattern)):
            catalog_file = catalog_path(root, lang, path.stem)
            if not catalog_file.exists():
                continue
            answer = nbformat.read(path, as_version=4)
            stable_ids(answer)
            translated = translated_notebook(answer, load_catalog(catalog_file), lang, titles)
            out = root / lang
            (out / "answers").mkdir(parents=True, exist_ok=True)
            if run:
                execute(translated, out)
            target = out / "answers" / path.name
            nbformat.write(translated, target)
            student = student_notebook(translated)
            if run:
                execute(student, out)
            nbformat.write(student, out / path.name)
            written += [target, out / path.name]
    return written


def load_glossary(path: Path) -> dict[str, dict]:
    """The glossary: English term -> {"zh": the one rendering, "avoid": renderings not to use}."""
    return load_catalog(path)


def glossary_problems(english: str, translated: str, glossary: dict[str, dict], where: str) -> list[str]:
    """Terms of `glossary` that `translated` renders another way than the glossary says."""
    problems = []
    english = re.sub(r"^### Exercise .*$", "", english, flags=re.MULTILINE)  # its title is the check's
    plain_en = re.sub(r"`[^`]*`", "", english)  # code (`register_buffer`) is not prose
    for term, entry in glossary.items():
        rendering = str(entry.get("zh", ""))
        for avoided in entry.get("avoid") or []:
            if avoided in translated:
                problems.append(f"{where}: {term!r} rendered as {avoided!r}; the glossary says {rendering!r}")
        if rendering and re.search(rf"(?<![\w`.]){re.escape(term)}s?(?![\w`=(])", plain_en, re.IGNORECASE):
            if rendering not in translated:
                problems.append(
                    f"{where}: {term!r} is in the English text but {rendering!r} is not in the translation"
                )
    return problems


def status(root: Path, lang: str) -> dict[str, list[str]]:
    """What each lesson's catalog in `lang` still lacks: lesson -> problems (missing catalogs too)."""
    from buflesson.authoring import stable_ids

    out: dict[str, list[str]] = {}
    for path in sorted((Path(root) / "answers").glob("*.ipynb")):
        catalog_file = catalog_path(root, lang, path.stem)
        answer = nbformat.read(path, as_version=4)
        stable_ids(answer)
        if not catalog_file.exists():
            out[path.stem] = [f"no catalog: {catalog_file}"]
            continue
        out[path.stem] = catalog_problems(answer, load_catalog(catalog_file))
    return out


def skeleton(answer: nbformat.NotebookNode, catalog: dict[str, dict]) -> dict[str, dict]:
    """`catalog` with an entry for every cell that needs one and lacks it or is stale: the English
    text to translate (markdown) or the tokens to translate (code), marked `todo`, with the current
    hash. Entries that are current are kept as they are."""
    out = dict(catalog)
    for cell in answer.cells:
        entry = catalog.get(cell.id)
        current = entry is not None and entry.get("en") == source_hash(cell.source)
        if cell.cell_type == "markdown" and not current:
            out[cell.id] = {
                "en": source_hash(cell.source),
                "todo": True,
                "english": cell.source,
                "text": (entry or {}).get("text", ""),
            }
        elif cell.cell_type == "code":
            required, optional = translatable_tokens(cell.source)
            code = dict((entry or {}).get("code") or {})
            if (required and not current) or any(token not in code for token in required):
                out[cell.id] = {
                    "en": source_hash(cell.source),
                    "todo": True,
                    "english": cell.source,
                    "code": {token: code.get(token, "") for token in required} | code,
                }
    return out


def write_catalog(path: Path, catalog: dict[str, dict]) -> None:
    """Write a catalog as YAML, multi-line texts as blocks, keys in the order given."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper, value):
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(
        yaml.dump(catalog, Dumper=Dumper, allow_unicode=True, sort_keys=False, width=100), encoding="utf-8"
    )
