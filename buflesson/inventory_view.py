"""How an `Inventory` reads: a summary first, then the rows, repeated blocks folded.

Text fits 100 columns (a CJK character counts two: `buflesson.textwidth`). The HTML uses
JupyterLab's CSS variables (with fallbacks), so it reads in the light and the dark theme;
each kind has a colour, a symbol and its name; long names wrap at their dots, and a table
wider than the notebook scrolls sideways with its name column kept in view and a shadow at
the edge that hides more. Everything is written in the current language (`buflesson.i18n`).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from buflesson import textwidth
from buflesson.grouping import Group, fold, short_list
from buflesson.i18n import N_, Listed, Msg, language, render, tr
from buflesson.rows import (
    BUFFER,
    COLUMNS,
    COMPUTED,
    EXTRA_STATE,
    KIND_MEANINGS,
    KINDS,
    NON_PERSISTENT_BUFFER,
    NONE_BUFFER,
    PARAMETER,
    PLAIN,
    REFERENCE,
    REGISTERED,
    TensorRow,
    yes,
)

WIDTH = 100  # text columns

SYMBOLS = {
    PARAMETER: "●",
    BUFFER: "■",
    NON_PERSISTENT_BUFFER: "□",
    NONE_BUFFER: "∅",
    PLAIN: "▲",
    REFERENCE: "↗",
    COMPUTED: "ƒ",
    EXTRA_STATE: "◇",
}
_COLOURS = {  # JupyterLab's variables, with the light theme's values as fallbacks
    PARAMETER: "var(--jp-brand-color1, #1976d2)",
    BUFFER: "var(--jp-success-color1, #388e3c)",
    NON_PERSISTENT_BUFFER: "var(--jp-warn-color1, #f57c00)",
    NONE_BUFFER: "var(--jp-layout-color4, #757575)",
    PLAIN: "var(--jp-error-color1, #d32f2f)",
    REFERENCE: "var(--jp-info-color1, #0097a7)",
    COMPUTED: "var(--jp-brand-color2, #64b5f6)",
    EXTRA_STATE: "var(--jp-ui-font-color2, #757575)",
}
_EDGES = {PLAIN: "dashed", REFERENCE: "dotted", COMPUTED: "dotted", NONE_BUFFER: "dotted"}


@dataclass(frozen=True)
class KindTotal:
    """How many rows of one kind, and their elements and bytes (None where unknown)."""

    kind: str
    count: int
    elements: int | None
    nbytes: int | None


def totals(rows: Sequence[TensorRow]) -> list[KindTotal]:
    """Count, elements and bytes per kind, each tensor once, kinds in `KINDS` order."""
    out = []
    for kind in KINDS:
        of_kind = [row for row in rows if row.kind == kind]
        if not of_kind:
            continue
        if kind in (NONE_BUFFER, REFERENCE) or (kind == COMPUTED and all(r.tensor is None for r in of_kind)):
            out.append(KindTotal(kind, len(of_kind), None, None))
            continue
        known = [row for row in of_kind if row.elements is not None]
        elements = sum(row.elements for row in known) if known else None
        nbytes = sum(row.nbytes for row in known) if known else None
        out.append(KindTotal(kind, len(of_kind), elements, nbytes))
    return out


def human_bytes(count: int | None) -> str:
    """`56 B`, `1.5 KiB`, `474.7 MiB`."""
    if count is None:
        return "-"
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{count} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


# Counted nouns, singular and plural: `{n}` is the number as shown.
NOUNS = {
    "tensor": (N_("{n} tensor"), N_("{n} tensors")),
    "element": (N_("{n} element"), N_("{n} elements")),
    "entry": (N_("{n} entry"), N_("{n} entries")),
    "buffer slot": (N_("{n} buffer slot"), N_("{n} buffer slots")),
    "plain attribute": (N_("{n} plain attribute"), N_("{n} plain attributes")),
    "parameter": (N_("{n} parameter"), N_("{n} parameters")),
}


def _plural(count: int, noun: str, shown: str | None = None) -> str:
    """'1 tensor', '3 tensors', '2 entries' (in the current language); `shown` writes the count
    (e.g. with thousands separators)."""
    one, many = NOUNS[noun]
    return render(one if count == 1 else many, n=shown if shown is not None else str(count))


def headline(title: str, rows: Sequence[TensorRow]) -> str:
    """'GPT2LMHeadModel: 148 tensors PyTorch tracks, 124,439,808 elements, 474.7 MiB'."""
    tracked = [row for row in rows if row.kind in REGISTERED]
    known = [row for row in tracked if row.elements is not None]
    text = render("{title}: {tensors} PyTorch tracks", title=title, tensors=_plural(len(tracked), "tensor"))
    if known:
        elements = sum(r.elements for r in known)
        text += render(
            ", {elements}, {size}",
            elements=_plural(elements, "element", f"{elements:,}"),
            size=human_bytes(sum(r.nbytes for r in known)),
        )
    if len(known) < len(tracked):
        text += render(" ({count} uninitialized)", count=len(tracked) - len(known))
    devices = sorted({row.device for row in tracked})
    if len(devices) == 1:
        text += render(", on {device}", device=devices[0])
    return text


def _listed(rows: Sequence[TensorRow], limit: int = 4) -> str:
    """Row names folded like the table, in backticks: '`h.{0..11}.attn.bias`, `mask` (+3 more)'."""
    return short_list([row.name for row in rows], limit, mark="`")


def look_at(rows: Sequence[TensorRow]) -> list[tuple[str, str]]:
    """What a student should look at: (label, sentence) pairs, names in backticks, most surprising
    first, in the current language."""
    notes: list[tuple[str, str]] = []
    tied = [row for row in rows if row.kind in REGISTERED and row.aliases and not row.unsaved]
    partly = [row for row in rows if row.kind in REGISTERED and row.aliases and row.unsaved]
    for row in partly[:2]:
        notes.append(
            (
                tr(N_("tied")),
                render(
                    "{names}: one tensor under several names, counted once; state_dict() saves it under "
                    "{saved} only.",
                    names=" = ".join(f"`{name}`" for name in row.names),
                    saved=", ".join(f"`{name}`" for name in row.names if name not in row.unsaved) or "-",
                ),
            )
        )
    if tied:
        shown = "; ".join(" = ".join(f"`{name}`" for name in row.names) for row in tied[:2])
        more = render(" (+{count} more)", count=len(tied) - 2) if len(tied) > 2 else ""
        notes.append(
            (
                tr(N_("tied")),
                render(
                    "{names}{more}: one tensor under several names, saved under each, counted once.",
                    names=shown,
                    more=more,
                ),
            )
        )
    hidden = [row for row in rows if row.unregistered_in is not None]
    if hidden:
        notes.append(
            (
                tr(N_("unregistered")),
                render(
                    "{n} of modules kept in plain lists, dicts or attributes ({names}): not saved, not "
                    "moved, not trained.",
                    n=_plural(len(hidden), "tensor"),
                    names=_listed(hidden, 3),
                ),
            )
        )
    kinds = [
        (PLAIN, N_("plain"), N_("{n} ({names}) that PyTorch does not track: not saved, not moved by .to().")),
        (
            REFERENCE,
            N_("views"),
            N_("{n} ({names}): plain attributes that share a registered tensor's memory."),
        ),
        (
            NON_PERSISTENT_BUFFER,
            N_("not saved"),
            N_(
                "{n} ({names}): moved by .to(), left out of state_dict(); a loaded model keeps what its "
                "__init__ made."
            ),
        ),
        (
            COMPUTED,
            N_("computed"),
            N_("{n} ({names}): recomputed from registered tensors, not saved themselves."),
        ),
        (EXTRA_STATE, N_("extra state"), N_("{n} ({names}): saved, but no registered tensor holds them.")),
        (NONE_BUFFER, N_("None"), N_("{n} ({names}) holding None: nothing to save or move.")),
    ]
    words = {EXTRA_STATE: "entry", NONE_BUFFER: "buffer slot"}
    for kind, label, sentence in kinds:
        of_kind = [row for row in rows if row.kind == kind and row.unregistered_in is None]
        if of_kind:
            count = _plural(len(of_kind), words.get(kind, "tensor"))
            notes.append((tr(label), render(sentence, n=count, names=_listed(of_kind))))
    held = [name for row in rows for name in row.held_by]
    if held:
        notes.append(
            (
                tr(N_("held")),
                render(
                    "{n} ({names}) hold registered tensors themselves; audit(model) tells whether .to() "
                    "leaves them behind.",
                    n=_plural(len(held), "plain attribute"),
                    names=short_list(held, mark="`"),
                ),
            )
        )
    frozen = [row for row in rows if row.frozen]
    if frozen:
        notes.append(
            (
                tr(N_("frozen")),
                render(
                    "{n} ({names}) with requires_grad=False: not trained.",
                    n=_plural(len(frozen), "parameter"),
                    names=_listed(frozen),
                ),
            )
        )
    lazy = [row for row in rows if row.lazy]
    if lazy:
        notes.append(
            (
                tr(N_("uninitialized")),
                render("{names}: lazy, no shape until the first forward.", names=_listed(lazy)),
            )
        )
    devices: dict[str, int] = {}
    for row in rows:
        if row.kind in REGISTERED:
            devices[row.device] = devices.get(row.device, 0) + 1
    if len(devices) > 1:
        spread = ", ".join(f"{device} ({count})" for device, count in sorted(devices.items()))
        notes.append(
            (tr(N_("devices")), render("tracked tensors on several devices: {spread}.", spread=spread))
        )
    return notes


def _row_key(row: TensorRow) -> object:
    """What must be equal for rows to fold into one line; None: never folded."""
    if row.aliases or row.held_by:
        return None
    return (row.kind, row.module, tuple(row.cells()[1:]), row.note)


def groups(rows: Sequence[TensorRow], expand: bool) -> list[Group[TensorRow]]:
    """The rows as shown: one group per row when `expand`, else repeated blocks folded."""
    if expand:
        return [Group(row.name, (row,)) for row in rows]
    return fold(rows, name=lambda row: row.name, key=_row_key)


def _extra_lines(row: TensorRow) -> list[str]:
    lines = []
    if row.aliases:
        lines.append(render("also {names}", names=", ".join(row.aliases)))
    if row.held_by:
        lines.append(
            render(
                "held by the plain attribute {names} too"
                if len(row.held_by) == 1
                else "held by the plain attributes {names} too",
                names=", ".join(row.held_by),
            )
        )
    if row.note:
        lines.append(row.note)
    return lines


# -- text ---------------------------------------------------------------------------------------

_TEXT_HEADER = [
    N_("name"),
    N_("kind"),
    N_("saved"),
    N_("moved"),
    N_("trained"),
    N_("grad"),
    N_("device"),
    N_("dtype"),
    N_("shape"),
]
_TEXT_LEGEND = N_(
    "saved: in state_dict · moved: follows .to() · trained: stepped by optimizer · grad: requires grad"
)
_SUMMARY_HEADER = [N_("kind"), N_("rows"), N_("elements"), N_("bytes")]
NO_TENSORS = N_("(no tensors)")


def _wrap(text: str, indent: str, first: str | None = None) -> list[str]:
    return textwidth.wrap(text, WIDTH, first if first is not None else indent, indent) or [first or indent]


def summary_text(title: str, rows: Sequence[TensorRow], extra: Sequence[tuple[str, str]] = ()) -> list[str]:
    """The summary: headline, a line per kind, and what to look at."""
    lines = _wrap(headline(title, rows), "  ", first="")
    table = [[tr(word) for word in _SUMMARY_HEADER]]
    for total in totals(rows):
        elements = "-" if total.elements is None else f"{total.elements:,}"
        table.append([tr(total.kind), str(total.count), elements, human_bytes(total.nbytes)])
    widths = [max(textwidth.width(line[i]) for line in table) for i in range(4)]
    for line in table:
        cells = [textwidth.ljust(line[0], widths[0])] + [
            textwidth.rjust(cell, w) for cell, w in zip(line[1:], widths[1:], strict=True)
        ]
        lines.append("  " + "  ".join(cells))
    for label, sentence in [*extra, *look_at(rows)]:
        lines += _wrap(sentence, " " * 4, first="  " + render("{label}: ", label=label))
    return lines


def status(all_rows: Sequence[TensorRow], rows: Sequence[TensorRow], lines: int, kinds: Sequence[str]) -> str:
    """How the rows are shown: filtered by kind, folded, or every one ('' when nothing to say)."""
    folded = lines < len(rows)
    if len(rows) < len(all_rows) or kinds:
        which = Listed((Msg(kind) for kind in kinds), N_(" and ")) if kinds else Msg("selected")
        if folded:
            return render(
                "Showing {which} rows only: {shown} of {total}, as {lines} lines: repeated blocks folded "
                "(expand=True lists each).",
                which=which,
                shown=len(rows),
                total=len(all_rows),
                lines=lines,
            )
        return render(
            "Showing {which} rows only: {shown} of {total}.",
            which=which,
            shown=len(rows),
            total=len(all_rows),
        )
    if not folded:
        return ""
    return render(
        "{rows} rows shown as {lines}: repeated blocks folded (expand=True lists each).",
        rows=len(rows),
        lines=lines,
    )


def table_text(rows: Sequence[TensorRow], expand: bool) -> list[str]:
    """The rows as an aligned table of at most 100 columns; a long name gets a line of its own."""
    width = textwidth.width
    header = [tr(word) for word in _TEXT_HEADER]
    shown = groups(rows, expand)
    body = [[group.name, *group.first.cells()[1:]] for group in shown]
    rest = [max(width(line[i]) for line in [header, *body]) for i in range(1, len(header))]
    fixed = sum(rest) + 2 * (len(rest))
    longest = max(width(line[0]) for line in [header, *body])
    name_width = max(min(longest, WIDTH - fixed), 4)

    def line(cells: list[str]) -> str:
        padded = [textwidth.ljust(cells[0], name_width)] + [
            textwidth.ljust(c, w) for c, w in zip(cells[1:], rest, strict=True)
        ]
        return "  ".join(padded).rstrip()

    lines = [line(header), line(["-" * name_width] + ["-" * w for w in rest])]
    for group, cells in zip(shown, body, strict=True):
        if width(cells[0]) > name_width:
            lines += _wrap(cells[0], "    ", first="")
            cells = ["", *cells[1:]]
        lines.append(line(cells))
        for extra in _extra_lines(group.first):
            lines += _wrap(extra, "    ", first="  ")
    if not rows:
        lines.append(tr(NO_TENSORS))
    lines += _wrap(tr(_TEXT_LEGEND), "", first="")
    return lines


# -- HTML ---------------------------------------------------------------------------------------

_STYLE = """
.bl-inv{font-family:var(--jp-ui-font-family,system-ui,sans-serif);font-size:var(--jp-ui-font-size1,13px);
color:var(--jp-ui-font-color1,#212121);max-width:100%;text-align:left;line-height:1.35}
.bl-inv .bl-name{font-family:var(--jp-code-font-family,monospace);font-size:12px}
.bl-inv .bl-head{font-weight:600;margin:0 0 4px}
.bl-inv ul{margin:2px 0 6px;padding-left:18px}
.bl-inv li{margin:1px 0}
.bl-inv .bl-dim{color:var(--jp-ui-font-color2,#757575)}
.bl-inv .bl-scroll{overflow-x:auto;max-width:100%;
background:linear-gradient(to right,var(--jp-layout-color1,#fff) 30%,transparent),
linear-gradient(to left,var(--jp-layout-color1,#fff) 30%,transparent) 100% 0,
linear-gradient(to left,var(--jp-border-color0,#9e9e9e),transparent) 100% 0;
background-repeat:no-repeat;background-size:40px 100%,40px 100%,16px 100%;
background-attachment:local,local,scroll}
div.bl-inv table.bl-t{border-collapse:collapse;table-layout:auto;margin:0 0 4px;width:auto;
font-size:var(--jp-ui-font-size1,13px);color:var(--jp-ui-font-color1,#212121)}
div.bl-inv table.bl-t th,div.bl-inv table.bl-t td{text-align:left;vertical-align:top;padding:2px 5px;
white-space:nowrap;border:none;max-width:none;line-height:1.35}
div.bl-inv table.bl-t thead th{border-bottom:1px solid var(--jp-border-color1,#bdbdbd);
vertical-align:bottom;font-weight:600}
div.bl-inv table.bl-t th.bl-flag{writing-mode:vertical-rl;transform:rotate(180deg);
white-space:normal;max-height:7em;padding:4px 2px;text-align:left;font-size:12px}
div.bl-inv table.bl-t tbody tr{background:transparent;border-bottom:1px solid var(--jp-border-color3,#eee)}
div.bl-inv table.bl-t tbody tr:hover{background:var(--jp-rendermime-table-row-hover-background,#e1f5fe)}
div.bl-inv table.bl-t td.bl-name{white-space:normal;overflow-wrap:anywhere;min-width:16ch;max-width:40ch;
position:sticky;left:0;background:var(--jp-layout-color1,#fff)}
div.bl-inv table.bl-t td.bl-kind{white-space:normal;min-width:8ch;max-width:12ch;font-size:12px}
div.bl-inv table.bl-t td.bl-no{color:var(--jp-ui-font-color3,#9e9e9e)}
div.bl-inv table.bl-t td.bl-num,div.bl-inv table.bl-t th.bl-num{text-align:right}
div.bl-inv table.bl-t td.bl-shape{white-space:normal;min-width:7ch}
div.bl-inv .bl-sub{display:block;font-family:var(--jp-ui-font-family,sans-serif);font-size:12px;
color:var(--jp-ui-font-color2,#616161);white-space:normal;overflow-wrap:anywhere}
div.bl-inv .bl-range{color:var(--jp-brand-color1,#1976d2);font-weight:600}
div.bl-inv .bl-sym{display:inline-block;width:1.2em;font-weight:700}
div.bl-inv .bl-w{white-space:nowrap}
div.bl-inv .bl-mono{font-family:var(--jp-code-font-family,monospace);font-size:12px}
"""
# Languages written in CJK characters: the flag columns' headings stay horizontal (a CJK character
# set sideways by the English rule reads upside down) and wrap only at their spaces (`在 state_dict 中`,
# `随 .to() 转换`), never inside a word. Scoped to its own tables, so an English table next to it keeps
# its rule.
_CJK = ("zh",)
_CJK_STYLE = """
div.bl-inv.bl-cjk table.bl-t th.bl-flag{writing-mode:horizontal-tb;transform:none;max-height:none;
max-width:6.5em;white-space:normal;word-break:keep-all;overflow-wrap:normal;padding:2px 4px}
"""


def _marked(text: str) -> str:
    """Escaped text with `names` in the code font, breakable at their dots."""
    parts = text.split("`")
    return "".join(
        f"<span class='bl-mono'>{_breakable(part)}</span>" if odd else html.escape(part)
        for odd, part in ((i % 2 == 1, p) for i, p in enumerate(parts))
    )


def _kind_css() -> str:
    rules = []
    for kind in KINDS:
        css = kind.replace(" ", "-").lower()
        edge = _EDGES.get(kind, "solid")
        rules.append(
            f"div.bl-inv table.bl-t tr.bl-{css}>td:first-child{{border-left:4px {edge} {_COLOURS[kind]}}}"
            f"div.bl-inv .bl-{css} .bl-sym{{color:{_COLOURS[kind]}}}"
        )
    return "".join(rules)


def _kind_class(kind: str) -> str:
    return "bl-" + kind.replace(" ", "-").lower()


def _breakable(name: str) -> str:
    """An escaped name that may wrap after a dot or before an index, with folded ranges marked."""
    escaped = html.escape(name)
    escaped = escaped.replace(".", ".<wbr>").replace("[", "<wbr>[")
    out, depth = [], 0
    for char in escaped:
        if char == "{":
            out.append("<span class='bl-range'>{")
            depth += 1
        elif char == "}" and depth:
            out.append("}</span>")
            depth -= 1
        else:
            out.append(char)
    return "".join(out)


def _kind_cell(kind: str) -> str:
    first, *rest = html.escape(tr(kind)).split(" ")
    words = "".join(f" <span class='bl-w'>{word}</span>" for word in rest)
    return (
        f"<td class='bl-kind {_kind_class(kind)}' title='{html.escape(tr(KIND_MEANINGS[kind]))}'>"
        f"<span class='bl-w'><span class='bl-sym' aria-hidden='true'>{SYMBOLS[kind]}</span>{first}</span>"
        f"{words}</td>"
    )


def _html_row(group: Group[TensorRow]) -> str:
    row = group.first
    subs = "".join(f"<span class='bl-sub'>{html.escape(line)}</span>" for line in _extra_lines(row))
    if group.folded:
        subs = (
            f"<span class='bl-sub'>{html.escape(render('{count} alike', count=len(group.items)))}</span>"
            + subs
        )
    cells = [f"<td class='bl-name'>{_breakable(group.name)}{subs}</td>", _kind_cell(row.kind)]
    for flag in (row.in_state_dict, row.follows_to, row.stepped_by_optimizer, row.requires_grad):
        cells.append(f"<td class='bl-{'yes' if flag else 'no'}'>{yes(flag)}</td>")
    cells += [
        f"<td>{html.escape(row.device)}</td>",
        f"<td>{html.escape(row.dtype).replace(', ', ',<wbr> ')}</td>",
        f"<td class='bl-shape bl-mono'>{html.escape(row.shape_text()).replace(', ', ',<wbr> ')}</td>",
    ]
    return f"<tr class='{_kind_class(row.kind)}'>{''.join(cells)}</tr>"


def _summary_html(title: str, rows: Sequence[TensorRow], extra: Sequence[tuple[str, str]] = ()) -> str:
    parts = [f"<div class='bl-head'>{html.escape(headline(title, rows))}</div>"]
    body = []
    for total in totals(rows):
        elements = "-" if total.elements is None else f"{total.elements:,}"
        body.append(
            f"<tr class='{_kind_class(total.kind)}'>{_kind_cell(total.kind)}"
            f"<td class='bl-num'>{total.count}</td><td class='bl-num'>{elements}</td>"
            f"<td class='bl-num'>{human_bytes(total.nbytes)}</td></tr>"
        )
    if body:
        kind, *numbers = (html.escape(tr(word)) for word in _SUMMARY_HEADER)
        heads = "".join(f"<th class='bl-num'>{word}</th>" for word in numbers)
        parts.append(
            f"<table class='bl-t bl-sum'><thead><tr><th>{kind}</th>{heads}"
            f"</tr></thead><tbody>{''.join(body)}</tbody></table>"
        )
    notes = [*extra, *look_at(rows)]
    if notes:
        items = "".join(
            f"<li>{render('{label}: ', label=f'<b>{html.escape(label)}</b>')}{_marked(text)}</li>"
            for label, text in notes
        )
        parts.append(f"<ul class='bl-look'>{items}</ul>")
    return "".join(parts)


def to_html(
    title: str,
    all_rows: Sequence[TensorRow],
    rows: Sequence[TensorRow],
    expand: bool,
    kinds: Sequence[str] = (),
    extra: Sequence[tuple[str, str]] = (),
) -> str:
    """The summary of `all_rows`, then `rows` as a table, in one self-styled block."""
    shown = groups(rows, expand)
    flags = COLUMNS[2:6]
    head = "".join(
        f"<th class='bl-flag'>{html.escape(tr(column))}</th>"
        if column in flags
        else f"<th>{html.escape(tr(column))}</th>"
        for column in COLUMNS
    )
    body = "".join(_html_row(group) for group in shown)
    if not rows:
        body = f"<tr><td class='bl-name' colspan='{len(COLUMNS)}'>{html.escape(tr(NO_TENSORS))}</td></tr>"
    line = status(all_rows, rows, len(shown), kinds)
    line = (
        f"<div class='bl-dim'>{_marked(line.replace('expand=True', '`expand=True`'))}</div>" if line else ""
    )
    cjk = language() in _CJK
    style = _STYLE.strip() + _kind_css() + (_CJK_STYLE.strip() if cjk else "")
    return (
        f"<div class='bl-inv{' bl-cjk' if cjk else ''}'><style>{style}</style>"
        f"{_summary_html(title, all_rows, extra)}{line}"
        f"<div class='bl-scroll'><table class='bl-t bl-rows'><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table></div></div>"
    )


def to_text(
    title: str,
    all_rows: Sequence[TensorRow],
    rows: Sequence[TensorRow],
    expand: bool,
    kinds: Sequence[str] = (),
    extra: Sequence[tuple[str, str]] = (),
) -> str:
    """The summary of `all_rows`, then `rows` as an aligned table; every line at most 100 columns."""
    lines = summary_text(title, all_rows, extra)
    line = status(all_rows, rows, len(groups(rows, expand)), kinds)
    if line:
        lines += _wrap(line, "  ", first="")
    return "\n".join([*lines, "", *table_text(rows, expand)])
