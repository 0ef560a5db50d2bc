"""Pure text helpers the readers share: the bracket matcher, loose name folding and spelling
patterns, and decoding of escaped or XML-style values."""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

_SIG = re.compile(r"[\"'{}\[\]/]")
_STRING_END = {'"': re.compile(r'["\\]'), "'": re.compile(r"['\\]")}
_FOLD_PREFIXES = ("functions.", "default_api.", "tools.", "tool.", "function.", "functions:")
# Latin lookalikes (Cyrillic, Greek, IPA) that NFKC leaves alone; applied after casefold.
_HOMOGLYPHS = str.maketrans(
    "аеорсухіјѕԁһԛԝӏкмнтвьуαοριυνκτχεϲϳɑɡıℓ",
    "aeopcyxijsdhqwlkmhtbbyaopiuvktxecjagil",
)


def _bracket_end(
    text: str, pos: int, stop: int, closes: dict[int, tuple[int, int]]
) -> tuple[int, list[int]]:
    """End of the bracket opened at pos (-1 if not closed before stop) and the brackets still
    open at stop. Skips "..." and '...' strings and // and /* */ comments. Records in `closes`
    where each bracket passed on the way closes."""
    stack: list[int] = []
    i = pos
    while (m := _SIG.search(text, i, stop)) is not None:
        j, ch = m.start(), m.group()
        i = j + 1
        if ch in "\"'":
            pattern = _STRING_END[ch]
            while (e := pattern.search(text, i, stop)) is not None and e.group() == "\\":
                i = e.end() + 1
            if e is None:
                break
            i = e.end()
        elif ch == "/":  # a comment is skipped; a lone slash is text
            if text.startswith(("//", "/*"), j):
                k = text.find("\n" if text[j + 1] == "/" else "*/", j + 2, stop)
                i = stop if k < 0 else k + (1 if text[j + 1] == "/" else 2)
        elif ch in "{[":
            stack.append(j)
        elif stack:
            closes[stack.pop()] = (j + 1, j + 1)
            if not stack:
                return j + 1, []
    return -1, stack


def _skip_commas(text: str, pos: int, stop: int) -> int:
    while pos < stop and (text[pos].isspace() or text[pos] == ","):
        pos += 1
    return pos


def _fold(name: str) -> str:
    """A name as it compares loosely: no format characters (zero-width spaces, direction
    marks), NFKC, casefolded, Latin lookalike letters mapped, no surrounding space, no namespace
    prefix or surrounding punctuation, and no "_", "-" or inner white space (so camelCase,
    PascalCase and kebab-case spellings fold alike)."""
    name = "".join(ch for ch in name[:300] if unicodedata.category(ch) != "Cf")
    name = unicodedata.normalize("NFKC", name).casefold().translate(_HOMOGLYPHS).strip()
    for prefix in _FOLD_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    return re.sub(r"[\s\-_]+", "", re.sub(r"^\W+|\W+$", "", name))


def _spelling(name: str) -> str:
    """A pattern for `name` written with its words joined by "_", "-" or nothing (any case)."""
    words = [w for w in re.split(r"[_\-\s]+|(?<=[a-z0-9])(?=[A-Z])", name) if w]
    return "[_\\-]?".join(re.escape(w) for w in words)


def _unescape(text: str) -> str:
    try:
        value = json.loads(f'"{text}"')
    except (ValueError, RecursionError):
        return text
    return value if isinstance(value, str) else text


def _xml_value(value: str) -> Any:
    """A parameter value written XML-style: JSON other than a string is decoded; anything else
    is the string as written."""
    try:
        parsed = json.loads(value, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return value
    return value if isinstance(parsed, str) else parsed


def _no_constant(name: str) -> Any:
    raise ValueError(name)  # NaN, Infinity: keep the text
