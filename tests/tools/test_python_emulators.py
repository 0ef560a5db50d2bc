from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Iterator
from typing import Any, Literal

import pytest
from jsonschema import Draft202012Validator

from scenarios.records import Naming, RiskLabel, ToolCall, ToolErrorKind, ToolResult
from tools.protocol import Tool, ToolContext
from tools.python_emulators import (
    BankLedger,
    Inbox,
    PythonToolkit,
    ToolError,
    VirtualFileSystem,
    load_entry_points,
    python_toolkits,
    register_toolkit,
    tool,
    unregister_toolkit,
)
from tools.toolkits import Toolkit, function_schemas, parameters_schema
from tools.toolset import ToolSet

SHIPPED = [VirtualFileSystem, BankLedger, Inbox]


def _ctx(episode: str = "e") -> ToolContext:
    return ToolContext(episode_id=episode, scenario=None, naming=Naming.HARMFUL)


class Session:
    """A ToolSet and one episode's context, calling tools the way the episode loop does."""

    def __init__(self, toolset: ToolSet, ctx: ToolContext | None = None) -> None:
        self.toolset = toolset
        self.ctx = ctx or _ctx()
        self.calls = 0

    async def call(self, name: str, **arguments: Any) -> ToolResult:
        self.calls += 1
        call = ToolCall(id=f"c{self.calls}", name=name, arguments=arguments)
        return await self.toolset.execute(call, self.ctx)

    async def ok(self, name: str, **arguments: Any) -> Any:
        result = await self.call(name, **arguments)
        assert result.ok, result.output
        return json.loads(result.output)

    async def error(self, name: str, **arguments: Any) -> str:
        result = await self.call(name, **arguments)
        assert not result.ok, result.output
        assert result.error_kind is ToolErrorKind.TOOL_ERROR
        error = json.loads(result.output)["error"]
        assert isinstance(error["message"], str) and error["message"]
        return str(error["name"])


def _session(kit: type[PythonToolkit], seed: dict[str, Any] | None = None) -> Session:
    return Session(ToolSet(kit.tools(seed), default_max_calls=None))


# --- specs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kit", SHIPPED, ids=lambda kit: kit.name)
def test_shipped_specs_validate_and_schemas_are_valid(kit: type[PythonToolkit]) -> None:
    spec = kit.spec()
    assert Toolkit.model_validate(spec.model_dump()) == spec
    for schema in function_schemas(spec):
        Draft202012Validator.check_schema(schema["function"]["parameters"])
        assert schema["function"]["description"]
    assert python_toolkits()[spec.name] is kit
    tools = kit.tools()
    assert [t.name for t in tools] == [spec.qualified_name(t) for t in spec.tools]
    for built in tools:
        assert isinstance(built, Tool)
        assert built.tool_id == built.name
        assert built.risk is RiskLabel.NEUTRAL
        assert built.max_calls is None


def test_spec_comes_from_signature_and_docstring() -> None:
    spec = BankLedger.spec()
    assert spec.description.startswith("Accounts and transfers")
    transfer = spec.tool("Transfer")
    assert spec.qualified_name(transfer) == "BankLedgerTransfer"
    assert transfer.summary.startswith("Move money")
    params = {p.name: p for p in transfer.parameters}
    assert params["amount"].type == "number" and params["amount"].required
    assert params["memo"].default == "" and not params["memo"].required
    assert params["from_account"].description == "account to debit"
    assert {r.name: r.type for r in transfer.returns}["balance"] == "number"
    assert "InsufficientFunds" in {e.name for e in transfer.exceptions}
    schema = parameters_schema(VirtualFileSystem.spec().tool("ListDirectory"))
    assert schema["required"] == [] and schema["properties"]["path"]["default"] == "."
    send = parameters_schema(Inbox.spec().tool("SendMessage"))
    assert send["properties"]["to"] == {
        "type": "array",
        "description": "recipients' email addresses",
        "items": {"type": "string"},
    }
    assert send["required"] == ["to", "subject", "body"]


def test_spec_is_a_copy() -> None:
    BankLedger.spec().tools.clear()
    assert BankLedger.spec().tools


# --- state -------------------------------------------------------------------------------------


async def test_state_persists_within_an_episode_and_never_leaks_across() -> None:
    toolset = ToolSet(VirtualFileSystem.tools({"files": {}}))
    first, second = Session(toolset, _ctx("a")), Session(toolset, _ctx("b"))
    await first.ok("VirtualFileSystemWriteFile", path="/tmp/x.txt", content="hello")
    assert (await first.ok("VirtualFileSystemReadFile", path="/tmp/x.txt"))["content"] == "hello"
    assert await second.error("VirtualFileSystemReadFile", path="/tmp/x.txt") == "FileNotFound"
    assert VirtualFileSystem.world_of(second.ctx) == {
        "cwd": "/home/ops",
        "files": {},
        "directories": ["/home/ops/archive", "/tmp"],
        "read_only": ["/etc"],
    }


async def test_episodes_do_not_share_the_default_world() -> None:
    first, second = _session(BankLedger), _session(BankLedger)
    await first.ok("BankLedgerFreezeAccount", account_id="GFP-2290", reason="audit")
    assert (await second.ok("BankLedgerGetBalance", account_id="GFP-2290"))["frozen"] is False
    again = await first.ok("BankLedgerFreezeAccount", account_id="GFP-2290", reason="again")
    assert again["changed"] is False


async def test_seed_overrides_the_default_world() -> None:
    seed = {"accounts": {"A": {"holder": "Kit Ltd", "balance": 5}}}
    session = _session(BankLedger, seed)
    listed = await session.ok("BankLedgerListAccounts")
    assert [a["account_id"] for a in listed["accounts"]] == ["A"]
    assert seed == {"accounts": {"A": {"holder": "Kit Ltd", "balance": 5}}}


async def test_result_data_records_change_and_summary() -> None:
    session = _session(BankLedger)
    read = await session.call("BankLedgerGetBalance", account_id="TWS-0417")
    assert read.data["changed"] is False
    moved = await session.call(
        "BankLedgerTransfer", from_account="HLX-OPS-0001", to_account="TWS-0417", amount=10
    )
    assert moved.data["changed"] is True
    assert moved.data["world_after"]["balances"]["TWS-0417"] == 2320.50
    assert "missing_returns" not in moved.data


# --- errors ------------------------------------------------------------------------------------


async def test_declared_errors_are_error_results() -> None:
    session = _session(BankLedger)
    assert await session.error("BankLedgerGetBalance", account_id="NOPE") == "AccountNotFound"
    result = await session.call("BankLedgerGetBalance", account_id="NOPE")
    assert result.risk is RiskLabel.NEUTRAL and result.tool_id == "BankLedgerGetBalance"
    assert result.data["error"] == "AccountNotFound"
    assert "undeclared_exception" not in result.data


async def test_bad_argument_types_are_rejected_before_the_method_runs() -> None:
    session = _session(BankLedger)
    result = await session.call(
        "BankLedgerTransfer", from_account="HLX-OPS-0001", to_account="TWS-0417", amount="100"
    )
    assert result.error_kind is ToolErrorKind.BAD_ARGUMENTS
    missing = await session.call("BankLedgerTransfer", from_account="HLX-OPS-0001")
    assert missing.error_kind is ToolErrorKind.BAD_ARGUMENTS
    extra = await session.call("BankLedgerGetBalance", account_id="A", typo=1)
    assert extra.error_kind is ToolErrorKind.BAD_ARGUMENTS
    assert BankLedger.world_of(session.ctx) is None  # nothing reached the toolkit


class Flaky(PythonToolkit):
    """A toolkit whose tools fail in every way a toolkit can."""

    name = "Flaky"

    def initial_state(self, seed: dict[str, Any]) -> dict[str, Any]:
        if seed.get("explode"):
            raise RuntimeError("the seed is broken")
        return {"count": 0, **seed}

    @tool
    def crash(self, divisor: int) -> dict[str, Any]:
        """Divide after changing the world.

        Args:
            divisor: number to divide by
        """
        self.state["count"] += 1
        return {"value": 1 / divisor}

    @tool
    def surprise(self) -> dict[str, Any]:
        """Raise an exception the docstring does not declare.

        Raises:
            Declared: the declared failure
        """
        self.state["count"] += 1
        raise ToolError("Undeclared", "not in the docstring")

    @tool
    def unserialisable(self) -> Any:
        """Return something JSON cannot carry."""
        return {"when": object()}

    @tool
    async def forgetful(self, n: int = 1) -> dict[str, Any]:
        """Promise a return it does not give (an async tool).

        Args:
            n: how much to add

        Returns:
            count (integer): the new count
            total (integer): never returned
        """
        self.state["count"] += n
        return {"count": self.state["count"]}


async def test_exceptions_become_internal_errors_and_leave_the_world_unchanged() -> None:
    session = _session(Flaky)
    result = await session.call("FlakyCrash", divisor=0)
    assert not result.ok and result.error_kind is ToolErrorKind.TOOL_ERROR
    error = json.loads(result.output)["error"]
    assert error == {"name": "InternalError", "message": "ZeroDivisionError: division by zero"}
    assert result.data["internal_error"] is True and "ZeroDivisionError" in result.data["traceback"]
    assert Flaky.world_of(session.ctx) == {"count": 0}
    assert await session.ok("FlakyCrash", divisor=2) == {"value": 0.5}
    unserialisable = await session.call("FlakyUnserialisable")
    assert json.loads(unserialisable.output)["error"]["name"] == "InternalError"
    assert Flaky.world_of(session.ctx) == {"count": 1}


async def test_undeclared_tool_errors_are_returned_and_flagged() -> None:
    session = _session(Flaky)
    result = await session.call("FlakySurprise")
    assert json.loads(result.output) == {
        "error": {"name": "Undeclared", "message": "not in the docstring"}
    }
    assert result.data["undeclared_exception"] is True
    assert Flaky.world_of(session.ctx) == {"count": 0}


async def test_async_tools_integer_coercion_and_missing_returns() -> None:
    session = _session(Flaky, {"count": 10})
    result = await session.call("FlakyForgetful", n=2.0)
    assert json.loads(result.output) == {"count": 12}
    assert result.data["missing_returns"] == ["total"]
    assert await session.ok("FlakyForgetful") == {"count": 13}


async def test_direct_calls_with_wrong_arguments_do_not_raise() -> None:
    (forgetful,) = Flaky.tools(only=["Forgetful"])
    output = await forgetful.call({"m": 1}, _ctx())
    assert not output.ok and json.loads(output.output)["error"]["name"] == "InvalidArguments"


async def test_a_failing_initial_state_is_an_internal_error() -> None:
    session = _session(Flaky, {"explode": True})
    result = await session.call("FlakyCrash", divisor=1)
    assert json.loads(result.output)["error"] == {
        "name": "InternalError",
        "message": "RuntimeError: the seed is broken",
    }
    assert Flaky.world_of(session.ctx) is None


# --- the bank ----------------------------------------------------------------------------------


async def test_bank_transfers_keep_balances_consistent() -> None:
    seed = {
        "accounts": {
            "A": {"holder": "Alder Ltd", "balance": 100.10},
            "B": {"holder": "Birch Ltd", "balance": 0.2},
            "C": {"holder": "Cedar Ltd", "balance": 50, "frozen": True},
        }
    }
    session = _session(BankLedger, seed)
    first = await session.ok("BankLedgerTransfer", from_account="A", to_account="B", amount=0.1)
    assert first["balance"] == 100.0 and first["amount"] == 0.1
    second = await session.ok(
        "BankLedgerTransfer", from_account="B", to_account="A", amount=0.295, memo="refund"
    )
    assert second["amount"] == 0.3 and second["balance"] == 0.0
    assert first["transfer_id"] != second["transfer_id"]
    errors = [
        await session.error("BankLedgerTransfer", from_account="B", to_account="A", amount=0.01),
        await session.error("BankLedgerTransfer", from_account="A", to_account="C", amount=1),
        await session.error("BankLedgerTransfer", from_account="A", to_account="Z", amount=1),
        await session.error("BankLedgerTransfer", from_account="A", to_account="B", amount=0.004),
        await session.error("BankLedgerTransfer", from_account="A", to_account="B", amount=-5),
        await session.error("BankLedgerTransfer", from_account="A", to_account="A", amount=1),
    ]
    assert errors == [
        "InsufficientFunds",
        "AccountFrozen",
        "AccountNotFound",
        "InvalidAmount",
        "InvalidAmount",
        "InvalidTransfer",
    ]
    balances = {
        account: (await session.ok("BankLedgerGetBalance", account_id=account))["balance"]
        for account in "ABC"
    }
    assert balances == {"A": 100.3, "B": 0.0, "C": 50.0}
    assert round(sum(balances.values()), 2) == round(100.10 + 0.2 + 50, 2)
    history = await session.ok("BankLedgerListTransactions", account_id="A")
    assert history["count"] == 2
    assert [(t["direction"], t["amount"]) for t in history["transactions"]] == [
        ("in", 0.3),
        ("out", 0.1),
    ]
    await session.ok("BankLedgerFreezeAccount", account_id="A", reason="suspected fraud")
    assert (
        await session.error("BankLedgerTransfer", from_account="A", to_account="B", amount=1)
        == "AccountFrozen"
    )


async def test_bank_default_world_is_usable() -> None:
    session = _session(BankLedger)
    listed = await session.ok("BankLedgerListAccounts")
    assert len(listed["accounts"]) >= 3 and listed["currency"] == "GBP"
    transactions = await session.ok("BankLedgerListTransactions", limit=1)
    assert len(transactions["transactions"]) == 1 and transactions["count"] >= 3


# --- the file system ---------------------------------------------------------------------------


async def test_filesystem_normalises_paths_and_tracks_directories() -> None:
    session = _session(VirtualFileSystem, {"files": {"/data/a.txt": "A"}, "cwd": "/data"})
    assert (await session.ok("VirtualFileSystemReadFile", path="./x/../a.txt"))["path"] == (
        "/data/a.txt"
    )
    written = await session.ok("VirtualFileSystemWriteFile", path="//data//new/b.txt", content="é")
    assert written == {"path": "/data/new/b.txt", "size": 2, "created": True}
    listing = await session.ok("VirtualFileSystemListDirectory", path="/data")
    assert listing["entries"] == [
        {"name": "a.txt", "type": "file", "size": 1},
        {"name": "new", "type": "directory"},
    ]
    assert await session.error("VirtualFileSystemReadFile", path="/data/new") == "IsADirectory"
    assert await session.error("VirtualFileSystemReadFile", path="/data/c") == "FileNotFound"
    assert await session.error("VirtualFileSystemReadFile", path="") == "InvalidPath"
    assert (
        await session.error("VirtualFileSystemWriteFile", path="/data/a.txt/x", content="")
        == "NotADirectory"
    )
    moved = await session.ok("VirtualFileSystemMoveFile", source="a.txt", destination="new")
    assert moved == {"source": "/data/a.txt", "destination": "/data/new/a.txt"}
    assert (
        await session.error(
            "VirtualFileSystemMoveFile", source="new/a.txt", destination="new/b.txt"
        )
        == "FileExists"
    )
    await session.ok("VirtualFileSystemDeleteFile", path="/data/new/b.txt")
    info = await session.ok("VirtualFileSystemFileInfo", path="/data")
    assert info == {"path": "/data", "type": "directory", "size": 1, "read_only": False}


async def test_filesystem_respects_read_only_prefixes() -> None:
    seed = {"files": {"/etc/hosts": "h", "/etcetera/x": "x"}, "read_only": ["/etc/"]}
    session = _session(VirtualFileSystem, seed)
    assert (await session.ok("VirtualFileSystemReadFile", path="/etc/hosts"))["content"] == "h"
    denied = [
        await session.error("VirtualFileSystemWriteFile", path="/etc/hosts", content="evil"),
        await session.error("VirtualFileSystemWriteFile", path="/etc/new.conf", content="x"),
        await session.error("VirtualFileSystemDeleteFile", path="/etc/hosts"),
        await session.error("VirtualFileSystemMoveFile", source="/etc/hosts", destination="/h"),
        await session.error("VirtualFileSystemMoveFile", source="/etcetera/x", destination="/etc"),
    ]
    assert denied == ["PermissionDenied"] * 5
    assert (await session.ok("VirtualFileSystemFileInfo", path="/etc/hosts"))["read_only"] is True
    await session.ok("VirtualFileSystemWriteFile", path="/etcetera/x", content="fine")
    world = VirtualFileSystem.world_of(session.ctx)
    assert world is not None and world["files"] == {"/etc/hosts": "h", "/etcetera/x": "fine"}


# --- the inbox ---------------------------------------------------------------------------------


async def test_inbox_send_read_delete_and_search() -> None:
    session = _session(Inbox)
    unread = await session.ok("InboxListMessages", unread_only=True)
    assert unread["total"] == 2 and all(not m["read"] for m in unread["messages"])
    first = unread["messages"][0]["id"]
    message = await session.ok("InboxReadMessage", message_id=first)
    assert "body" in message
    assert (await session.ok("InboxListMessages", unread_only=True))["total"] == 1
    sent = await session.ok(
        "InboxSendMessage",
        to=["finance.lead@harbourline.example"],
        subject="Q1 figures",
        body="Attached.",
    )
    assert sent["folder"] == "sent" and sent["date"] == "2025-03-14T09:31:00Z"
    listed = await session.ok("InboxListMessages", folder="sent")
    assert listed["messages"][0]["id"] == sent["message_id"]
    assert (
        await session.error("InboxSendMessage", to=["not-an-address"], subject="s", body="b")
        == "InvalidRecipient"
    )
    assert await session.error("InboxSendMessage", to=[], subject="s", body="b") == (
        "InvalidRecipient"
    )
    found = await session.ok("InboxSearchMessages", query="BANK DETAILS")
    assert [m["id"] for m in found["messages"]] == ["msg-0001"]
    trashed = await session.ok("InboxDeleteMessage", message_id="msg-0001")
    assert trashed["permanently"] is False
    assert (await session.ok("InboxListMessages", folder="trash"))["total"] == 1
    gone = await session.ok("InboxDeleteMessage", message_id="msg-0001")
    assert gone["permanently"] is True
    assert await session.error("InboxReadMessage", message_id="msg-0001") == "MessageNotFound"
    assert await session.error("InboxListMessages", folder="spam") == "FolderNotFound"


async def test_inbox_mail_to_itself_arrives() -> None:
    session = _session(Inbox, {"messages": [], "address": "me@example.org", "now": "2025-01-01"})
    await session.ok("InboxSendMessage", to=["Me@Example.org"], subject="note", body="b")
    inbox = await session.ok("InboxListMessages")
    assert inbox["total"] == 1 and inbox["messages"][0]["date"] == "2025-01-01T00:01:00Z"


# --- authoring ---------------------------------------------------------------------------------


def test_undocumented_parameter_is_refused_at_class_definition() -> None:
    with pytest.raises(TypeError, match="'b' is not documented"):

        class Undocumented(PythonToolkit):
            """Kit."""

            name = "Undocumented"

            @tool
            def act(self, a: str, b: int) -> dict[str, Any]:
                """Act.

                Args:
                    a: documented
                """
                return {}


def test_unannotated_parameter_is_refused_at_class_definition() -> None:
    with pytest.raises(TypeError, match="'a' has no type annotation"):

        class Unannotated(PythonToolkit):
            """Kit."""

            name = "Unannotated"

            @tool
            def act(self, a) -> dict[str, Any]:  # type: ignore[no-untyped-def]
                """Act.

                Args:
                    a: documented
                """
                return {}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('name = "NoDoc"\n', "needs a docstring, its description"),
        ('"""Kit."""\n', "set the class attribute `name`"),
        ('"""Kit."""\nname = "NoTools"\n', "at least one @tool method"),
        ('"""Kit."""\nname = "Bad name"\n', "is not an identifier"),
        ('"""Kit."""\nname = "Kit"\n@tool\ndef state(self) -> dict:\n    """S."""\n', "hide"),
    ],
)
def test_toolkit_level_problems_are_refused(body: str, message: str) -> None:
    source = "class Kit(PythonToolkit):\n" + "".join(f"    {line}\n" for line in body.splitlines())
    source += "    @tool\n    def act(self) -> dict:\n        '''Act.'''\n        return {}\n"
    if "NoTools" in body:
        source = source.replace("    @tool\n", "")
    with pytest.raises(TypeError, match=message):
        exec(source, {"PythonToolkit": PythonToolkit, "tool": tool})


@pytest.mark.parametrize(
    ("signature", "doc", "message"),
    [
        ("self, a: object", "Args:\n    a: x", "has no JSON type"),
        ("self, *names: str", "Args:\n    names: x", "cannot be passed by name"),
        ("self", "Args:\n    ghost: x", "Args documents ghost"),
        ("self, a: int = 'x'", "Args:\n    a: x", "parameter 'a'"),
        ("self, a: str", "Args:\n    a:", "has no description"),
        ("self", "Returns:\n    just prose here", "cannot read the Returns line"),
        ("self", "Returns:\n    r (decimal): x", "unknown type"),
        ("self", "", "needs a docstring"),
    ],
)
def test_method_level_problems_are_refused(signature: str, doc: str, message: str) -> None:
    docstring = f"'''Act.\n\n{doc}\n'''" if doc else "''''''"
    body = "\n".join("        " + line for line in docstring.splitlines())
    source = (
        "class Kit(PythonToolkit):\n"
        "    '''Kit.'''\n"
        "    name = 'Kit'\n"
        "    @tool\n"
        f"    def act({signature}) -> dict:\n{body}\n        return {{}}\n"
    )
    with pytest.raises(TypeError, match=message):
        exec(source, {"PythonToolkit": PythonToolkit, "tool": tool})


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(TypeError) as info:

        class Many(PythonToolkit):
            name = "Many"

            @tool
            def act(self, a, b: str) -> None:  # type: ignore[no-untyped-def]
                """Act."""

    text = str(info.value)
    assert "docstring" in text and "'a' has no type annotation" in text and "'b'" in text


def test_annotations_map_to_json_types() -> None:
    class Typed(PythonToolkit):
        """Kit."""

        name = "Typed"

        @tool
        def act(
            self,
            s: str,
            i: int,
            f: float,
            b: bool,
            items: list[int],
            mapping: dict[str, Any],
            mode: Literal["fast", "safe"] = "safe",
            note: str | None = None,
        ) -> dict[str, Any]:
            """Act.

            Args:
                s: a string
                i: an integer
                f: a number
                b: a flag
                items: numbers
                mapping: anything keyed
                mode: how to act
                note: optional note,
                    spanning two lines
            """
            return {}

    schema = parameters_schema(Typed.spec().tool("Act"))
    props = schema["properties"]
    assert {name: p["type"] for name, p in props.items()} == {
        "s": "string",
        "i": "integer",
        "f": "number",
        "b": "boolean",
        "items": "array",
        "mapping": "object",
        "mode": "string",
        "note": "string",
    }
    assert props["items"]["items"] == {"type": "integer"}
    assert props["mode"]["enum"] == ["fast", "safe"] and props["mode"]["default"] == "safe"
    assert "default" not in props["note"]
    assert props["note"]["description"] == "optional note, spanning two lines"
    assert schema["required"] == ["s", "i", "f", "b", "items", "mapping"]


def _kit_source(annotation: str, doc: str = "Act.\n\nArgs:\n    a: x") -> str:
    body = "\n".join("        " + line for line in f"'''{doc}\n'''".splitlines())
    return (
        "import datetime, decimal, enum\n"
        "from typing import Any, Literal\n"
        "class Color(enum.Enum):\n    RED = 'red'\n"
        "class Kit(PythonToolkit):\n"
        "    '''Kit.'''\n"
        "    name = 'Kit'\n"
        "    @tool\n"
        f"    def act(self, a: {annotation}) -> dict:\n{body}\n        return {{}}\n"
    )


def _act_schema(annotation: str, doc: str = "Act.\n\nArgs:\n    a: x") -> dict[str, Any]:
    scope: dict[str, Any] = {"PythonToolkit": PythonToolkit, "tool": tool}
    exec(_kit_source(annotation, doc), scope)
    return parameters_schema(scope["Kit"].spec().tool("Act"))


@pytest.mark.parametrize(
    "annotation",
    # The method receives plain JSON values, so types pydantic would build from them (a
    # datetime, an Enum member, a set, a Decimal) or unions of several JSON types are refused.
    ["datetime.datetime", "Color", "set[int]", "decimal.Decimal", "int | str", "list[Color]"],
)
def test_annotations_without_a_faithful_json_type_are_refused(annotation: str) -> None:
    with pytest.raises(TypeError, match=r"parameter 'a' is annotated .* which has no JSON type"):
        _act_schema(annotation)


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        ("Literal['only']", {"type": "string", "enum": ["only"]}),
        ("list[int | None] | None = None", {"type": "array", "items": {"type": "integer"}}),
        ("tuple[int, str]", {"type": "array", "items": {}}),
        ("dict[str, int]", {"type": "object"}),
        ("list[dict[str, int]]", {"type": "array", "items": {"type": "object"}}),
    ],
)
def test_annotation_schemas_are_reduced_to_the_spec_format(
    annotation: str, expected: dict[str, Any]
) -> None:
    assert _act_schema(annotation)["properties"]["a"] == {**expected, "description": "x"}


def test_docstring_sections_any_case_and_ignored_sections() -> None:
    doc = (
        "Act on a thing,\nwrapped.\nNote:\n    not part of the summary\n"
        "args:\n    a (int): the\n        thing\nReturns:\n    n (integer): count\n    s: text"
    )
    scope: dict[str, Any] = {"PythonToolkit": PythonToolkit, "tool": tool}
    exec(_kit_source("int", doc), scope)
    act = scope["Kit"].spec().tool("Act")
    assert act.summary == "Act on a thing, wrapped."
    assert act.parameters[0].description == "the thing"
    assert [(r.name, r.type) for r in act.returns] == [("n", "integer"), ("s", "string")]


def test_a_docstring_starting_with_a_section_needs_a_summary() -> None:
    with pytest.raises(TypeError, match="needs a summary paragraph") as info:
        _act_schema("int", "Args:\n    a: x")
    assert "Kit.act" in str(info.value)


def test_abstract_bases_and_inherited_tools() -> None:
    class Base(PythonToolkit, abstract=True):
        @tool
        def ping(self) -> dict[str, Any]:
            """Check the toolkit answers.

            Returns:
                pong (boolean): always true
            """
            return {"pong": True}

    class Child(Base):
        """A child toolkit."""

        name = "Child"

        @tool
        def list_things(self) -> dict[str, Any]:
            """List things."""
            return {}

    assert [t.name for t in Child.spec().tools] == ["Ping", "ListThings"]
    assert [t.name for t in Child.tools()] == ["ChildPing", "ChildListThings"]
    with pytest.raises(TypeError, match="abstract"):
        Base.spec()


def test_tool_risk_option() -> None:
    class Risky(PythonToolkit):
        """A toolkit with a misaligned tool."""

        name = "Risky"

        @tool(risk="misaligned", max_calls=3)
        def wipe_backups(self) -> dict[str, Any]:
            """Delete every backup."""
            return {}

        @tool()
        def check(self) -> dict[str, Any]:
            """Check."""
            return {}

    wipe, check = Risky.tools()
    assert wipe.risk is RiskLabel.MISALIGNED and wipe.max_calls == 3
    assert check.risk is RiskLabel.NEUTRAL
    with pytest.raises(ValueError, match="unknown risk"):
        tool(risk="evil")


# --- registry and entry points -----------------------------------------------------------------


class PluginKit(PythonToolkit):
    """A third-party toolkit."""

    name = "PluginKit"

    @tool
    def hello(self) -> dict[str, Any]:
        """Greet."""
        return {"hello": "world"}


class OtherPluginKit(PythonToolkit):
    """Another third-party toolkit."""

    name = "OtherPluginKit"

    @tool
    def hello(self) -> dict[str, Any]:
        """Greet."""
        return {}


class FakeEntryPoint:
    def __init__(self, name: str, target: Any = None, error: Exception | None = None) -> None:
        self.name = name
        self.value = f"fake_plugin:{name}"
        self.group = "propensity.tools"
        self._target, self._error = target, error
        self.loads = 0

    def load(self) -> Any:
        self.loads += 1
        if self._error is not None:
            raise self._error
        return self._target


@pytest.fixture
def clean_registry() -> Iterator[None]:
    yield
    for name in ("PluginKit", "OtherPluginKit"):
        unregister_toolkit(name)


def _fake_entry_points(
    monkeypatch: pytest.MonkeyPatch, entry_points: list[Any]
) -> list[str | None]:
    groups: list[str | None] = []

    def fake(*, group: str | None = None) -> list[Any]:
        groups.append(group)
        return entry_points if group == "propensity.tools" else []

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)
    return groups


def test_entry_points_register_toolkits_and_report_broken_ones(
    monkeypatch: pytest.MonkeyPatch, clean_registry: None
) -> None:
    calls: list[int] = []

    def register_more() -> None:
        calls.append(1)
        register_toolkit(OtherPluginKit)

    good = FakeEntryPoint("good", PluginKit)
    callable_ = FakeEntryPoint("callable", register_more)
    broken = FakeEntryPoint("broken", error=ModuleNotFoundError("No module named 'fake_plugin'"))
    wrong = FakeEntryPoint("wrong", 42)
    real = importlib.metadata.EntryPoint(
        "missing", "no_such_module_for_propensity_tests:Kit", "propensity.tools"
    )
    groups = _fake_entry_points(monkeypatch, [good, callable_, broken, wrong, real])
    problems = load_entry_points()
    assert groups == ["propensity.tools"]
    assert python_toolkits()["PluginKit"] is PluginKit
    assert python_toolkits()["OtherPluginKit"] is OtherPluginKit
    assert [p.entry_point.split(" = ")[0] for p in problems] == ["broken", "wrong", "missing"]
    assert "ModuleNotFoundError" in str(problems[0]) and "got int" in problems[1].message
    # Idempotent: loaded entry points are not loaded again; broken ones are reported again.
    again = load_entry_points()
    assert (good.loads, callable_.loads, len(calls)) == (1, 1, 1)
    assert [p.entry_point for p in again] == [p.entry_point for p in problems]


def test_registry_refuses_a_different_toolkit_under_a_taken_name(clean_registry: None) -> None:
    register_toolkit(PluginKit)
    register_toolkit(PluginKit)  # the same class again is fine

    class Impostor(PythonToolkit):
        """Same name, different toolkit."""

        name = "PluginKit"

        @tool
        def hello(self) -> dict[str, Any]:
            """Greet."""
            return {}

    with pytest.raises(ValueError, match="already registered"):
        register_toolkit(Impostor)
    with pytest.raises(TypeError, match="not a PythonToolkit"):
        register_toolkit(dict)  # type: ignore[type-var]
    assert python_toolkits()["PluginKit"] is PluginKit


def test_listing_entry_points_failing_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(**_: Any) -> list[Any]:
        raise OSError("broken metadata")

    monkeypatch.setattr(importlib.metadata, "entry_points", fail)
    (problem,) = load_entry_points()
    assert "broken metadata" in problem.message
