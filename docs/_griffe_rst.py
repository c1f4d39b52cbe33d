"""A griffe extension: render the package's reStructuredText docstrings as Markdown for mkdocstrings.

The docstrings are written for Sphinx-style readers (``:class:`X```, ``Usage::``, ``.. admonition::``).
Rather than rewrite every docstring, the API reference translates those few constructs when it loads
the package: roles become optional cross-references (a link when the target is in the reference,
plain code otherwise, never a broken link), literal blocks become code blocks, and admonitions become
Material admonitions.
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
            obj.docstring.value = _roles(obj, _blocks(obj.docstring.value))
        for member in obj.members.values():
            if not member.is_alias:
                self._walk(member, seen)  # type: ignore[arg-type]
