"""buflesson speaks the lesson's language: every text it shows has its translation, with the same
placeholders, in the glossary's terms; switching the language changes what a check, inventory,
audit and the figures say, and English stays exactly as it was."""

import contextlib
import importlib.util
import json
import os
import random
import re
import string
from pathlib import Path

import pytest
import torch
from torch import nn

import buflesson
from buflesson import audit, check, inventory
from buflesson.checks import exercises
from buflesson.i18n import Msg, built_at_run_time, catalog, fill, language, listing, messages, missing, using
from buflesson.results import FAILED, NOT_ATTEMPTED, PASSED
from buflesson.textwidth import width
from buflesson.translation import glossary_problems, load_glossary

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "buflesson" / "locale"
LANGUAGES = sorted(path.stem for path in LOCALE.glob("*.json"))
GLOSSARY = ROOT / "notebooks" / "translations" / "zh" / "glossary.yml"
TESTS = Path(__file__).parent


def placeholders(text: str) -> list[tuple[str, str, str]]:
    """The `{name!conversion:spec}` fields of a template, sorted (a text never formatted has none)."""
    return sorted((f, c or "", s or "") for _, f, s, c in string.Formatter().parse(text) if f is not None)


def test_every_text_is_marked_as_a_literal():
    assert built_at_run_time() == [], "a text built at run time cannot be translated: make it a template"


def test_the_scan_finds_the_texts_of_every_kind_of_marker():
    found = set(messages())
    assert "Keep `mean` and `std` as buffers" in found  # an exercise's title
    assert "mean and std are buffers: saved, reloaded, and moved with the model." in found  # passed=
    assert "Register the lower-triangular mask: torch.tril(torch.ones(3, 3))." in found  # Fail's hint
    assert "Creating {call}" in found  # Msg
    assert "non-persistent buffer" in found  # N_
    assert "Listing the model's tensors" in found  # student()
    assert "batch mean" in found  # a figure's caption


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_text_has_a_translation_with_the_same_placeholders(lang):
    translations = json.loads((LOCALE / f"{lang}.json").read_text(encoding="utf-8"))
    texts = messages()
    missing_ = [text for text in texts if text not in translations]
    assert not missing_, f"{len(missing_)} texts have no {lang} translation, e.g. {missing_[:3]}"
    left_over = [text for text in translations if text not in set(texts)]
    assert not left_over, f"translations of texts the code no longer has: {left_over[:3]}"
    changed = [
        (text, translations[text]) for text in texts if placeholders(text) != placeholders(translations[text])
    ]
    assert not changed, f"placeholders differ: {changed[:3]}"
    untranslated = [
        text for text in texts if translations[text] == text and re.search(r"[a-z]{3} [a-z]{3}", text)
    ]
    assert not untranslated, f"prose left in English: {untranslated[:3]}"


# English words the glossary's terms match that are no such term there: "the exercise states".
NOT_TERMS = (r"\bexercise states\b",)


def _prose(english: str) -> str:
    """The English text without what is code: placeholders, `spans`, calls with their arguments, and
    words that hold ( ) = _ . [ ] or stand next to an operator (`momentum * x`)."""
    english = re.sub(r"\{[^{}]*\}|`[^`]*`", " ", english)
    for pattern in NOT_TERMS:
        english = re.sub(pattern, " ", english)
    previous = None
    while previous != english:  # innermost calls first: f(g(x), y)
        previous, english = english, re.sub(r"[\w.]*\([^()]*\)", " ", english)
    tokens = english.split()
    words = []
    for i, word in enumerate(tokens):
        bare = word.rstrip(".,;:!?")
        near_operator = any(t in ("*", "+", "-", "/", "=", "==") for t in tokens[max(0, i - 1) : i + 2])
        if not near_operator and not re.search(r"[()=_\[\]'\"]|\.\w", bare):
            words.append(word)
    return " ".join(words)


def test_the_chinese_catalog_uses_the_glossary():
    glossary = load_glossary(GLOSSARY)
    problems = []
    for english, chinese in catalog("zh").items():
        problems += glossary_problems(_prose(english), chinese, glossary, repr(english[:50]))
    assert not problems, "\n".join(problems)


def test_chinese_text_uses_full_width_punctuation_between_chinese_words():
    wrong = []
    for chinese in catalog("zh").values():
        if re.search(r"[\u4e00-\u9fff][,;:?!]\s*[\u4e00-\u9fff]", chinese) or re.search(
            r"[\u4e00-\u9fff]\.$", chinese
        ):
            wrong.append(chinese)
    assert not wrong, wrong[:5]


# -- a real check, in both languages -------------------------------------------------------------


class Plain(nn.Module):
    """Lesson 3's Standardize with std kept as a plain tensor attribute: a wrong answer to 3.1."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(3, 4)
        self.out = nn.Linear(4, 2, bias=False)
        self.register_buffer("mean", torch.tensor([0.5, -1.0, 2.0]))
        self.std = torch.tensor([1.0, 2.0, 0.5])

    def forward(self, x):
        return self.out(torch.relu(self.hidden((x - self.mean) / self.std)))


def test_a_wrong_answer_is_explained_in_the_lessons_language_and_english_is_the_default():
    assert language() == "en"
    english = check("3.1", Plain)
    with using("zh"):
        chinese = check("3.1", Plain)
    assert language() == "en"
    assert english.status == chinese.status == FAILED
    assert english.message.startswith("'std' is a plain tensor attribute: PyTorch does not track it")
    assert "register_buffer('std', tensor)" in english.hint
    assert chinese.message == "'std' 是普通张量属性：PyTorch 不跟踪它，所以它不会被保存，也不会随模型移动。"
    assert chinese.hint.startswith("注册它：self.register_buffer('std', tensor)")
    assert (
        chinese.title == "把 `mean` 和 `std` 保存为缓冲区"
        and english.title == "Keep `mean` and `std` as buffers"
    )
    assert str(english).startswith("[NOT YET] Exercise 3.1: Keep `mean` and `std` as buffers\n")
    assert "\nHint: Register it" in str(english)
    assert str(chinese).startswith("[尚未通过] 练习 3.1：把 `mean` 和 `std` 保存为缓冲区\n")
    assert "\n提示：注册它" in str(chinese)  # no space after a full-width colon
    assert "<b>尚未通过</b> &middot; 练习 3.1：" in chinese._repr_html_()
    assert "<b>提示：</b>注册它" in chinese._repr_html_()
    assert check("3.1", Plain) == english  # the language leaves no trace


def test_a_result_keeps_the_language_it_was_made_in():
    with using("zh"):
        result = check("3.1", ...)
    assert result.status == NOT_ATTEMPTED and result.message.startswith("尚未作答")
    assert str(result).startswith("[尚未作答] 练习 3.1")  # shown after the language went back


def test_a_step_named_in_a_message_is_translated_with_it():
    class Broken(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            raise ValueError("boom")

    english = check("3.1", Broken)
    with using("zh"):
        chinese = check("3.1", Broken)
    assert english.message == "Creating Broken() raised ValueError: boom"
    assert chinese.message == "创建 Broken() 时抛出了 ValueError: boom"  # PyTorch's and Python's words stay


# -- every wrong answer of every lesson, in Chinese ----------------------------------------------


def corpus_of(lesson: str) -> dict:
    path = TESTS / f"test_exercises_lesson{lesson}.py"
    spec = importlib.util.spec_from_file_location(f"messages_corpus_{lesson}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, "WRONG", {})


LESSONS = sorted({exercise_id.split(".")[0].zfill(2) for exercise_id in exercises()})


@contextlib.contextmanager
def global_state_kept():
    """Torch's and Python's global state put back afterwards: a wrong answer may leave it changed
    (that is its mistake), and the same answer is checked twice here."""
    grad, dtype, device = torch.is_grad_enabled(), torch.get_default_dtype(), torch.get_default_device()
    anomaly, deterministic = torch.is_anomaly_enabled(), torch.are_deterministic_algorithms_enabled()
    rng, python_rng, cwd = torch.get_rng_state(), random.getstate(), os.getcwd()
    try:
        yield
    finally:
        torch.set_grad_enabled(grad)
        torch.set_default_dtype(dtype)
        if torch.get_default_device() != device:  # set_default_device(cpu) would leave a mode on
            torch.set_default_device(None if device == torch.device("cpu") else device)
        torch.set_anomaly_enabled(anomaly)
        torch.use_deterministic_algorithms(deterministic)
        torch.set_rng_state(rng)
        random.setstate(python_rng)
        os.chdir(cwd)


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS)
def test_every_wrong_answer_is_explained_in_chinese_with_the_same_verdict(lesson, monkeypatch):
    monkeypatch.setenv("BUFLESSON_CHECK_SEED", "1")
    before = missing()
    for exercise_id, cases in corpus_of(lesson).items():
        for case in cases:
            with global_state_kept():
                english = check(exercise_id, case.answer)
            with global_state_kept(), using("zh"):
                chinese = check(exercise_id, case.answer)
            assert chinese.status == english.status == FAILED, str(chinese)
            assert re.search(r"[\u4e00-\u9fff]", chinese.message), str(chinese)
            assert not chinese.hint or re.search(r"[\u4e00-\u9fff]", chinese.hint), str(chinese)
    assert missing() - before == set(), "texts shown without a translation"


class Standardize(nn.Module):
    """A right answer to 3.1 (answers live in the tests, never in the package)."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(3, 4)
        self.out = nn.Linear(4, 2, bias=False)
        self.register_buffer("mean", torch.tensor([0.5, -1.0, 2.0]))
        self.register_buffer("std", torch.tensor([1.0, 2.0, 0.5]))

    def forward(self, x):
        return self.out(torch.relu(self.hidden((x - self.mean) / self.std)))


def test_a_passed_check_says_so_in_chinese():
    with using("zh"):
        result = check("3.1", Standardize)
    assert result.status == PASSED, str(result)
    assert str(result).startswith("[通过] 练习 3.1") and result.message.startswith("mean 和 std 是缓冲区")


# -- inventory, audit and the figures, in Chinese ------------------------------------------------


def _starts(line: str) -> list[int]:
    """The display columns where the cells of an aligned line start (cells are apart by 2+ spaces)."""
    return [width(line[: m.start()]) for m in re.finditer(r"(?:^|(?<=  ))\S", line)]


def test_the_inventory_reads_in_chinese_and_its_columns_line_up():
    model = buflesson.everything_model()
    with using("zh"):
        text = str(inventory(model))
        html = inventory(model)._repr_html_()
    assert language() == "en"
    assert "名称" in text and "缓冲区" in text and "非持久缓冲区" in text and "普通属性" in text
    assert "保存：在 state_dict 中" in text
    lines = text.splitlines()
    assert all(width(line) <= 100 for line in lines), [line for line in lines if width(line) > 100]
    header = next(i for i, line in enumerate(lines) if line.startswith("名称"))
    rule = _starts(lines[header + 1])
    assert _starts(lines[header]) == rule  # the Chinese headings stand over their columns
    rows = [line for line in lines[header + 2 :] if re.match(r"\S+  ", line) and "：" not in line]
    assert rows and all(_starts(line) == rule for line in rows), rows
    assert "<th class='bl-flag'>在 state_dict 中</th>" in html and "writing-mode:horizontal-tb" in html
    assert "title='用 register_buffer 注册" in html


def test_the_english_inventory_has_no_chinese_style():
    html = inventory(buflesson.everything_model())._repr_html_()
    assert "horizontal-tb" not in html and "<th class='bl-flag'>in state_dict</th>" in html


def test_the_audit_reads_in_chinese():
    with using("zh"):
        found = audit(buflesson.StaleStats())
        text = str(found)
    assert found.problems() == {"stats[0]": "stale reference", "stats[1]": "stale reference"}  # data stays
    assert text.startswith("audit(StaleStats)：发现 2 个状态问题。")
    assert "过时引用" in text and "修复：保存名字，而不是张量" in text
    assert all(width(line) <= 100 for line in text.splitlines())


def test_the_devices_line_is_in_the_language_it_was_chosen_in(monkeypatch):
    from buflesson.devices import pick_device

    monkeypatch.setattr("buflesson.devices.enable", lambda: None)  # the rule stays off for other tests
    with using("zh"):
        choice = pick_device()
    assert choice.why in (
        "没有加速器：使用 buflesson 的 GPU 替身，即按 CUDA 设备规则检查的 meta 设备。",
    ) or (choice.why.startswith("使用加速器："))


def test_figures_are_captioned_in_chinese_only_where_a_font_can_draw_it():
    pytest.importorskip("matplotlib")
    from buflesson import figures, state_map

    with using("zh"):
        fig = state_map(buflesson.everything_model())
        title = fig._suptitle.get_text()
        drawable = figures.can_draw()
    if drawable:
        assert title == "Everything 的每个张量：哪些会被保存、移动和训练"
    else:  # no CJK font here: English, never boxes in place of characters
        assert title == "Every tensor of Everything: what is saved, moved and trained"


# -- the rendering itself ------------------------------------------------------------------------


def test_a_space_between_a_placeholder_and_chinese_text_goes_when_the_value_is_chinese():
    assert fill("{what} 改变了 {x}。", {"what": "构建模型", "x": "默认设备"}) == "构建模型改变了默认设备。"
    assert fill("{what} 改变了 {x}。", {"what": "evaluate(model, x)", "x": "None 缓冲区"}) == (
        "evaluate(model, x) 改变了 None 缓冲区。"
    )
    assert fill("{a!r} is {b:>3}, {{x}}", {"a": "q", "b": "z"}) == "'q' is   z, {x}"
    with using("zh"):
        assert listing(["非持久缓冲区", "普通张量"], " and ") == "非持久缓冲区和普通张量"
        assert listing(["linear.weight", "linear.bias"], " and ") == "linear.weight 和 linear.bias"
        assert str(Msg("Reading {path}", path="offset")) == "读取 offset"
    assert str(Msg("Reading {path}", path="offset")) == "Reading offset"
