"""Reading a tool method's Google-style docstring with `docstring_parser` (as Inspect AI does).

The docstring is the agent's only description of a tool, so this module is strict where the
parser is lenient: every entry needs a name and a description, and a line it cannot read is
reported (naming the method and section) instead of being dropped.

Sections: `Args:` (also `Arguments:`, `Parameters:`, `Params:`), `Returns:` (`Return:`), and
`Raises:` (`Exceptions:`, `Except:`); each entry is `name (type): description`, where the type
is optional and continuation lines are indented further. `Note:`, `Example:` and similar
sections are recognised so their text is never taken for the summary, and otherwise ignored.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field

from docstring_parser import DocstringMeta, ParseError
from docstring_parser.google import DEFAULT_SECTIONS, GoogleParser, Section, SectionType

__all__ = ["DocEntry", "ParsedDocstring", "paragraphs", "parse_docstring"]

_KINDS = {"param": "args", "returns": "returns", "raises": "raises"}
_TITLES = {"args": "Args", "returns": "Returns", "raises": "Raises"}
_IGNORED = ("Note", "Notes", "Warning", "Warnings", "See Also", "See also", "Todo", "To do")
# `name` or `name (type)`, the part of an entry before its colon.
_HEAD = re.compile(r"^(\w+)\s*(?:\(([^)]*)\))?$")


def _sections() -> list[Section]:
    """docstring_parser's Google sections, adjusted to the toolkit format.

    `Returns:` is MULTIPLE here (one `name (type): description` entry per key of the returned
    object) where docstring_parser reads it as a single free-text entry by default. Titles
    are matched whatever their case (`args:`, `ARGS:`), as authors write them both ways.
    """
    sections = [s for s in DEFAULT_SECTIONS if s.key != "returns"]
    sections.append(Section("Returns", "returns", SectionType.MULTIPLE))
    sections.append(Section("Return", "returns", SectionType.MULTIPLE))
    sections.extend(Section(title, "ignored", SectionType.SINGULAR) for title in _IGNORED)
    variants = {
        variant: section
        for section in sections
        for variant in (section.title, section.title.lower(), section.title.upper())
    }
    return [Section(title, s.key, s.type) for title, s in variants.items()]


class _Parser(GoogleParser):
    """GoogleParser whose entry errors name the section and the line, for the toolkit author."""

    def _build_meta(self, text: str, title: str) -> DocstringMeta:
        try:
            return super()._build_meta(text, title)
        except ParseError:
            line = text.strip().splitlines()[0] if text.strip() else text
            raise ParseError(
                f"cannot read the {_TITLES.get(self.sections[title].key, title)} line "
                f"{line!r} (expected 'name: description')"
            ) from None


_PARSER = _Parser(_sections())


@dataclass
class DocEntry:
    """One `name (type): description` entry; `type` is None when the entry states none."""

    name: str
    type: str | None
    description: str


@dataclass
class ParsedDocstring:
    """The summary paragraphs and the entries of the Args/Returns/Raises sections, in order.

    `readable` is False when the docstring could not be parsed at all (the problem is already
    reported), so that callers do not add a missing-description problem for every parameter.
    """

    paragraphs: list[str]
    sections: dict[str, list[DocEntry]] = field(default_factory=dict)
    readable: bool = True

    @property
    def summary(self) -> str:
        return self.paragraphs[0] if self.paragraphs else ""


def paragraphs(text: str) -> list[str]:
    """Paragraphs with their line breaks unwrapped: docstring wrapping is not meant for models."""
    found: list[str] = []
    current: list[str] = []
    for line in [*inspect.cleandoc(text).splitlines(), ""]:
        if line.strip():
            current.append(line.strip())
        elif current:
            found.append(" ".join(current))
            current = []
    return found


def _unwrap(text: str | None) -> str:
    return " ".join(line.strip() for line in (text or "").splitlines() if line.strip())


def parse_docstring(doc: str, where: str, problems: list[str]) -> ParsedDocstring:
    """The docstring's summary and sections; what is wrong is appended to `problems`.

    Every problem starts with `where` (the method's qualified name). A docstring that cannot
    be read at all gives an empty ParsedDocstring with one problem saying why.
    """
    empty = ParsedDocstring([], {kind: [] for kind in _TITLES}, readable=False)
    if _PARSER.titles_re.match(inspect.cleandoc(doc)):
        # A section title on the first line: cleandoc then dedents the section's entries to
        # the title's level, which the parser cannot read; the missing summary is the cause.
        problems.append(f"{where}: the docstring needs a summary paragraph before its sections")
        return empty
    try:
        parsed = _PARSER.parse(doc)
    except ParseError as exc:
        message = str(exc)
        if not message.startswith("cannot read"):
            message = f"cannot read the docstring: {message}"
        problems.append(f"{where}: {message}")
        return empty
    result = ParsedDocstring(
        paragraphs(parsed.description or ""), {section: [] for section in _TITLES}
    )
    for meta in parsed.meta:
        section = _KINDS.get(meta.args[0]) if meta.args else None
        if section is None:
            continue  # an ignored section (Note:, Example:, ...)
        head = (meta.args[1] if len(meta.args) > 1 else "").strip()
        match = _HEAD.match(head)
        if match is None:
            problems.append(
                f"{where}: cannot read the {_TITLES[section]} line {head!r} "
                "(expected 'name: description')"
            )
            continue
        stated = match.group(2).strip() if match.group(2) else None
        entry = DocEntry(match.group(1), stated, _unwrap(meta.description))
        result.sections[section].append(entry)
    for kind, title in _TITLES.items():
        entries = result.sections[kind]
        names = [entry.name for entry in entries]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated and kind != "raises":  # one Raises entry per cause is allowed, as in ToolEmu
            problems.append(f"{where}: {title} lists {', '.join(repeated)} more than once")
        for entry in entries:
            if not entry.description:
                problems.append(f"{where}: {title} entry {entry.name!r} has no description")
    return result
