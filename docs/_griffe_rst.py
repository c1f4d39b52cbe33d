"""A griffe extension: render the package's reStructuredText docstrings as Markdown for mkdocstrings.

The docstrings are written for Sphinx-style readers (``:class:`X```, ``Usage::``, ``.. admonition::``).
Rather than rewrite every docstring, the API reference translates those few constructs when it loads
the package: roles become optional cross-references (a link when the target is in the reference,
plain code otherwise, never a broken link), literal blocks become code blocks, admonitions become
Material admonitions, and simple tables become Markdown tables.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj):`(~?)([^`]+)`")
_LITERAL = re.compile(r"^(?P<indent>[ \t]*)(?P<text>.*?)::[ \t]*$")
_FIELD = re.compile(r"^[ \t]*:[a-z]")  # a ``:param x:`` field line, not a literal block
_DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\. (?P<name>[a-z-]+)::[ \t]*(?P<arg>.*)$")


def _resolve(obj: griffe.Object, name: str) -> str:
    """The full path of *name* as *obj*'s module sees it, or *name* itself."""
    head, _, rest = name.partition(".")
    scope: griffe.Object | None = obj
    while scope is not None:
        try:
            target = scope.resolve(head)
        except (griffe.NameResolutionError, AttributeError):
            scope = scope.parent
            continue
        return f"{target}.{rest}" if rest else target
    return name


def _roles(obj: griffe.Object, text: str) -> str:
    def link(match: re.Match[str]) -> str:
        short, name = match.group(1), match.group(2)
        shown = name.rsplit(".", 1)[-1] if short else name
        return f'<autoref identifier="{_resolve(obj, name)}" optional><code>{shown}</code></autoref>'

    return _ROLE.sub(link, text)


_BORDER = re.compile(r"^(?P<indent>[ \t]*)=+(?: +=+)+[ \t]*$")


def _tables(text: str) -> str:
    """reStructuredText simple tables (``====  ====`` borders) -> Markdown tables."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        border = _BORDER.match(lines[i])
        # A simple table: border, header row, border, rows, border.
        if not (border and i + 2 < len(lines) and _BORDER.match(lines[i + 2])):
            out.append(lines[i])
            i += 1
            continue
        spans = [(m.start(), m.end()) for m in re.finditer(r"=+", lines[i])]

        def cells(line: str, spans: list[tuple[int, int]] = spans) -> list[str]:
            bounds = [start for start, _ in spans[1:]] + [len(line) + 1]
            return [line[start:end].strip() for (start, _), end in zip(spans, bounds, strict=True)]

        rows = [cells(lines[i + 1])]
        i += 3
        while i < len(lines) and not _BORDER.match(lines[i]):
            if lines[i].strip():
                row = cells(lines[i])
                if row[0] or len(rows) == 1:
                    rows.append(row)
                else:  # a continuation line: the first column is blank
                    rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], row, strict=True)]
            i += 1
        i += 1  # the closing border
        indent = border["indent"]
        out.append(indent + "| " + " | ".join(rows[0]) + " |")
        out.append(indent + "|" + "---|" * len(spans))
        out.extend(indent + "| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows[1:])
    return "\n".join(out)


def _blocks(text: str) -> str:
    """``text::`` + indented block -> ``text:`` + code block; ``.. admonition::`` -> ``!!! note``."""
    out: list[str] = []
    for line in text.splitlines():
        directive = _DIRECTIVE.match(line)
        if directive:
            if directive["name"] in {"admonition", "note", "warning", "tip"}:
                kind = "warning" if directive["name"] == "warning" else "note"
                title = directive["arg"] or directive["name"].capitalize()
                out.append(f'{directive["indent"]}!!! {kind} "{title}"')
            # Other directives (autoclass, code-block, …) are Sphinx instructions with nothing to show here.
            continue
        literal = _LITERAL.match(line)
        if literal and not _FIELD.match(line):
            text_before = literal["text"].rstrip()
            if text_before:
                out.append(f"{literal['indent']}{text_before}:")
            continue
        out.append(line)
    return "\n".join(out)


class RstToMarkdown(griffe.Extension):
    """Rewrite every docstring of the loaded package once it is complete (names then resolve)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        self._walk(pkg, set())

    def _walk(self, obj: griffe.Object, seen: set[str]) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        if obj.docstring is not None:
            obj.docstring.value = _roles(obj, _blocks(_tables(obj.docstring.value)))
        for member in obj.members.values():
            if not member.is_alias:
                self._walk(member, seen)  # type: ignore[arg-type]
