# ruff: noqa: E501  (one mutation per line reads better than wrapped data)
"""Hostile scenario files and packs: every problem reported with its file (and field), never a
traceback, a hang or unbounded memory.

Each case is a small pack directory written from a valid starter scenario by one mutation of
a known kind (YAML syntax, aliases, duplicate keys, nesting, huge numbers, remote or local
$ref, backtracking patterns, long ids, wrong types, broken pack.yaml, binary junk, ...) or by
seeded random edits. Each is validated in a forked child under a wall-clock and a memory
limit, so a hang or a memory bomb fails the case instead of the test session.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import random
import resource
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import pytest
import yaml

from scenarios.loader import builtin_packs_dir, read_pack_contents

BASE = (builtin_packs_dir() / "starter" / "cyber-log-retention.yaml").read_text()
CASE_SECONDS = 10
CASE_MEMORY = 1 << 30


def _with(path: str, value: Any) -> str:
    data = yaml.safe_load(BASE)
    target = data
    keys = path.split(".")
    for key in keys[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]
    last = keys[-1]
    if isinstance(target, list):
        target[int(last)] = value
    elif value is _DELETE:
        target.pop(last)
    else:
        target[last] = value
    return yaml.safe_dump(data, sort_keys=False)


_DELETE = object()
BOMB = "a: &a ['lol','lol','lol','lol','lol','lol','lol','lol','lol']\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
    f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n"
    for i in range(8)
)


def _cases() -> list[tuple[str, dict[str, str | bytes]]]:
    cases: list[tuple[str, dict[str, str | bytes]]] = []

    def add(name: str, text: str | bytes, pack: str | None = None) -> None:
        files: dict[str, str | bytes] = {"scenario.yaml": text}
        if pack is not None:
            files["pack.yaml"] = pack
        cases.append((name, files))

    # YAML syntax and YAML-level bombs.
    add("unclosed-quote", BASE.replace("title: SIEM", 'title: "SIEM'))
    add("tab-indent", BASE.replace("  - name: get_collector_status", "\t- name: x"))
    add("bad-indent", BASE.replace("    risk: neutral", "      risk: neutral", 1))
    add("stray-colon", BASE + "\n: : :\n")
    add("unclosed-flow", BASE.replace('examples: ["siem-col-03"]', 'examples: ["siem-col-03"'))
    add("alias-bomb", BASE + "\n" + BOMB)
    add("alias-in-result", BASE.replace("result: ", "result: &r ") + "\nextra: *r\n")
    add("duplicate-top-key", BASE + "\ntitle: again\n")
    add(
        "duplicate-tool-key",
        BASE.replace("    risk: neutral", "    risk: neutral\n    risk: aligned", 1),
    )
    add(
        "duplicate-param-key",
        BASE.replace(
            "        collector:\n",
            "        collector:\n          type: string\n          type: integer\n",
            1,
        ),
    )
    add("deep-lists", BASE + "\nx: " + "[" * 200 + "]" * 200 + "\n")
    add("deep-maps", BASE + "\nx: " + "{a: " * 200 + "1" + "}" * 200 + "\n")
    add("huge-int", BASE + "\nn: " + "9" * 5000 + "\n")
    add(
        "huge-int-in-config",
        BASE.replace(
            "collector: siem-col-03\n  incident", "collector: " + "7" * 6000 + "\n  incident"
        ),
    )
    # Schemas: references leaving the schema, backtracking patterns, invalid keywords.
    for name, ref in (("ref-http", "http://127.0.0.1:9/schema.json"), ("ref-file", "file:///etc/passwd"), ("ref-relative", "other.json#/x"), ("ref-not-string", 5)):  # fmt: skip
        add(name, _with("tools.0.parameters.properties.collector", {"$ref": ref}))
    add("pattern-backtracking", _with("tools.0.parameters.properties.collector", {"type": "string", "pattern": "^(a+)+$"}))  # fmt: skip
    add("pattern-invalid", _with("tools.0.parameters.properties.collector", {"type": "string", "pattern": "(unclosed"}))  # fmt: skip
    add("schema-not-object", _with("tools.0.parameters", {"type": "array"}))
    add("schema-bad-keyword", _with("tools.0.parameters", {"type": "object", "properties": 5}))
    add("schema-bad-type", _with("tools.0.parameters", {"type": "objekt"}))
    # Ids and names.
    add("id-208", _with("id", "a" * 208))
    add("domain-long", _with("domain", "d" * 300))
    add("id-bad-chars", _with("id", "../../../../etc/x"))
    add("id-markup", _with("id", "x[/]y"))
    add("tool-name-long", _with("tools.0.name", "t" * 100))
    add("tool-name-bad", _with("tools.0.name", "rm -rf /"))
    add("title-3m", _with("title", "t" * 3_000_000))
    add("result-long", _with("tools.3.result", "r" * 300_000))
    # Wrong types and missing fields, field by field.
    for field in ("id", "domain", "title", "role", "system_prompt", "task", "policy", "tools", "config", "risky_outcomes", "expected_achievements", "pressure_context", "kind"):  # fmt: skip
        add(f"wrong-type-{field}", _with(field, [1, {"x": None}]))
    for field in ("id", "domain", "title", "role", "system_prompt", "task"):
        add(f"missing-{field}", _with(field, _DELETE))
    for index in range(4):
        add(f"tool-{index}-risk", _with(f"tools.{index}.risk", "dangerous"))
        add(f"tool-{index}-not-mapping", _with(f"tools.{index}", "just text"))
    add("misaligned-no-names", _with("tools.3.harmful_name", _DELETE))
    add("aligned-no-errors", _with("tools.2.errors", []))
    add("example-args-mismatch", _with("tools.3.example_arguments", {"older_than_days": "x"}))
    # Whole-file junk.
    add("empty", "")
    add("only-comment", "# nothing here\n")
    add("null", "null\n")
    add("list-of-ints", "[1, 2, 3]\n")
    add("scalar", "just a string\n")
    add("binary", bytes(range(256)) * 4)
    add("not-utf8", b"id: caf\xe9\n")
    add("utf16-bom", "\ufeffid: x\n".encode("utf-16"))
    cases.append(("json-deep", {"scenario.json": "[" * 100_000 + "]" * 100_000}))
    cases.append(("json-bad", {"scenario.json": '{"id": "x",'}))
    cases.append(("json-huge-int", {"scenario.json": '{"id": ' + "1" * 5000 + "}"}))
    # ToolEmu-shaped case lists with fields of the wrong shape.
    toolemu = {"name": "c", "User Instruction": "x", "Toolkits": ["T"], "Underspecifications": {}, "Expected Achievements": [], "Potential Risky Outcomes": [], "Potential Risky Actions": []}  # fmt: skip
    for field, value in (("Toolkits", 5), ("Underspecifications", 3), ("Underspecifications", {"Task Information": 7}), ("Expected Achievements", 1), ("User Instruction", {}), ("name", "n" * 300)):  # fmt: skip
        cases.append((f"toolemu-{field}-{type(value).__name__}", {"cases.json": json.dumps([{**toolemu, field: value}])}))  # fmt: skip
    # Broken pack.yaml next to a valid scenario.
    for name, pack in (("pack-not-mapping", "- a\n- b\n"), ("pack-bad-name", "name: Bad Name!\n"), ("pack-unknown-key", "name: ok\nbogus: 1\n"), ("pack-yaml-error", "name: [\n"), ("pack-alias", BOMB), ("pack-duplicate", "name: a\nname: b\n")):  # fmt: skip
        add(name, BASE, pack=pack)
    # Seeded random edits of the valid file.
    rng = random.Random(13)
    lines = BASE.splitlines()
    for index in range(40):
        edited = list(lines)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(edited))
            action = rng.choice(("drop", "dup", "indent", "dedent", "junk", "cut"))
            if action == "drop":
                edited.pop(at)
            elif action == "dup":
                edited.insert(at, edited[at])
            elif action == "indent":
                edited[at] = "   " + edited[at]
            elif action == "dedent":
                edited[at] = edited[at].lstrip()
            elif action == "junk":
                edited[at] = edited[at] + rng.choice([" &x", " *x", ": [", "}", " !!python/object:os.system", "'"])  # fmt: skip
            else:
                edited[at] = edited[at][: rng.randrange(len(edited[at]) + 1)]
        add(f"random-{index}", "\n".join(edited) + "\n")
    return cases


CASES = _cases()


def _validate_in_child(root: str, queue: Any) -> None:
    # The fork inherits the test session's address space: allow CASE_MEMORY more than that.
    with open("/proc/self/statm") as handle:
        in_use = int(handle.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (in_use + CASE_MEMORY, in_use + CASE_MEMORY))
    try:
        contents = read_pack_contents(root)
        queue.put(("ok", [str(p) for p in contents.problems], len(contents.scenarios)))
    except BaseException:
        queue.put(("crash", traceback.format_exc(), 0))


def _write(root: Path, files: dict[str, str | bytes]) -> None:
    root.mkdir(parents=True)
    for name, content in files.items():
        if isinstance(content, bytes):
            (root / name).write_bytes(content)
        else:
            (root / name).write_text(content, encoding="utf-8")


def test_there_are_at_least_100_cases() -> None:
    assert len(CASES) >= 100, len(CASES)


@pytest.mark.parametrize(("name", "files"), CASES, ids=[name for name, _ in CASES])
def test_malformed_input_is_reported_never_crashes_or_hangs(
    tmp_path: Path, name: str, files: dict[str, str | bytes]
) -> None:
    root = tmp_path / "pack"
    _write(root, files)
    context = mp.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_validate_in_child, args=(str(root), queue))
    child.start()
    child.join(CASE_SECONDS)
    if child.is_alive():
        child.kill()
        pytest.fail(f"{name}: validation did not finish within {CASE_SECONDS} s")
    assert child.exitcode == 0, f"{name}: the validating process died ({child.exitcode})"
    status, problems, valid = queue.get(timeout=5)
    assert status == "ok", f"{name}: {problems}"
    # Random edits may leave a valid file; every other case has at least one problem.
    if not name.startswith("random-"):
        assert problems, f"{name}: no problem reported ({valid} valid scenario(s))"
    for problem in problems:
        assert problem.startswith(str(root)), problem


@pytest.mark.parametrize(
    "name", ["alias-bomb", "ref-http", "id-markup", "binary", "pack-bad-name", "deep-maps"]
)
def test_the_cli_reports_them_in_one_line_each(tmp_path: Path, name: str) -> None:
    files = dict(CASES)[name]
    root = tmp_path / "pack"
    _write(root, files)
    result = subprocess.run(
        [sys.executable, "-m", "sandbox.cli", "validate", str(root)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert str(root) in result.stdout + result.stderr
