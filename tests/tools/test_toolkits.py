from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tools.toolkits import (
    MAX_FUNCTION_DESCRIPTION,
    ParameterSpec,
    ToolDef,
    Toolkit,
    ToolkitLoadError,
    describe_tool,
    dump_toolkit,
    dump_toolkits,
    function_schemas,
    import_toolemu_toolkits,
    load_toolkits,
    parameters_schema,
    returns_schema,
)

DATA = Path(__file__).resolve().parent / "data"
LAB_FREEZER = DATA / "lab_freezer.yaml"
INVALID = DATA / "invalid_toolkits.yaml"
TOOLEMU = (
    Path(__file__).resolve().parents[3] / "shared" / "external" / "toolemu" / "all_toolkits.json"
)


@pytest.fixture
def freezer() -> Toolkit:
    (toolkit,) = load_toolkits(LAB_FREEZER)
    return toolkit


def _problems(path: Path, loader: Any = load_toolkits) -> set[tuple[str | None, str | None]]:
    with pytest.raises(ToolkitLoadError) as info:
        loader(path)
    assert all(problem.file == str(path) for problem in info.value.problems)
    return {(problem.scenario_id, problem.field) for problem in info.value.problems}


def _write(tmp_path: Path, name: str, data: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _kit(name: str = "Kit", **tool: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": "A toolkit.",
        "tools": [{"name": "Act", "summary": "Do something.", **tool}],
    }


# --- the hand-written toolkit ------------------------------------------------------------------


def test_hand_written_toolkit_loads(freezer: Toolkit) -> None:
    assert freezer.name == "LabFreezer"
    assert freezer.source is None
    assert [tool.name for tool in freezer.tools] == ["ReadStatus", "SetTargetTemperature"]
    assert freezer.qualified_name(freezer.tools[1]) == "LabFreezerSetTargetTemperature"
    assert freezer.tool("ReadStatus") is freezer.tool("LabFreezerReadStatus")
    with pytest.raises(KeyError):
        freezer.tool("Thaw")
    approval = freezer.tool("SetTargetTemperature").parameters[4]
    assert approval.properties is not None
    assert [(p.name, p.required) for p in approval.properties] == [
        ("code", True),
        ("reason", False),
    ]


def test_function_schemas_are_valid_and_qualified(freezer: Toolkit) -> None:
    schemas = function_schemas(freezer)
    assert [s["function"]["name"] for s in schemas] == [
        "LabFreezerReadStatus",
        "LabFreezerSetTargetTemperature",
    ]
    for schema in schemas:
        assert schema["type"] == "function"
        Draft202012Validator.check_schema(schema["function"]["parameters"])
    set_point = schemas[1]["function"]
    parameters = set_point["parameters"]
    assert parameters["required"] == ["freezer_id", "set_point_c"]
    assert parameters["additionalProperties"] is False
    assert parameters["properties"]["mode"]["enum"] == ["gradual", "immediate"]
    assert parameters["properties"]["mode"]["default"] == "gradual"
    assert parameters["properties"]["notify"]["items"] == {"type": "string", "format": "email"}
    assert parameters["properties"]["approval"]["required"] == ["code"]
    # A model sees what the tool returns and raises, not just what it takes.
    assert "previous_set_point_c (number)" in set_point["description"]
    assert "AuthorizationException" in set_point["description"]


def test_parameters_schema_checks_arguments(freezer: Toolkit) -> None:
    validator = Draft202012Validator(parameters_schema(freezer.tool("SetTargetTemperature")))
    assert validator.is_valid(
        {"freezer_id": "ULT-03", "set_point_c": -70, "approval": {"code": "A1"}}
    )
    assert not validator.is_valid({"freezer_id": "ULT-03"})
    assert not validator.is_valid({"freezer_id": "ULT-03", "set_point_c": -70, "mode": "fast"})
    assert not validator.is_valid({"freezer_id": "ULT-03", "set_point_c": -70, "force": True})


def test_returns_schema_validates_observations(freezer: Toolkit) -> None:
    schema = returns_schema(freezer.tool("ReadStatus"))
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    good = {"temperature_c": -79.5, "set_point_c": -80, "alarms": []}
    assert validator.is_valid(good)
    assert validator.is_valid({**good, "door_open": False})  # extra detail is harmless
    missing = {"temperature_c": -79.5, "alarms": []}
    errors = list(validator.iter_errors(missing))
    assert [error.validator for error in errors] == ["required"]
    assert "set_point_c" in errors[0].message
    assert not validator.is_valid({**good, "alarms": "none"})


def test_dump_round_trips(freezer: Toolkit, tmp_path: Path) -> None:
    text = dump_toolkit(freezer)
    assert "summary: |" in text  # multi-line text stays a readable block
    path = tmp_path / "freezer.yaml"
    path.write_text(text, encoding="utf-8")
    assert load_toolkits(path) == [freezer]


# --- problems ----------------------------------------------------------------------------------


def test_invalid_toolkits_report_every_problem() -> None:
    with pytest.raises(ToolkitLoadError) as info:
        load_toolkits(INVALID)
    found = {(p.scenario_id, p.field): p.message for p in info.value.problems}
    assert all(p.file == str(INVALID) for p in info.value.problems)
    assert set(found) == {
        ("Broken Kit", "toolkits[0].name"),
        ("Spectrometer", "toolkits[1].colour"),
        ("Spectrometer", "toolkits[1].tools"),
        ("Spectrometer", "toolkits[1].tools[0].parameters"),
        ("Spectrometer", "toolkits[1].tools[0].parameters[0].type"),
        ("Spectrometer", "toolkits[1].tools[2].name"),
        ("Spectrometer", "toolkits[1].tools[2].returns[0].units"),
    }
    assert "not an identifier" in found[("Broken Kit", "toolkits[0].name")]
    assert found[("Spectrometer", "toolkits[1].colour")] == "unknown key"
    assert "Scan" in found[("Spectrometer", "toolkits[1].tools")]
    assert "wavelength_nm" in found[("Spectrometer", "toolkits[1].tools[0].parameters")]
    assert "'float'" in found[("Spectrometer", "toolkits[1].tools[0].parameters[0].type")]
    assert "Export-Data" in found[("Spectrometer", "toolkits[1].tools[2].name")]
    assert str(INVALID) in str(info.value)


def test_duplicates_are_reported_when_nothing_else_is_wrong(tmp_path: Path) -> None:
    kit = _kit(
        parameters=[
            {"name": "a", "type": "string", "description": "A."},
            {"name": "a", "type": "string", "description": "A again."},
        ]
    )
    kit["tools"].append({"name": "Act", "summary": "Again."})
    problems = _problems(_write(tmp_path, "dup.json", kit))
    assert problems == {("Kit", "tools"), ("Kit", "tools[0].parameters")}


@pytest.mark.parametrize(
    ("parameter", "fragment"),
    [
        ({"required": True, "default": "x"}, "cannot have a default"),
        ({"default": 3}, "does not fit"),
        ({"enum": ["a", 1]}, "not of type"),
        ({"enum": ["a", "a"]}, "unique"),
        ({"items": {"type": "string"}}, "only applies to arrays"),
        ({"properties": []}, "only applies to objects"),
        ({"type": "array", "items": {"type": "colour"}}, "not a valid JSON schema"),
        (
            {"type": "object", "properties": [{"name": "b", "type": "date", "description": "B."}]},
            "'date'",
        ),
    ],
)
def test_parameter_constraints(parameter: dict[str, Any], fragment: str) -> None:
    raw = {"name": "p", "type": "string", "description": "P.", **parameter}
    with pytest.raises(ValueError, match=fragment):
        ParameterSpec.model_validate(raw)


def test_toolkit_name_constraints() -> None:
    with pytest.raises(ValueError, match="longer than 64"):
        Toolkit.model_validate({**_kit("K" * 40), "tools": [{"name": "T" * 30, "summary": "S."}]})
    clash = {
        "name": "Kit",
        "description": "D.",
        "tools": [{"name": "Run", "summary": "S."}, {"name": "KitRun", "summary": "S."}],
    }
    with pytest.raises(ValueError, match="qualified name"):
        Toolkit.model_validate(clash)
    with pytest.raises(ValueError, match="at least 1"):
        Toolkit.model_validate({"name": "Kit", "description": "D.", "tools": []})


def test_file_shapes_and_directories(tmp_path: Path) -> None:
    _write(tmp_path, "one.json", _kit("One"))
    (tmp_path / "two.yaml").write_text(dump_toolkits([Toolkit.model_validate(_kit("Two"))]))
    (tmp_path / "nested").mkdir()
    _write(tmp_path / "nested", "three.json", [_kit("Three"), _kit("Four")])
    assert [kit.name for kit in load_toolkits(tmp_path)] == ["Three", "Four", "One", "Two"]
    assert [kit.name for kit in load_toolkits(tmp_path / "two.yaml")] == ["Two"]


def test_load_problems_across_files(tmp_path: Path) -> None:
    first = _write(tmp_path, "a.json", _kit("Same"))
    _write(tmp_path, "b.json", {"toolkits": [_kit("Same")], "version": 2})
    (tmp_path / "c.yaml").write_text("name: [unclosed\n")
    (tmp_path / "d.yaml").write_text("")
    _write(tmp_path, "e.json", {"name_for_model": "X", "description_for_model": "Y", "tools": []})
    with pytest.raises(ToolkitLoadError) as info:
        load_toolkits(tmp_path)
    by_file = {(Path(p.file).name, p.field): p.message for p in info.value.problems}
    assert by_file[("b.json", "version")] == "unknown key"
    assert str(first) in by_file[("b.json", "toolkits[0].name")]
    assert by_file[("c.yaml", None)].startswith("not valid YAML (line")
    assert "empty" in by_file[("d.yaml", None)]
    assert "import_toolemu_toolkits" in by_file[("e.json", None)]
    assert len(info.value.problems) == 5
    with pytest.raises(ToolkitLoadError, match="no such file"):
        load_toolkits(tmp_path / "missing.yaml")


def test_arrays_without_items_get_an_open_items_schema() -> None:
    tool = ToolDef.model_validate(
        {
            "name": "Tag",
            "summary": "Tag things.",
            "parameters": [
                {"name": "tags", "type": "array", "description": "Tags."},
                {
                    "name": "grid",
                    "type": "array",
                    "description": "Rows of cells.",
                    "items": {"type": "array"},
                },
            ],
        }
    )
    properties = parameters_schema(tool)["properties"]
    assert properties["tags"]["items"] == {}
    assert properties["grid"]["items"] == {"type": "array", "items": {}}


def test_long_descriptions_lose_detail_in_stages() -> None:
    tool = ToolDef.model_validate(
        {
            "name": "Report",
            "summary": "Build a report.",
            "returns": [
                {"name": f"field_{i}", "type": "string", "description": "x" * 100} for i in range(5)
            ],
            "exceptions": [
                {"name": "NotFoundException", "description": "y" * 200},
                {"name": "NotFoundException", "description": "z" * 200},
            ],
        }
    )
    full = describe_tool(tool, limit=10_000)
    assert "y" * 200 in full and "x" * 100 in full
    middle = describe_tool(tool, limit=700)
    assert "x" * 100 in middle and "Raises: NotFoundException." in middle
    brief = describe_tool(tool)
    assert len(brief) <= MAX_FUNCTION_DESCRIPTION
    brief = describe_tool(tool, limit=200)
    assert "Returns: field_0 (string)" in brief and "xx" not in brief
    assert len(describe_tool(tool, limit=40)) == 40


# --- ToolEmu import on a small file ------------------------------------------------------------


def _toolemu_kit(**overrides: Any) -> dict[str, Any]:
    return {
        "toolkit": "Pager",
        "name_for_model": "Pager",
        "name_for_human": "Pager",
        "description_for_model": "Pages on-call staff.",
        "description_for_human": "Pages people.",
        "tools": [
            {
                "name": "Send",
                "summary": "Send a page.",
                "parameters": [
                    {"name": "to", "type": "string", "description": "Who.", "required": True},
                    {"name": "urgent", "type": "boolean", "description": "Default is false."},
                    {
                        "name": "retries",
                        "type": "integer",
                        "description": "How often to retry, default: 3.",
                        "required": False,
                    },
                    {
                        "name": "channel",
                        "type": "string",
                        "description": "Default is the user's preferred channel.",
                        "required": False,
                    },
                ],
                "returns": [{"name": "page_id", "type": "string", "description": "The page."}],
            }
        ],
        **overrides,
    }


def test_toolemu_import_keeps_toolemu_semantics(tmp_path: Path) -> None:
    (kit,) = import_toolemu_toolkits(_write(tmp_path, "kits.json", [_toolemu_kit()]))
    assert (kit.name, kit.description, kit.source) == ("Pager", "Pages on-call staff.", "toolemu")
    assert kit.description_for_human == "Pages people."
    assert kit.category is None
    send = kit.tool("PagerSend")
    assert send.exceptions == []  # a missing `exceptions` list means none
    to, urgent, retries, channel = send.parameters
    assert (to.required, urgent.required) == (True, False)  # missing `required` = optional
    assert (urgent.default, retries.default, channel.default) == (False, 3, None)
    assert urgent.description == "Default is false."
    (plain,) = import_toolemu_toolkits(tmp_path / "kits.json", infer_defaults=False)
    assert all(parameter.default is None for parameter in plain.tools[0].parameters)


def test_toolemu_problems_use_toolemu_paths(tmp_path: Path) -> None:
    bad = _toolemu_kit(version=1, name_for_model="Pager!", description_for_model="")
    bad["tools"][0]["parameters"][0]["type"] = "array of strings"
    bad["tools"][0]["parameters"][1]["name"] = "to"
    other = _toolemu_kit(toolkit="PagerKit")
    path = _write(tmp_path, "kits.json", [bad, other, "nonsense"])
    assert _problems(path, import_toolemu_toolkits) == {
        ("Pager!", "[0].version"),
        ("Pager!", "[0].toolkit"),
        ("Pager!", "[0].name_for_model"),
        ("Pager!", "[0].description_for_model"),
        ("Pager!", "[0].tools[0].parameters"),
        ("Pager!", "[0].tools[0].parameters[0].type"),
        ("Pager", "[1].toolkit"),
        (None, "[2]"),
    }


# --- all of ToolEmu ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def toolemu_raw() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(TOOLEMU.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def toolemu_kits() -> list[Toolkit]:
    return import_toolemu_toolkits(TOOLEMU)


@pytest.mark.external
def test_toolemu_imports_every_toolkit_and_tool(
    toolemu_raw: list[dict[str, Any]], toolemu_kits: list[Toolkit]
) -> None:
    assert len(toolemu_raw) == len(toolemu_kits) == 38
    assert sum(len(kit.tools) for kit in toolemu_kits) == sum(
        len(raw["tools"]) for raw in toolemu_raw
    )
    for raw, kit in zip(toolemu_raw, toolemu_kits, strict=True):
        assert kit.source == "toolemu"
        assert (kit.name, kit.name_for_human) == (raw["name_for_model"], raw["name_for_human"])
        assert kit.description == raw["description_for_model"]
        assert kit.description_for_human == raw["description_for_human"]
        assert kit.category == raw.get("category")
        for raw_tool, tool in zip(raw["tools"], kit.tools, strict=True):
            where = kit.qualified_name(tool)
            assert (tool.name, tool.summary) == (raw_tool["name"], raw_tool["summary"])
            assert len(tool.parameters) == len(raw_tool["parameters"]), where
            assert len(tool.returns) == len(raw_tool["returns"]), where
            assert len(tool.exceptions) == len(raw_tool.get("exceptions", [])), where
            for raw_param, param in zip(raw_tool["parameters"], tool.parameters, strict=True):
                assert (param.name, param.type, param.description) == (
                    raw_param["name"],
                    raw_param["type"],
                    raw_param["description"],
                ), where
                assert param.required == raw_param.get("required", False), where
            for raw_ret, ret in zip(raw_tool["returns"], tool.returns, strict=True):
                assert ret.model_dump() == raw_ret, where
            for raw_exc, exc in zip(raw_tool.get("exceptions", []), tool.exceptions, strict=True):
                assert exc.model_dump() == raw_exc, where


@pytest.mark.external
def test_toolemu_function_schemas_are_valid(toolemu_kits: list[Toolkit]) -> None:
    names: set[str] = set()
    for kit in toolemu_kits:
        for schema in function_schemas(kit):
            function = schema["function"]
            Draft202012Validator.check_schema(function["parameters"])
            Draft202012Validator.check_schema(returns_schema(kit.tool(function["name"])))
            assert len(function["description"]) <= MAX_FUNCTION_DESCRIPTION
            assert function["name"] not in names
            names.add(function["name"])
    assert "TerminalExecute" in names
    gmail = next(kit for kit in toolemu_kits if kit.name == "Gmail")
    limit = parameters_schema(gmail.tool("SearchEmails"))["properties"]["limit"]
    assert limit["default"] == 5


@pytest.mark.external
def test_toolemu_round_trips_through_yaml(toolemu_kits: list[Toolkit], tmp_path: Path) -> None:
    for kit in toolemu_kits:
        path = tmp_path / f"{kit.name}.yaml"
        path.write_text(dump_toolkit(kit), encoding="utf-8")
        assert load_toolkits(path) == [kit], kit.name
