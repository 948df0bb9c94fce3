"""Text as a monospace font shows it: CJK characters take two columns, and Chinese wraps between
characters but never before a closing mark."""

import textwrap

import pytest

from buflesson.textwidth import char_width, ljust, rjust, width, wrap

CHINESE = (
    "它就是缓冲区 'mean' 本身，却保存在普通属性中。.to()、.cuda()、.double() 和 .half() 只要改变了缓冲区的"
    "设备或数据类型，就会用一个新张量替换它（什么也没改变的转换会保留原来的对象），所以模型移动之后，"
    "stats[0] 仍然持有旧张量：它的设备、数据类型和值都不再跟随模型。"
)


def test_a_cjk_character_takes_two_columns_and_ascii_one():
    assert [char_width(c) for c in "a缓，·"] == [1, 2, 2, 1]
    assert width("state_dict 中") == 13
    assert ljust("缓冲区", 8) == "缓冲区  " and rjust("是", 3) == " 是"
    assert ljust("非持久缓冲区", 4) == "非持久缓冲区"  # never cut


@pytest.mark.parametrize("columns", [40, 61, 100])
def test_chinese_wraps_within_the_width_and_loses_nothing(columns):
    lines = wrap(CHINESE, columns, "  ", "    ")
    assert len(lines) > 1
    assert all(width(line) <= columns for line in lines)
    assert "".join(line.strip() for line in lines).replace(" ", "") == CHINESE.replace(" ", "")
    assert not any(line.strip()[0] in "，。、：；）" for line in lines[1:])


def test_a_word_of_code_is_not_broken_where_it_fits_on_the_next_line():
    lines = wrap("在需要的地方读取 self.running_mean（或者用一个返回它的 @property）。", 24)
    assert any(
        "self.running_mean（或者用一个返回它的" in line or "self.running_mean" in line for line in lines
    )
    assert not any(line.endswith("self.running") for line in lines)


@pytest.mark.parametrize(
    "text",
    [
        "A plain tensor attribute: PyTorch does not track it, so it is not in state_dict() and .to() does "
        "not move it. It is on cpu while the model's parameters and buffers are on meta.",
        "saved: in state_dict · moved: follows .to() · trained: stepped by optimizer · grad: requires grad",
        "h.{0..11}.attn.c_attn.weight_with_a_name_that_is_much_longer_than_any_line_can_hold_at_all_xx",
    ],
)
def test_text_without_wide_characters_wraps_as_textwrap_does(text):
    for columns in (30, 72, 100):
        assert wrap(text, columns, "  ", "    ") == textwrap.wrap(
            text, columns, initial_indent="  ", subsequent_indent="    ", break_on_hyphens=False
        )
