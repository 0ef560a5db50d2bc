"""docs/architecture.md and the README's layout section match the tree: every path they name
exists, and every package of the project is named in both."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "architecture.md"
LAYERS = ("scenarios", "tools", "evaluators", "sandbox")


def _packages() -> list[str]:
    """Every package directory below the layers (``sandbox/runtime/``, ``tools/toolkits/`` ...)."""
    return sorted(
        str(init.parent.relative_to(ROOT)) + "/"
        for layer in LAYERS
        for init in (ROOT / layer).rglob("__init__.py")
        if init.parent != ROOT / layer and "__pycache__" not in init.parts
    )


def _named_paths(text: str) -> set[str]:
    return set(re.findall(r"`([a-z_]+/(?:[a-z_]+/)*(?:[a-z_]+\.py)?)`", text))


def test_every_path_the_page_names_exists() -> None:
    text = PAGE.read_text()
    rows = re.findall(r"^\| `([a-z_/]+)` \|", text, re.MULTILINE)
    assert "sandbox/runtime/" in rows and "sandbox/results/" in rows
    for path in _named_paths(text):
        candidates = [ROOT / path] + [ROOT / row / path for row in rows if row.endswith("/")]
        assert any(c.exists() for c in candidates), f"docs/architecture.md names {path!r}"


def test_every_sandbox_package_is_on_the_page_and_in_the_readme() -> None:
    page = PAGE.read_text()
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("## Layout") :]
    top = [p for p in _packages() if p.count("/") == 2 and p.startswith("sandbox/")]
    assert len(top) >= 9
    for package in top:
        assert f"`{package}`" in page, f"docs/architecture.md does not name {package}"
        short = package.removeprefix("sandbox/")
        assert f"`{short}`" in layout, f"the README's layout does not name {short}"
