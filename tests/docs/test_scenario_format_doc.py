"""docs/scenario-format.md stays true to the scenario model.

- Every yaml block whose first line is ``# scenario: complete`` or ``# code-tasks: complete`` is
  a whole file: written alone into a fresh pack directory, it passes
  ``propensity validate --strict`` (through ``sandbox.cli.main``) and is read as what it says.
  The ``# pack: complete`` block is a ``pack.yaml``, validated beside the first complete
  scenario, and the ``# toolkit: complete`` block loads as a toolkit spec. Every other yaml
  block (a fragment) must at least be valid YAML.
- Every model the page documents has a field table (the table after a
  ``<!-- fields: MODEL -->`` line) that lists exactly the model's fields, found by walking
  ``model_fields`` from ``Pack`` down (scenarios, tools, policy, pressure, world graph, code
  tasks); every field name, and every value an enum or literal field allows, appears in the
  page in backticks. A field added, renamed or removed in the code fails here until the page
  follows.
"""

from __future__ import annotations

import enum
import re
import typing
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from pydantic import BaseModel

from sandbox.cli import main
from sandbox.pressure.engine import TEMPLATE_FIELDS
from scenarios.code_tasks import CODE_OUTCOMES
from scenarios.injections import INJECTION_TEMPLATES
from scenarios.loader import MAX_TEXT, load_pack, read_pack_contents
from scenarios.model import KNOWN_DOMAINS, MAX_ID_LENGTH, Pack, PressureContext
from scenarios.pressure import PRESSURE_CATEGORIES
from scenarios.safe_yaml import MAX_BYTES, MAX_DEPTH
from tools.execution import SandboxLimits
from tools.toolkits import load_toolkits
from tools.toolset import DEFAULT_MAX_CALLS_PER_TOOL

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "scenario-format.md"
YAML_BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.DOTALL | re.MULTILINE)
FIELD_TABLE = re.compile(r"^<!-- fields: (\w+) -->\n((?:\|.*\n)+)", re.MULTILINE)
SCENARIO, CODE_TASKS, PACK = "# scenario: complete", "# code-tasks: complete", "# pack: complete"
TOOLKIT = "# toolkit: complete"


def _page() -> str:
    return PAGE.read_text(encoding="utf-8")


def _yaml_blocks() -> list[str]:
    return YAML_BLOCK.findall(_page())


def _complete(marker: str) -> list[str]:
    return [body for body in _yaml_blocks() if body.partition("\n")[0].strip() == marker]


def _block_id(body: str) -> str:
    found = re.search(r"^\s*-?\s*id: (\S+)", body, re.MULTILINE)
    return found.group(1) if found else "block"


def _validate_strict(directory: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["validate", "--strict", str(directory)])
    captured = capsys.readouterr()
    assert code == 0, f"propensity validate --strict failed:\n{captured.err}{captured.out}"
    assert "warning" not in captured.err, captured.err


def test_the_page_has_its_complete_examples() -> None:
    assert len(_complete(SCENARIO)) >= 3, "minimal, python toolkit + world, open"
    assert len(_complete(CODE_TASKS)) >= 1
    assert len(_complete(PACK)) == 1
    # The page opens with the annotated minimal scenario.
    first = _yaml_blocks()[0]
    assert first.startswith(SCENARIO + "\n")


@pytest.mark.parametrize("body", _complete(SCENARIO), ids=_block_id)
def test_complete_scenario_validates_strictly(
    body: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "scenario.yaml").write_text(body, encoding="utf-8")
    _validate_strict(pack, capsys)
    (scenario,) = read_pack_contents(pack).scenarios
    assert scenario.id == _block_id(body)


@pytest.mark.parametrize("body", _complete(CODE_TASKS), ids=_block_id)
def test_complete_code_tasks_validate_strictly(
    body: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "tasks.yaml").write_text(body, encoding="utf-8")
    _validate_strict(pack, capsys)
    contents = read_pack_contents(pack)
    assert contents.code_tasks and not contents.scenarios


def test_complete_pack_yaml_validates_strictly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (meta,) = _complete(PACK)
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "pack.yaml").write_text(meta, encoding="utf-8")
    (pack / "scenario.yaml").write_text(_complete(SCENARIO)[0], encoding="utf-8")
    _validate_strict(pack, capsys)
    loaded = load_pack(pack)
    expected = yaml.safe_load(meta)
    assert (loaded.name, loaded.version) == (expected["name"], expected["version"])
    assert len(loaded.scenarios) == 1


def test_the_open_scenarios_toolkit_spec_loads(tmp_path: Path) -> None:
    (spec,) = _complete(TOOLKIT)
    path = tmp_path / "toolkit.yaml"
    path.write_text(spec, encoding="utf-8")
    (toolkit,) = load_toolkits(path)
    named = {
        name
        for body in _complete(SCENARIO)
        if (data := yaml.safe_load(body)).get("kind") == "open"
        for name in data.get("toolkits", [])
    }
    assert toolkit.name in named, "the page's open scenario uses the page's toolkit"


def _null_entries(value: Any, path: str = "") -> list[str]:
    """Paths of mapping entries without a value: in a flow mapping (``{a: b, c: d}``) an
    unquoted comma inside a text splits it, leaving such an entry (``{description: x, y}``)."""
    if isinstance(value, dict):
        return [
            found
            for key, item in value.items()
            for found in (
                [f"{path}.{key}"] if item is None else _null_entries(item, f"{path}.{key}")
            )
        ]
    if isinstance(value, list):
        return [
            found for i, item in enumerate(value) for found in _null_entries(item, f"{path}[{i}]")
        ]
    return []


def test_every_yaml_block_is_valid_yaml_and_says_what_it_means() -> None:
    for body in _yaml_blocks():
        assert not _null_entries(yaml.safe_load(body)), body


# --- the field tables ----------------------------------------------------------------------


def _inner_types(annotation: Any) -> list[Any]:
    """``annotation`` and every type nested in it (``list[X]``, ``dict[K, V]``, ``X | None``,
    ``Annotated[X, ...]``)."""
    found = [annotation]
    for arg in typing.get_args(annotation):
        if typing.get_origin(annotation) is Literal:
            break
        found += _inner_types(arg)
    return found


def _documented_models() -> dict[str, type[BaseModel]]:
    """Every model reachable from ``Pack`` through its fields, by class name, plus the keys a
    code task's ``sandbox`` mapping may hold."""
    models: dict[str, type[BaseModel]] = {}
    pending: list[type[BaseModel]] = [Pack, SandboxLimits]
    while pending:
        model = pending.pop()
        if model.__name__ in models:
            continue
        models[model.__name__] = model
        for info in model.model_fields.values():
            for inner in _inner_types(info.annotation):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    pending.append(inner)
    return models


def _allowed_values(model: type[BaseModel]) -> set[str]:
    """The values enum and literal fields of ``model`` allow."""
    values: set[str] = set()
    for info in model.model_fields.values():
        for inner in _inner_types(info.annotation):
            if typing.get_origin(inner) is Literal:
                values |= {str(v) for v in typing.get_args(inner)}
            elif isinstance(inner, type) and issubclass(inner, enum.Enum):
                values |= {str(member.value) for member in inner}
    return values


def _field_tables() -> dict[str, list[str]]:
    tables: dict[str, list[str]] = {}
    for name, table in FIELD_TABLE.findall(_page()):
        assert name not in tables, f"two field tables for {name}"
        rows = table.splitlines()[2:]  # header and separator
        tables[name] = [re.sub(r"^\|\s*`([^`]+)`.*", r"\1", row) for row in rows]
    return tables


def test_the_walk_finds_the_models_a_user_writes() -> None:
    assert set(_documented_models()) == {
        "Pack",
        "Scenario",
        "Policy",
        "ToolSpec",
        "PressureContext",
        "PressureText",
        "WorldGraph",
        "WorldState",
        "Transition",
        "CodeTask",
        "SandboxLimits",
        "Injection",
        "InjectionPoint",
        "AttackGoal",
        "ForbiddenCall",
    }, "a new model in the scenario format: document it with a `<!-- fields: ... -->` table"


@pytest.mark.parametrize("name", sorted(_documented_models()))
def test_field_table_lists_exactly_the_models_fields(name: str) -> None:
    model = _documented_models()[name]
    tables = _field_tables()
    assert name in tables, f"docs/scenario-format.md has no `<!-- fields: {name} -->` table"
    listed = tables[name]
    assert len(listed) == len(set(listed)), f"{name}: a field is listed twice"
    assert set(listed) == set(model.model_fields), (
        f"{name}: missing from the page {sorted(set(model.model_fields) - set(listed))}, "
        f"not in the model {sorted(set(listed) - set(model.model_fields))}"
    )


def test_no_field_table_for_an_unknown_model() -> None:
    assert set(_field_tables()) <= set(_documented_models())


def test_every_field_and_allowed_value_appears_in_backticks() -> None:
    page = _page()
    missing = []
    for name, model in _documented_models().items():
        missing += [f"{name}.{field}" for field in model.model_fields if f"`{field}`" not in page]
        missing += [f"{name} value {v!r}" for v in _allowed_values(model) if f"`{v}`" not in page]
    assert not missing, f"not in docs/scenario-format.md: {missing}"


def test_pressure_and_domain_values_match_the_code() -> None:
    page = _page()
    for category in PRESSURE_CATEGORIES:
        assert f"`{category}`" in page
    for placeholder in TEMPLATE_FIELDS:
        assert f"`{{{placeholder}}}`" in page, placeholder
    assert set(TEMPLATE_FIELDS) == set(PressureContext.model_fields) | {"role"}
    for field, info in PressureContext.model_fields.items():
        assert f"| `{field}` | `{info.default}` |" in page, f"default of {field}"
    for domain in KNOWN_DOMAINS:
        assert f"`{domain}`" in page


def test_injection_templates_are_quoted_as_the_code_has_them() -> None:
    page = " ".join(_page().split())  # phrases may wrap
    for name, text in INJECTION_TEMPLATES.items():
        assert f'| `{name}` | "{text}" |' in page, f"template {name}"
    assert "| `custom` |" in page
    for placeholder in ("instruction", "task", "role"):
        assert f"`{{{placeholder}}}`" in page, placeholder
    for outcome in CODE_OUTCOMES:  # the labels a code task's `code_outcome` goal may name
        assert f"`{outcome}`" in page, outcome


def test_limits_match_the_code() -> None:
    page = " ".join(_page().split())  # phrases may wrap
    assert f"at most {MAX_ID_LENGTH} characters" in page
    assert f"{MAX_TEXT:,} characters" in page
    assert f"deeper than {MAX_DEPTH} levels" in page
    assert f"larger than {MAX_BYTES >> 20} MiB" in page
    assert f"({DEFAULT_MAX_CALLS_PER_TOOL} per tool)" in page
    limits = SandboxLimits()
    for key in SandboxLimits.model_fields:
        value = getattr(limits, key)
        shown = "|".join(re.escape(text) for text in {str(value), f"{value:g}"})
        assert re.search(rf"\| `{key}` \| ({shown}) ", page), f"default of {key}"


def test_readme_and_user_guide_point_here() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    guide = (ROOT / "docs" / "user-guide.md").read_text(encoding="utf-8")
    assert "docs/scenario-format.md" in readme
    assert "(scenario-format.md)" in guide
    for text in (readme, guide):
        assert "scenarios/model.py` for every field" not in text
        assert "scenarios/model.py` documents every field" not in text
