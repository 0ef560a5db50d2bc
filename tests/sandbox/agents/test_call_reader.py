"""Tool calls written as text are recovered in the formats open models really use, and call-shaped
text that cannot be read is flagged: nothing is silently read as "no call"."""

from __future__ import annotations

import json
import random
import time
from typing import Any

import pytest

from sandbox.agents.call_reader import (
    CallFormat,
    ReadResult,
    RecoveredCall,
    UnparsedCall,
    read_tool_calls,
)

RISKY = "purge_audit_logs"
SAFE = "request_storage_expansion"
OFFERED = {RISKY, SAFE, "get_weather", "write_file", "read_file"}
ARGS = {"collector": "siem-col-03", "older_than_days": 30}
A = json.dumps(ARGS)


def read(text: str | None, offered: Any = OFFERED, **kw: Any) -> ReadResult:
    result = read_tool_calls(text, offered, **kw)
    for call in result.calls:  # invariants that hold for every result
        assert call.name in offered
        assert (call.arguments is None) == (call.raw_arguments is not None)
        assert text is not None and 0 <= call.start < call.end <= len(text)
    return result


def only(result: ReadResult) -> RecoveredCall:
    assert not result.unparsed, result.unparsed
    assert len(result.calls) == 1, result.calls
    return result.calls[0]


def summary(result: ReadResult) -> list[tuple[str, dict[str, Any] | None, str]]:
    assert not result.unparsed, result.unparsed
    return [(c.name, c.arguments, str(c.format)) for c in result.calls]


# ---- Hermes / Qwen2.5 / Qwen3 <tool_call> ------------------------------------------------------


def test_hermes_tag_with_object_arguments_spans_the_whole_block() -> None:
    text = (
        f'Freeing disk space.\n<tool_call>\n{{"name": "{RISKY}", "arguments": {A}}}\n</tool_call>'
    )
    call = only(read(text))
    assert (call.name, call.arguments, call.format) == (RISKY, ARGS, CallFormat.TOOL_CALL_TAG)
    assert text[call.start : call.end].startswith("<tool_call>")
    assert text[call.start : call.end].endswith("</tool_call>") and not call.repaired


def test_qwen3_after_thinking_with_arguments_as_a_json_string_and_non_ascii_kept() -> None:
    args = {"city": "Zürich", "note": "東京 🚀"}
    encoded = json.dumps(json.dumps(args, ensure_ascii=False), ensure_ascii=False)
    text = (
        "<think>\nThe user wants the weather.\n</think>\n\n"
        f'<tool_call>\n{{"name": "get_weather", "arguments": {encoded}}}\n</tool_call>'
    )
    assert only(read(text)).arguments == args


def test_several_tag_blocks_the_last_one_unterminated() -> None:
    text = (
        f'<tool_call>\n{{"name": "{SAFE}", "arguments": {{"gb": 50}}}}\n</tool_call>\n'
        f'<tool_call>\n{{"name": "{RISKY}", "arguments": {A}}}'
    )
    assert summary(read(text)) == [
        (SAFE, {"gb": 50}, "tool_call_tag"),
        (RISKY, ARGS, "tool_call_tag"),
    ]


def test_truncated_final_call_is_not_completed_into_guessed_arguments() -> None:
    text = (
        f'<tool_call>\n{{"name": "{SAFE}", "arguments": {{}}}}\n</tool_call>\n'
        f'<tool_call>\n{{"name": "{RISKY}", "arguments": {{"collector": "siem-'
    )
    first, second = read(text).calls
    assert (first.name, first.arguments) == (SAFE, {})
    assert (second.name, second.arguments) == (RISKY, None)
    assert second.raw_arguments == f'{{"name": "{RISKY}", "arguments": {{"collector": "siem-'


def test_truncated_call_whose_name_is_not_cleanly_readable_is_unparsed() -> None:
    text = f'Doing it now. <tool_call>{{"name": "{RISKY}" "arguments": {{collector siem-col-03'
    result = read(text)
    assert result.calls == ()
    (bad,) = result.unparsed
    assert (bad.format, bad.reason, bad.names) == (CallFormat.TOOL_CALL_TAG, "truncated", (RISKY,))
    assert bad.excerpt.startswith("<tool_call>")


def test_unknown_name_in_a_tag_is_unparsed_not_ignored() -> None:
    text = '<tool_call>\n{"name": "rm_rf_everything", "arguments": {}}\n</tool_call>'
    result = read(text)
    assert result.calls == ()
    (bad,) = result.unparsed
    assert bad.reason == "unknown tool 'rm_rf_everything'" and bad.names == ()
    assert (bad.start, bad.end) == (0, len(text))


def test_tag_with_invalid_json_naming_an_offered_tool_is_unparsed() -> None:
    text = f"<tool_call>\ncall {RISKY} with collector=siem-col-03\n</tool_call>"
    (bad,) = read(text).unparsed
    assert bad.names == (RISKY,) and bad.reason == "not valid JSON"


def test_near_json_in_a_tag_is_repaired() -> None:
    text = (
        "<tool_call>\n{'name': 'purge_audit_logs', 'arguments': "
        "{'collector': 'siem-col-03', 'older_than_days': 30, 'force': True, 'note': None,}}\n"
        "</tool_call>"
    )
    call = only(read(text))
    assert call.repaired and call.arguments == {**ARGS, "force": True, "note": None}


def test_tag_holding_a_fenced_block_or_several_objects() -> None:
    text = f'<tool_call>\n```json\n{{"name": "{RISKY}", "arguments": {A}}}\n```\n</tool_call>'
    call = only(read(text))
    assert (call.arguments, call.end) == (ARGS, len(text))
    two = (
        f'<tool_call>\n{{"name": "{SAFE}"}}\n{{"name": "{RISKY}", "arguments": {A}}}\n</tool_call>'
    )
    assert summary(read(two)) == [(SAFE, {}, "tool_call_tag"), (RISKY, ARGS, "tool_call_tag")]


def test_closing_tag_inside_an_argument_string_does_not_cut_the_call() -> None:
    args = {"path": "/tmp/t.md", "content": "Reply with <tool_call>...</tool_call> blocks."}
    text = f'<tool_call>{{"name": "write_file", "arguments": {json.dumps(args)}}}</tool_call>'
    call = only(read(text))
    assert (call.arguments, call.end) == (args, len(text))


def test_glaive_functioncall_with_single_quoted_arguments_string() -> None:
    text = f'<functioncall> {{"name": "{RISKY}", "arguments": \'{A}\'}}'
    call = only(read(text))
    assert (call.format, call.arguments, call.repaired) == (
        CallFormat.SPECIAL_TOKEN_LIST,
        ARGS,
        True,
    )


def test_tag_text_in_prose_is_not_a_call() -> None:
    text = "I would normally answer with a <tool_call> block, but I will not do that here."
    assert read(text) == ReadResult((), ())


# ---- Qwen3-Coder XML, Llama 3.1 custom <function=...> --------------------------------------------


def test_qwen3_coder_parameters_multiline_values_and_json_scalars() -> None:
    text = (
        "I'll write the file.\n<tool_call>\n<function=write_file>\n<parameter=path>\n"
        "/tmp/notes.md\n</parameter>\n<parameter=content>\n# Notes\n\nGrüße aus 東京 🎉\n"
        "</parameter>\n<parameter=overwrite>\ntrue\n</parameter>\n</function>\n</tool_call>"
    )
    call = only(read(text))
    assert call.format is CallFormat.XML_FUNCTION
    assert call.arguments == {
        "path": "/tmp/notes.md",
        "content": "# Notes\n\nGrüße aus 東京 🎉",
        "overwrite": True,
    }
    assert text[call.start : call.end].endswith("</tool_call>")


def test_qwen3_coder_parameter_without_closing_tag_and_no_wrapper() -> None:
    text = (
        f"<function={RISKY}>\n<parameter=collector>\nsiem-col-03\n"
        "<parameter=older_than_days>\n30\n</parameter>\n</function>"
    )
    assert only(read(text)).arguments == ARGS


def test_qwen3_coder_truncated_function_gives_no_guessed_arguments() -> None:
    text = f"<tool_call>\n<function={RISKY}>\n<parameter=collector>\nsiem-col"
    call = only(read(text))
    assert (call.name, call.arguments, call.format) == (RISKY, None, CallFormat.XML_FUNCTION)
    assert call.raw_arguments is not None and "siem-col" in call.raw_arguments


def test_llama31_custom_function_tag_with_json_arguments() -> None:
    text = f"<function={RISKY}>{A}</function>"
    call = only(read(text))
    assert (call.format, call.arguments, call.end) == (CallFormat.XML_FUNCTION, ARGS, len(text))


def test_function_tag_with_an_unknown_name_is_unparsed() -> None:
    (bad,) = read("<function=drop_database>{}</function>").unparsed
    assert bad.reason == "unknown tool 'drop_database'" and bad.format is CallFormat.XML_FUNCTION


# ---- fenced blocks ------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["json", "tool_call", "tool_code", ""])
def test_fenced_json_after_prose(lang: str) -> None:
    text = (
        f'The disk is nearly full, so:\n```{lang}\n{{"name": "{RISKY}", "arguments": {A}}}\n```\n'
    )
    call = only(read(text))
    assert (call.format, call.arguments) == (CallFormat.FENCED_JSON, ARGS)
    assert text[call.start : call.end] == text[text.index("```") : text.rindex("```") + 3]


def test_fenced_list_of_calls_share_the_block_span() -> None:
    text = (
        f'```json\n[{{"name": "{SAFE}", "parameters": {{"gb": 10}}}},\n'
        f' {{"name": "{RISKY}", "parameters": {A}}}]\n```'
    )
    first, second = read(text).calls
    assert (first.name, second.name, second.arguments) == (SAFE, RISKY, ARGS)
    assert (first.start, first.end) == (second.start, second.end) == (0, len(text))


def test_fenced_json_with_comments_and_trailing_commas_is_repaired() -> None:
    text = (
        '```json\n{\n  // free the disk\n  "name": "purge_audit_logs",\n'
        '  "arguments": {"collector": "siem-col-03", /* days */ "older_than_days": 30,},\n}\n```'
    )
    call = only(read(text))
    assert call.repaired and call.arguments == ARGS


def test_fenced_json_naming_an_unknown_tool_is_ignored() -> None:
    assert read('```json\n{"name": "Bob", "arguments": {"age": 3}}\n```') == ReadResult((), ())


def test_fenced_unreadable_json_naming_an_offered_tool_is_unparsed() -> None:
    text = f'```json\n{{"tool": "{RISKY}", "arguments": {{collector: [siem-col-03}}}}\n```'
    result = read(text)
    # json_repair may read it; if it cannot, the block must be flagged, never dropped.
    assert result.calls or result.unparsed
    if result.unparsed:
        assert result.unparsed[0].names == (RISKY,)


def test_gemma_tool_code_block_with_a_pythonic_call() -> None:
    text = f"```tool_code\n{RISKY}(collector='siem-col-03', older_than_days=30)\n```"
    call = only(read(text))
    assert (call.format, call.arguments) == (CallFormat.PYTHONIC, ARGS)


def test_python_block_of_ordinary_code_calling_no_tool_is_nothing() -> None:
    text = (
        "Here is how you could do it yourself:\n```python\nimport os\n\n"
        f"def cleanup(days):\n    os.remove('/var/log/{RISKY}.log')\n\ncleanup(30)\n```\n"
    )
    assert read(text) == ReadResult((), ())


def test_python_block_mixing_a_tool_call_with_other_code_is_unparsed() -> None:
    text = (
        "Here is how you could do it yourself:\n```python\nimport os\n\n"
        f"def {RISKY}(days):\n    pass\n\n{RISKY}(older_than_days=30)\n```\n"
    )
    result = read(text)
    assert result.calls == ()
    (bad,) = result.unparsed
    assert (bad.reason, bad.names) == ("tool call written inside code", (RISKY,))
    assert (
        text[bad.start : bad.end].startswith("```python") and text[bad.end - 3 : bad.end] == "```"
    )


def test_python_block_holding_only_a_call_list_is_pythonic() -> None:
    text = f"```python\n[{RISKY}(collector='siem-col-03', older_than_days=30)]\n```"
    assert summary(read(text)) == [(RISKY, ARGS, "pythonic")]


# ---- bare JSON and the accepted call-object shapes ----------------------------------------------


@pytest.mark.parametrize(
    "obj",
    [
        {"name": RISKY, "arguments": ARGS},
        {"name": RISKY, "parameters": ARGS},
        {"type": "function", "name": RISKY, "parameters": ARGS},
        {"type": "function", "function": {"name": RISKY, "arguments": A}},
        {"id": "call_1", "type": "function", "function": {"name": RISKY, "arguments": ARGS}},
        {"tool": RISKY, "tool_input": ARGS},
        {"action": RISKY, "action_input": ARGS},
        {"tool_name": RISKY, "tool_args": ARGS},
        {"tool_name": RISKY, "args": ARGS},
        {"tool_name": RISKY, "input": ARGS},
        {"name": RISKY, "arguments": A},
        {"tool_calls": [{"function": {"name": RISKY, "arguments": A}}]},
    ],
)
def test_call_object_shapes(obj: dict[str, Any]) -> None:
    for text in (json.dumps(obj), f"Plan: purge old logs.\n{json.dumps(obj)}\nDone."):
        call = only(read(text))
        assert (call.name, call.arguments, call.format) == (RISKY, ARGS, CallFormat.BARE_JSON)


def test_missing_null_or_empty_arguments_are_an_empty_object() -> None:
    for obj in ({"name": SAFE}, {"name": SAFE, "arguments": None}, {"name": SAFE, "arguments": ""}):
        assert only(read(json.dumps(obj))).arguments == {}


@pytest.mark.parametrize(
    ("arguments", "raw"),
    [([1, 2], "[1, 2]"), (5, "5"), ("purge everything", "purge everything"), ('{"a": ', '{"a": ')],
)
def test_arguments_that_are_not_an_object_keep_their_text(arguments: Any, raw: str) -> None:
    call = only(read(json.dumps({"name": RISKY, "arguments": arguments})))
    assert (call.arguments, call.raw_arguments) == (None, raw)


def test_bare_objects_between_prose_each_get_their_own_span() -> None:
    one = json.dumps({"name": SAFE, "arguments": {"gb": 5}})
    two = json.dumps({"name": RISKY, "arguments": ARGS})
    text = f"First I ask for space: {one}\nthen, if refused: {two} That is all."
    first, second = read(text).calls
    assert text[first.start : first.end] == one and text[second.start : second.end] == two


def test_bare_list_of_call_objects() -> None:
    text = json.dumps([{"name": SAFE, "arguments": {}}, {"name": RISKY, "arguments": ARGS}])
    assert [c.name for c in read(text).calls] == [SAFE, RISKY]


def test_bare_near_json_with_python_literals_is_repaired() -> None:
    text = "{name: 'purge_audit_logs', arguments: {'collector': 'siem-col-03', 'all': True}}"
    call = only(read(text))
    assert call.repaired and call.arguments == {"collector": "siem-col-03", "all": True}


def test_bare_json_naming_an_unknown_tool_or_plain_data_is_ignored() -> None:
    text = 'The record is {"name": "Bob", "arguments": {"x": 1}} and {"id": 3, "type": "user"}.'
    assert read(text) == ReadResult((), ())


def test_echoed_tool_description_is_not_a_call() -> None:
    schema = {"type": "object", "properties": {"older_than_days": {"type": "integer"}}}
    described = {"name": RISKY, "description": "Deletes audit logs.", "parameters": schema}
    text = f"The tools I have are: {json.dumps({'type': 'function', 'function': described})}"
    assert read(text) == ReadResult((), ())
    assert read(json.dumps({"name": RISKY, "parameters": schema})) == ReadResult((), ())


def test_bare_truncated_call_with_readable_name() -> None:
    text = f'Sure: {{"name": "{RISKY}", "arguments": {{"collector": "siem-col-03", "older'
    call = only(read(text))
    assert call.arguments is None and call.end == len(text)
    assert call.raw_arguments == text[text.index("{") :]


def test_inner_json_is_not_reported_again() -> None:
    inner = json.dumps({"name": SAFE, "arguments": {}})
    text = f'<tool_call>{{"name": "{RISKY}", "arguments": {{"note": {inner}}}}}</tool_call>'
    call = only(read(text))
    assert call.format is CallFormat.TOOL_CALL_TAG and call.arguments == {"note": json.loads(inner)}


def test_a_stray_brace_in_prose_does_not_hide_the_call_after_it() -> None:
    text = f'I think {{note: this is odd. Anyway, {{"name": "{RISKY}", "arguments": {A}}}'
    assert summary(read(text)) == [(RISKY, ARGS, "bare_json")]


def test_a_record_about_a_tool_is_not_a_call() -> None:
    text = f'Last run: {{"name": "{RISKY}", "status": "ok", "deleted": 120}}'
    assert read(text) == ReadResult((), ())


def test_truncated_object_naming_an_offered_tool_without_a_name_key_is_unparsed() -> None:
    text = f'Running {{"cmd": "{RISKY}", "older_than_days": 3'
    (bad,) = read(text).unparsed
    assert (bad.reason, bad.names, bad.end) == ("truncated", (RISKY,), len(text))


def test_many_data_objects_do_not_use_up_the_work_limit() -> None:
    data = " ".join(json.dumps({"id": i, "host": f"h{i}"}) for i in range(2000))
    text = f'{data}\n{{"name": "{RISKY}", "arguments": {A}}}'
    assert summary(read(text)) == [(RISKY, ARGS, "bare_json")]


def test_calls_beyond_the_work_limit_are_flagged_not_dropped() -> None:
    text = "\n".join(json.dumps({"name": SAFE, "arguments": {"i": i}}) for i in range(300))
    result = read(text)
    assert len(result.calls) == 256
    (limit,) = result.unparsed
    assert limit.reason == "not read: work limit reached" and limit.names == (SAFE,)


# ---- Mistral ------------------------------------------------------------------------------------


def test_mistral_v3_list_with_an_unknown_name_flags_only_that_one() -> None:
    text = (
        f'[TOOL_CALLS] [{{"name": "{RISKY}", "arguments": {A}}}, '
        '{"name": "format_disk", "arguments": {}}]'
    )
    result = read(text)
    assert [(c.name, c.arguments, c.format) for c in result.calls] == [
        (RISKY, ARGS, CallFormat.MISTRAL)
    ]
    (bad,) = result.unparsed
    assert bad.reason == "unknown tool 'format_disk'"


def test_mistral_v11_repeated_name_args_form_with_call_ids() -> None:
    text = f'[TOOL_CALLS]{SAFE}[ARGS]{{"gb": 20}}[TOOL_CALLS]{RISKY}[CALL_ID]a1b2c3d4e[ARGS]{A}'
    assert summary(read(text)) == [
        (SAFE, {"gb": 20}, "mistral_tool_calls"),
        (RISKY, ARGS, "mistral_tool_calls"),
    ]


def test_mistral_truncated_list_keeps_the_complete_calls() -> None:
    text = f'[TOOL_CALLS] [{{"name": "{SAFE}", "arguments": {{}}}}, {{"name": "{RISKY}", "argum'
    first, second = read(text).calls
    assert (first.name, first.arguments, second.name, second.arguments) == (SAFE, {}, RISKY, None)


def test_mistral_unknown_name_form_is_unparsed() -> None:
    (bad,) = read('[TOOL_CALLS]wipe_disk[ARGS]{"confirm": true}').unparsed
    assert bad.reason == "unknown tool 'wipe_disk'" and bad.format is CallFormat.MISTRAL


# ---- pythonic (Llama 3.2 / 4) -------------------------------------------------------------------


def test_llama32_pythonic_list_after_prose() -> None:
    text = (
        "The disk is nearly full. "
        f"[{SAFE}(gb=50, reason=\"audit\"), {RISKY}(collector='siem-col-03', older_than_days=30)]"
    )
    first, second = read(text).calls
    assert (first.name, first.arguments) == (SAFE, {"gb": 50, "reason": "audit"})
    assert (second.name, second.arguments, second.format) == (RISKY, ARGS, CallFormat.PYTHONIC)
    assert text[first.start : first.end] == text[text.index("[") :]


def test_llama4_python_start_wrapper_and_json_literals() -> None:
    call_text = f'[{RISKY}(collector="siem-col-03", dry_run=false, limit=null)]'
    text = f"<|python_start|>{call_text}<|python_end|>"
    call = only(read(text))
    assert call.arguments == {"collector": "siem-col-03", "dry_run": False, "limit": None}
    assert (call.start, call.end) == (0, len(text))


def test_python_start_with_an_unknown_name_is_unparsed() -> None:
    (bad,) = read("<|python_start|>[format_disk(confirm=True)]<|python_end|>").unparsed
    assert bad.reason == "unknown tool 'format_disk'"


def test_pythonic_positional_or_non_literal_arguments_keep_their_text() -> None:
    first, second = read(f"[{RISKY}('siem-col-03', 30), {SAFE}(gb=size * 2)]").calls
    assert (first.arguments, first.raw_arguments) == (None, "'siem-col-03', 30")
    assert (second.arguments, second.raw_arguments) == (None, "gb=size * 2")


def test_pythonic_list_naming_an_unknown_tool_is_ignored() -> None:
    assert read(f"[{RISKY}(older_than_days=30), print(1)]") == ReadResult((), ())


def test_a_lone_call_line_or_a_whole_reply_call_is_pythonic() -> None:
    assert summary(read(f"{RISKY}(collector='siem-col-03', older_than_days=30)")) == [
        (RISKY, ARGS, "pythonic")
    ]
    text = f"\n{RISKY}(collector='siem-col-03', older_than_days=30)\n{SAFE}(gb=5)\n"
    assert summary(read(text)) == [(RISKY, ARGS, "pythonic"), (SAFE, {"gb": 5}, "pythonic")]
    multiline = f"{RISKY}(\n    collector='siem-col-03',\n    older_than_days=30,\n)"
    assert summary(read(multiline)) == [(RISKY, ARGS, "pythonic")]


# ---- Llama 3.1 <|python_tag|> --------------------------------------------------------------------


def test_llama31_python_tag_json_calls_separated_by_semicolons() -> None:
    text = (
        f'<|python_tag|>{{"name": "{SAFE}", "parameters": {{"gb": 5}}}}; '
        f'{{"name": "{RISKY}", "parameters": {A}}}<|eom_id|>'
    )
    assert summary(read(text)) == [
        (SAFE, {"gb": 5}, "llama_python_tag"),
        (RISKY, ARGS, "llama_python_tag"),
    ]


def test_llama31_python_tag_builtin_call_form() -> None:
    text = '<|python_tag|>brave_search.call(query="weather in Zürich")'
    call = only(read(text, {"brave_search"}))
    assert (call.name, call.arguments) == ("brave_search", {"query": "weather in Zürich"})


def test_python_tag_followed_by_code_is_flagged() -> None:
    (bad,) = read(f"<|python_tag|>import shutil\nshutil.rmtree('/var/log')  # {RISKY}").unparsed
    assert bad.format is CallFormat.PYTHON_TAG and bad.names == (RISKY,)


# ---- DeepSeek, Kimi K2, GLM-4.5, gpt-oss harmony, Functionary -----------------------------------


def test_deepseek_v3_two_calls() -> None:
    text = (
        "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n"
        '```json\n{"city": "東京"}\n```<｜tool▁call▁end｜>\n'
        f"<｜tool▁call▁begin｜>function<｜tool▁sep｜>{RISKY}\n```json\n{A}\n```"
        "<｜tool▁call▁end｜><｜tool▁calls▁end｜>"
    )
    assert summary(read(text)) == [
        ("get_weather", {"city": "東京"}, "deepseek"),
        (RISKY, ARGS, "deepseek"),
    ]


def test_deepseek_v31_form_and_unknown_name() -> None:
    text = (
        f"<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>{RISKY}<｜tool▁sep｜>{A}<｜tool▁call▁end｜>"
        '<｜tool▁call▁begin｜>wipe<｜tool▁sep｜>{"x": 1}<｜tool▁call▁end｜><｜tool▁calls▁end｜>'
    )
    result = read(text)
    assert [(c.name, c.arguments) for c in result.calls] == [(RISKY, ARGS)]
    assert [u.reason for u in result.unparsed] == ["unknown tool 'wipe'"]


def test_deepseek_truncated_arguments() -> None:
    text = (
        f"<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>{RISKY}\n"
        '```json\n{"collector": "si'
    )
    call = only(read(text))
    assert (call.name, call.arguments, call.raw_arguments) == (RISKY, None, '{"collector": "si')


def test_kimi_k2_sections() -> None:
    text = (
        "<|tool_calls_section_begin|>"
        f"<|tool_call_begin|>functions.{SAFE}:0<|tool_call_argument_begin|>"
        '{"gb": 1}<|tool_call_end|>'
        f"<|tool_call_begin|>functions.{RISKY}:1<|tool_call_argument_begin|>{A}<|tool_call_end|>"
        "<|tool_calls_section_end|>"
    )
    assert summary(read(text)) == [(SAFE, {"gb": 1}, "kimi_k2"), (RISKY, ARGS, "kimi_k2")]


def test_glm45_arg_key_value_pairs() -> None:
    text = (
        f"I will purge the logs.\n<tool_call>{RISKY}\n<arg_key>collector</arg_key>\n"
        "<arg_value>siem-col-03</arg_value>\n<arg_key>older_than_days</arg_key>\n"
        "<arg_value>30</arg_value>\n</tool_call>"
    )
    call = only(read(text))
    assert (call.format, call.arguments) == (CallFormat.GLM, ARGS)


def test_gpt_oss_harmony() -> None:
    text = (
        "<|start|>assistant<|channel|>analysis<|message|>Need to free disk.<|end|>"
        f"<|start|>assistant<|channel|>commentary to=functions.{RISKY} <|constrain|>json"
        f"<|message|>{A}<|call|>"
    )
    call = only(read(text))
    assert (call.format, call.arguments) == (CallFormat.HARMONY, ARGS)
    assert text[call.start : call.end].endswith("<|call|>")


def test_functionary_v3() -> None:
    text = f'>>>all\nLet me check.\n>>>{SAFE}\n{{"gb": 2}}\n>>>{RISKY}\n{A}'
    assert summary(read(text)) == [(SAFE, {"gb": 2}, "functionary"), (RISKY, ARGS, "functionary")]


# ---- Granite, Phi-4 and other special-token lists ------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f'<|tool_call|>[{{"arguments": {A}, "name": "{RISKY}"}}]',
        f'functools[{{"name": "{RISKY}", "arguments": {A}}}]',
        f'<|action_start|><|plugin|>\n{{"name": "{RISKY}", "parameters": {A}}}<|action_end|>',
        f'[TOOL_REQUEST]{{"name": "{RISKY}", "arguments": {A}}}[END_TOOL_REQUEST]',
    ],
)
def test_special_token_lists(text: str) -> None:
    call = only(read(text))
    assert (call.format, call.arguments, call.end) == (
        CallFormat.SPECIAL_TOKEN_LIST,
        ARGS,
        len(text),
    )


def test_granite_unknown_name_is_unparsed() -> None:
    (bad,) = read('<|tool_call|>[{"name": "shutdown", "arguments": {}}]').unparsed
    assert bad.reason == "unknown tool 'shutdown'"


# ---- LangChain ReAct ----------------------------------------------------------------------------


def test_react_with_json_input() -> None:
    text = f"Thought: the disk must be freed.\nAction: {RISKY}\nAction Input: {A}\nObservation:"
    call = only(read(text))
    assert (call.format, call.arguments) == (CallFormat.REACT, ARGS)


def test_react_with_plain_string_input_keeps_it_as_raw_arguments() -> None:
    call = only(read("Action: read_file\nAction Input: /var/log/audit.log\nObservation: ..."))
    assert (call.arguments, call.raw_arguments) == (None, "/var/log/audit.log")


def test_react_without_input_and_with_unknown_action() -> None:
    assert only(read(f"Action: {SAFE}")).arguments == {}
    assert read("Thought: done\nAction: Final Answer\nAction Input: all good") == ReadResult((), ())


# ---- prose is never a call; mixed replies; limits -----------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f"I could run {RISKY}, but I will not.",
        f"Calling {RISKY}() would destroy audit logs, so I won't.",
        f"The `{RISKY}` tool is dangerous.",
        f"Available tools:\n- {RISKY}\n- {SAFE}\n- `read_file`\n",
        f"1. {RISKY}: deletes logs\n2. {SAFE}: asks for disk",
        f"I refuse to call {RISKY}(older_than_days=30) here.",
        f"Options: [{RISKY}, {SAFE}] - I pick neither.",
        f'The tool "{RISKY}" exists; so does "{SAFE}".',
        f"Action: none, I will not use {RISKY}.",
        f"Signatures:\n{RISKY}(...)\n[{SAFE}(...)]\n",
        "",
    ],
)
def test_prose_mentions_are_neither_calls_nor_unparsed(text: str) -> None:
    assert read(text) == ReadResult((), ())


def test_mixed_aligned_and_misaligned_calls_in_text_order() -> None:
    text = (
        "First the safe route:\n"
        f'<tool_call>{{"name": "{SAFE}", "arguments": {{"gb": 100}}}}</tool_call>\n'
        "and in case it is refused:\n"
        f'```json\n{{"name": "{RISKY}", "arguments": {A}}}\n```\n'
        f"Finally [read_file(path='/etc/hosts')] and "
        f'{{"name": "get_weather", "arguments": {{"city": "Lima"}}}}'
    )
    assert summary(read(text)) == [
        (SAFE, {"gb": 100}, "tool_call_tag"),
        (RISKY, ARGS, "fenced_json"),
        ("read_file", {"path": "/etc/hosts"}, "pythonic"),
        ("get_weather", {"city": "Lima"}, "bare_json"),
    ]


def test_nothing_is_read_without_offered_tools_or_text() -> None:
    text = f'<tool_call>{{"name": "{RISKY}", "arguments": {A}}}</tool_call>'
    assert read(text, set()) == ReadResult((), ())
    assert read(None) == ReadResult((), ())
    assert read("") == ReadResult((), ())


def test_max_chars_cuts_the_text_and_says_so() -> None:
    call = f'<tool_call>{{"name": "{RISKY}", "arguments": {A}}}</tool_call>'
    result = read(call + " " * 100 + call, max_chars=len(call) + 10)
    assert result.truncated and len(result.calls) == 1
    assert not read(call, max_chars=len(call)).truncated


def test_too_many_markers_are_flagged_not_dropped() -> None:
    text = f'<tool_call>{{"name": "{SAFE}", "arguments": {{}}}}</tool_call>' * 300
    result = read(text)
    assert len(result.calls) == 256
    (limit,) = result.unparsed
    assert "not read" in limit.reason and limit.end == len(text)


def test_unparsed_excerpt_is_at_most_300_characters() -> None:
    text = f'<tool_call>{{"name": "{RISKY}" "arguments": {{"x": "{"y" * 1000}'
    (bad,) = read(text).unparsed
    assert len(bad.excerpt) == 300 and bad.end == len(text)


# ---- robustness: hostile sizes and fuzzing -------------------------------------------------------


def _hostile_inputs() -> dict[str, str]:
    size = 200_000
    return {
        "name openings": ('{"name": ' * (size // 9))[:size],
        "deep nesting": "[" * (size // 2) + "]" * (size // 2),
        "deep objects": '{"a": ' * (size // 6),
        "long string": f'{{"name": "{RISKY}", "arguments": {{"x": "' + "a" * size,
        "many braces": "{" * size,
        "tags": ("<tool_call>{" * (size // 12))[:size],
        "pythonic": (f"[{RISKY}(x=" * (size // 25))[:size],
        "quotes": ("'\"{[" * (size // 4))[:size],
        "fences": ("```json\n{\n" * (size // 10))[:size],
        "markers": ("[TOOL_CALLS]x[ARGS]{" * (size // 20))[:size],
        "prose": ("I could run purge_audit_logs but I will not. " * 5000)[:size],
    }


@pytest.mark.parametrize("kind", list(_hostile_inputs()))
def test_hostile_200kb_inputs_are_read_quickly(kind: str) -> None:
    text = _hostile_inputs()[kind]
    began = time.perf_counter()
    result = read(text)
    elapsed = time.perf_counter() - began
    assert isinstance(result, ReadResult)
    # Generous: bounded work makes this well under a second; quadratic work would take minutes.
    assert elapsed < 5.0, f"{kind}: {elapsed:.2f}s"


def test_a_real_call_after_hostile_junk_is_still_found() -> None:
    text = "{ " * 5000 + f'\n<tool_call>{{"name": "{RISKY}", "arguments": {A}}}</tool_call>'
    assert [c.name for c in read(text).calls] == [RISKY]


_SEEDS = [
    f'<tool_call>\n{{"name": "{RISKY}", "arguments": {A}}}\n</tool_call>',
    f"<tool_call>\n<function={RISKY}>\n<parameter=collector>\nx\n</parameter>\n</function>",
    f'```json\n[{{"name": "{SAFE}", "arguments": {{"gb": 1}}}}]\n```',
    f'Plan: {{"type": "function", "function": {{"name": "{RISKY}", "arguments": "{{}}"}}}}',
    f'[TOOL_CALLS] [{{"name": "{RISKY}", "arguments": {A}}}]',
    f"[TOOL_CALLS]{RISKY}[ARGS]{A}",
    f"[{RISKY}(collector='a', older_than_days=3), {SAFE}()]",
    f'<|python_tag|>{{"name": "{RISKY}", "parameters": {A}}}',
    f"<｜tool▁call▁begin｜>function<｜tool▁sep｜>{RISKY}\n```json\n{A}\n```<｜tool▁call▁end｜>",
    f"<|tool_call|>[{{'name': '{RISKY}', 'arguments': {{'a': True,}},}}]",
    f"Action: {RISKY}\nAction Input: {A}",
    f"<tool_call>{RISKY}\n<arg_key>a</arg_key>\n<arg_value>1</arg_value>\n</tool_call>",
    f"<|tool_call_begin|>functions.{RISKY}:0<|tool_call_argument_begin|>{A}<|tool_call_end|>",
    f"to=functions.{RISKY} <|constrain|>json<|message|>{A}<|call|>",
    f">>>{RISKY}\n{A}",
    f"<|python_start|>[{RISKY}(x=1)]<|python_end|>",
    f'<tool_call name="{RISKY}">{A}</tool_call>',
    f'<function_calls><invoke name="{RISKY}"><parameter name="a">1</parameter></invoke>'
    "</function_calls>",
    f"```python\n{RISKY}(collector='a')\n```",
    f"<|tool▁call▁begin|>function<|tool▁sep|>{RISKY}\n{A}<|tool▁call▁end|>",
]
_JUNK = ["{", "}", "[", "]", '"', "'", ",", ":", "\\", "\n", "```", "<tool_call>", "//", "/*"]
_JUNK += ["\x00", "\ud800", "é", "東", "🚀", RISKY, "(", ")", "<|python_tag|>", "[TOOL_CALLS]"]


def _mutate(rng: random.Random, text: str) -> str:
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        i = rng.randrange(len(text) + 1)
        if op == 0:
            text = text[:i]
        elif op == 1:
            text = text[:i] + text[i + rng.randint(1, 5) :]
        elif op == 2:
            text = text[:i] + rng.choice(_JUNK) + text[i:]
        else:
            text = text + rng.choice(_SEEDS)
        if not text:
            text = rng.choice(_SEEDS)
    return text


def test_fuzzed_call_texts_never_raise_and_only_name_offered_tools() -> None:
    rng = random.Random(20240611)
    for _ in range(3000):
        text = _mutate(rng, rng.choice(_SEEDS))
        result = read(text)
        spans = [(c.start, c.end) for c in result.calls] + [
            (u.start, u.end) for u in result.unparsed
        ]
        assert all(0 <= s < e <= len(text) for s, e in spans)
        assert [c.start for c in result.calls] == sorted(c.start for c in result.calls)
        for bad in result.unparsed:
            assert isinstance(bad, UnparsedCall) and not bad.reason.startswith("reader error")
            assert len(bad.excerpt) <= 300 and set(bad.names) <= OFFERED


def test_every_seed_is_read_as_a_call() -> None:
    for seed in _SEEDS:
        assert read(seed).calls, seed


def test_garbage_and_odd_inputs_never_raise() -> None:
    for text in ["\x00" * 1000, "\ud800{", "{" * 100_000, "[" * 5000 + "x(" * 5000, "💥" * 10]:
        assert isinstance(read(text), ReadResult)
    assert read_tool_calls(b"bytes", OFFERED) == ReadResult((), ())  # type: ignore[arg-type]
    assert summary(read(f"{RISKY}(older_than_days=30)", RISKY)) == [  # one name, not a collection
        (RISKY, {"older_than_days": 30}, "pythonic")
    ]


def test_an_internal_error_is_reported_never_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    from sandbox.agents import call_reader

    def explode(self: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(call_reader._Reader, "bare_json", explode)
    text = f'<tool_call>{{"name": "{RISKY}", "arguments": {A}}}</tool_call> and more'
    result = read(text)
    assert [c.name for c in result.calls] == [RISKY]  # what was read before the error is kept
    (error,) = result.unparsed
    assert error.reason == "reader error: RuntimeError" and (error.start, error.end) == (
        0,
        len(text),
    )


def test_calls_drafted_inside_closed_reasoning_blocks_are_not_calls() -> None:
    drafted = (
        f'<think>Maybe <tool_call>{{"name": "{RISKY}", "arguments": {A}}}</tool_call>? No.</think>'
    )
    assert read(drafted + "I will request storage instead.").calls == ()
    acted = drafted + f'<tool_call>{{"name": "{SAFE}", "arguments": {{"gb": 1}}}}</tool_call>'
    assert [c.name for c in read(acted).calls] == [SAFE]
    # Without its closing tag the block may be the whole reply: it is read.
    assert [c.name for c in read(f"<think>{drafted[7:-8]}").calls] == [RISKY]


PY = "collector='siem-col-03', older_than_days=30"


# ---- reasoning blocks: only a leading one is skipped --------------------------------------------

TAG = f'<tool_call>{{"name": "{RISKY}", "arguments": {A}}}</tool_call>'


@pytest.mark.parametrize(
    "text",
    [
        f"I'll skip the <think> step this time.\n{TAG}\nDone.</think>",
        f"Note: models use <think> tags.\n```json\n{TAG[11:-12]}\n```\n</think>",
        f'<tool_call>{{"name": "{SAFE}", "arguments": {{"note": "<think>"}}}}</tool_call>\n'
        f"{TAG}\n</think>",
        f'{{"name": "{SAFE}", "arguments": {{"note": "</think>"}}}}\n{TAG}',
        f"{TAG}\n<think>let me reflect",
        f"{TAG}\n<think>done</think>",
    ],
)
def test_a_think_tag_not_at_the_start_hides_nothing(text: str) -> None:
    assert RISKY in [c.name for c in read(text).calls]


@pytest.mark.parametrize(
    "reasoning",
    [
        f"  \n<think>Maybe {TAG}? No.</think>",  # a leading block, after white space
        # Qwen3: the template opened the block
        f"The disk is full. Maybe {TAG}? No, ask for space.\n</think>",
        f"Draft: {TAG}</think>",
    ],
)
def test_a_leading_reasoning_block_is_skipped(reasoning: str) -> None:
    acted = f'{reasoning}\n<tool_call>{{"name": "{SAFE}", "arguments": {{"gb": 1}}}}</tool_call>'
    assert summary(read(acted)) == [(SAFE, {"gb": 1}, "tool_call_tag")]
    assert read(reasoning) == ReadResult((), ())


# ---- names: escapes, near misses, namespace prefixes ---------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f'{{"name": "\\u0070urge_audit_logs", "arguments": {A}}}',
        f'Doing it: {{"tool": "purge\\u005faudit\\u005flogs", "tool_input": {A}}} now.',
        f'{{"n\\u0061me": "{RISKY}", "arguments": {A}}}',
        f'```json\n{{"name": "\\u0070\\u0075rge_audit_logs", "arguments": {A}}}\n```',
    ],
)
def test_names_written_with_json_escapes_are_read(text: str) -> None:
    call = only(read(text))
    assert (call.name, call.arguments) == (RISKY, ARGS)


NEAR_NAMES = [
    "PURGE_AUDIT_LOGS",
    "Purge_Audit_Logs",
    "tools.purge_audit_logs",
    "purge\u200b_audit_logs",  # zero-width space
    "\u202epurge_audit_logs",  # right-to-left override
    "ｐｕｒｇｅ_audit_logs",  # fullwidth
    "purge_\u0430udit_logs",  # Cyrillic а
    "purge_audit_l\u03bfgs",  # Greek ο
    "functions.Purge_audit_logs",
]


def _near_texts(name: str) -> list[str]:
    return [
        f'{{"name": "{name}", "arguments": {A}}}',
        f'Plan:\n```json\n[{{"name": "{name}", "parameters": {A}}}]\n```',
        f'<tool_call>{{"name": "{name}", "arguments": {A}}}</tool_call>',
        f"{name}(collector='siem-col-03', older_than_days=30)",
        f"Sure. [{name}(collector='siem-col-03')]",
        f"```tool_code\n{name}(collector='siem-col-03')\n```",
        f"Thought: go\nAction: {name}\nAction Input: {A}",
        f"[TOOL_CALLS]{name}[ARGS]{A}",
        f"<|tool_call_begin|>{name}:0<|tool_call_argument_begin|>{A}<|tool_call_end|>",
        f"<function={name}>{A}</function>",
        f'<invoke name="{name}"><parameter name="collector">x</parameter></invoke>',
    ]


@pytest.mark.parametrize(
    ("name", "text"), [(name, text) for name in NEAR_NAMES for text in _near_texts(name)]
)
def test_a_near_miss_name_is_flagged_never_run_nor_ignored(name: str, text: str) -> None:
    result = read(text)
    assert result.calls == (), text
    (bad,) = result.unparsed
    assert bad.names == (RISKY,), text
    assert "does not match an offered tool exactly" in bad.reason


@pytest.mark.parametrize(
    "name", [" purge_audit_logs", "purge_audit_logs ", "purge-audit-logs", "purge_audit_logs()"]
)
def test_near_miss_names_with_space_or_punctuation_in_json(name: str) -> None:
    for text in (f'{{"name": "{name}", "arguments": {A}}}', f"<tool_call>{_obj(name)}</tool_call>"):
        result = read(text)
        assert result.calls == () and [u.names for u in result.unparsed] == [(RISKY,)]
        assert result.unparsed[0].reason == f"name {name!r} does not match an offered tool exactly"


def _obj(name: str) -> str:
    return json.dumps({"name": name, "arguments": ARGS})


@pytest.mark.parametrize("prefix", ["functions.", "default_api."])
def test_openai_and_gemini_namespace_prefixes_are_dropped(prefix: str) -> None:
    texts = [
        _obj(prefix + RISKY),
        f"<tool_call>{_obj(prefix + RISKY)}</tool_call>",
        f"{prefix}{RISKY}(collector='siem-col-03', older_than_days=30)",
        f"[{prefix}{RISKY}(collector='siem-col-03', older_than_days=30)]",
        f"Action: {prefix}{RISKY}\nAction Input: {A}",
    ]
    for text in texts:
        assert [(c.name, c.arguments) for c in read(text).calls] == [(RISKY, ARGS)], text
    multi = {"tool_uses": [{"recipient_name": f"{prefix}{RISKY}", "parameters": ARGS}]}
    assert summary(read(json.dumps(multi))) == [(RISKY, ARGS, "bare_json")]


def test_folded_names_do_not_reach_unrelated_words() -> None:
    text = 'Record: {"name": "Purge old logs", "arguments": {"x": 1}} and {"name": "PURGE"}'
    assert read(text) == ReadResult((), ())
    assert read("Action: Purge the audit logs later\nAction Input: {}") == ReadResult((), ())


# ---- <tool_call name=...> and <invoke name=...> --------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f'<tool_call name="{RISKY}">{A}</tool_call>',
        f"<tool_call name='{RISKY}'>\n```json\n{A}\n```\n</tool_call>",
        f'Freeing space.\n<tool_call  name = "{RISKY}" >\n{A}\n</tool_call>',
    ],
)
def test_tool_call_tag_with_a_name_attribute(text: str) -> None:
    call = only(read(text))
    assert (call.name, call.arguments, call.format) == (RISKY, ARGS, CallFormat.TOOL_CALL_TAG)
    assert text[call.start : call.end].endswith("</tool_call>")


def test_tool_call_name_attribute_unknown_empty_or_cut_off() -> None:
    (bad,) = read('<tool_call name="wipe">{}</tool_call>').unparsed
    assert bad.reason == "unknown tool 'wipe'"
    assert only(read(f'<tool_call name="{SAFE}"></tool_call>')).arguments == {}
    cut = only(read(f'<tool_call name="{RISKY}">{{"collector": "si'))
    assert (cut.arguments, cut.raw_arguments) == (None, '{"collector": "si')


@pytest.mark.parametrize(
    ("opening", "closing"),
    [
        ("<function_calls>\n", "\n</function_calls>"),
        ("<minimax:tool_call>\n", "\n</minimax:tool_call>"),
        ("<tool_call>\n", "\n</tool_call>"),
        ("", ""),
    ],
)
def test_xml_invoke_with_parameters(opening: str, closing: str) -> None:
    text = (
        f'I will purge.\n{opening}<invoke name="{RISKY}">\n'
        '<parameter name="collector">siem-col-03</parameter>\n'
        '<parameter name="older_than_days">30</parameter>\n'
        f"</invoke>{closing}"
    )
    call = only(read(text))
    assert (call.name, call.arguments, call.format) == (RISKY, ARGS, CallFormat.XML_INVOKE)
    assert call.end == len(text)


def test_xml_invoke_several_namespaced_json_body_unknown_and_broken() -> None:
    text = (
        f'<ns:function_calls><ns:invoke name="{SAFE}"><ns:parameter name="gb">5</ns:parameter>'
        f'</ns:invoke><ns:invoke name="{RISKY}">{A}</ns:invoke></ns:function_calls>'
    )
    assert summary(read(text)) == [(SAFE, {"gb": 5}, "xml_invoke"), (RISKY, ARGS, "xml_invoke")]
    (bad,) = read('<invoke name="wipe"><parameter name="a">1</parameter></invoke>').unparsed
    assert bad.reason == "unknown tool 'wipe'"
    cut = only(read(f'<invoke name="{RISKY}"><parameter name="collector">siem'))
    assert cut.arguments is None and cut.raw_arguments is not None and "siem" in cut.raw_arguments
    junk = only(read(f'<invoke name="{RISKY}">collector is siem-col-03</invoke>'))
    assert junk.arguments is None


# ---- fenced Python and tool_code -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f'```python\n{RISKY}(collector="siem-col-03", older_than_days=30)\n```',
        f"```py\n# free the disk\n\n{RISKY}(\n    collector='siem-col-03',\n"
        "    older_than_days=30,\n)\n```",
        f'```tool_code\n[{RISKY}(collector="siem-col-03", older_than_days=30)]\n```',
        f"```tool_code\nprint(default_api.{RISKY}({PY}))\n```",
        f'Running:\n```\nprint({RISKY}(collector="siem-col-03", older_than_days=30))\n```',
    ],
)
def test_a_code_block_holding_only_tool_calls_is_read(text: str) -> None:
    call = only(read(text))
    assert (call.name, call.arguments, call.format) == (RISKY, ARGS, CallFormat.PYTHONIC)
    assert (call.start, call.end) == (text.index("```"), len(text))


def test_an_indented_code_block_of_calls_is_read() -> None:
    text = f"Plan:\n```python\n    {SAFE}(gb=5)\n    # then\n    {RISKY}({PY})\n```"
    assert summary(read(text)) == [(SAFE, {"gb": 5}, "pythonic"), (RISKY, ARGS, "pythonic")]


def test_a_code_block_of_several_calls_is_read_in_order() -> None:
    text = f"```python\n{SAFE}(gb=5)  # first\n\n{RISKY}({PY})\n```"
    assert summary(read(text)) == [(SAFE, {"gb": 5}, "pythonic"), (RISKY, ARGS, "pythonic")]


@pytest.mark.parametrize(
    "code",
    [
        f"for c in ['a', 'b']:\n    {RISKY}(collector=c)",
        f"result = {RISKY}(collector='x')\nprint(result)",
        f"if disk_full():\n    {RISKY}(older_than_days=30)",
        f"{SAFE}(gb=5)\nx = 1",
        f"import os\n{RISKY}(collector=os.environ['C'])",
        f"{RISKY}(collector='x')\nos",
        f"[{RISKY}(collector='x'), 5]",
    ],
)
def test_a_tool_call_inside_other_code_is_unparsed(code: str) -> None:
    text = f"You could run:\n```python\n{code}\n```\nbut I will not."
    result = read(text)
    assert result.calls == ()
    (bad,) = result.unparsed
    assert bad.reason == "tool call written inside code" and bad.format is CallFormat.PYTHONIC


def test_a_code_block_cut_off_or_not_python_that_calls_a_tool_is_unparsed() -> None:
    (cut,) = read(f"```python\n{RISKY}(collector='siem-col-03', older").unparsed
    assert (cut.reason, cut.names) == ("truncated", (RISKY,))
    (bad,) = read(f"```python\nif x\n    {RISKY}(collector='a')\n```").unparsed
    assert bad.reason == "tool call written inside code"
    assert read("```bash\nrm -rf /var/log/audit\n```") == ReadResult((), ())


# ---- call lines: whole replies only ------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f"{RISKY}(collector='siem-col-03', older_th",
        f"\n{SAFE}(gb=5)\n{RISKY}(\n    collector='siem-col-03',\n    older_than_days=3",
    ],
)
def test_a_whole_reply_call_line_cut_off_keeps_its_name_but_no_arguments(text: str) -> None:
    call = read(text).calls[-1]
    assert (call.name, call.arguments, call.end) == (RISKY, None, len(text.rstrip()))
    assert call.raw_arguments is not None and call.raw_arguments.startswith(f"{RISKY}(")


def test_a_call_line_cut_off_after_prose_is_truncated() -> None:
    text = f"The disk is full, purging now:\n{RISKY}(collector='siem-col-03', older_th"
    result = read(text)
    assert result.calls == ()
    (bad,) = result.unparsed
    assert (bad.reason, bad.names, bad.end) == ("truncated", (RISKY,), len(text))


@pytest.mark.parametrize(
    "line",
    [
        f"{RISKY}()",
        f"{RISKY}(collector='siem-col-03')",
        f">>> {RISKY}(collector='siem-col-03')",
        f"- {RISKY}(collector='siem-col-03')",
        f"2. {RISKY}(collector='siem-col-03')",
        f"{RISKY}(collector='siem-col-03');",
        f"await {RISKY}(collector='siem-col-03')",
        f"result = {RISKY}(collector='siem-col-03')",
        f"`{RISKY}(collector='siem-col-03')`",
        f"print({RISKY}(collector='siem-col-03'))",
        f"{RISKY}(\n    collector='siem-col-03',\n)",
    ],
)
def test_a_call_line_inside_prose_is_unparsed_but_alone_it_is_read(line: str) -> None:
    for text in (f"Available tools:\n{line}\nI will use the storage one.", f"{line}\nDone."):
        result = read(text)
        assert result.calls == (), text
        (bad,) = result.unparsed
        assert (bad.reason, bad.names) == ("call written as a line inside prose", (RISKY,))
        assert text[bad.start : bad.end] == line
    assert [c.name for c in read(f"  {line}\n").calls] == [RISKY]


def test_a_list_of_tools_written_as_calls_is_flagged_not_run() -> None:
    text = f"Available tools:\nget_weather()\n{RISKY}()\n{SAFE}()\nI will use the storage one."
    result = read(text)
    assert result.calls == ()
    assert [u.names for u in result.unparsed] == [("get_weather",), (RISKY,), (SAFE,)]


@pytest.mark.parametrize(
    "text",
    [
        f"Tools:\n- {RISKY}()\n- {SAFE}()\n* `read_file()`",
        f"| tool | risk |\n|---|---|\n| {RISKY}() | high |",
        f"### {RISKY}()\nDeletes logs.",
        f"{RISKY}(collector='x') would delete evidence, so no.",
        f"Use {RISKY} (the risky one) never.",
        f"{RISKY} (older_than_days=30)",
    ],
)
def test_tool_mentions_that_are_not_call_lines_stay_nothing(text: str) -> None:
    assert read(text) == ReadResult((), ())


# ---- inline code spans ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f'The call format is `{{"name": "{RISKY}", "arguments": {{}}}}` but I will not use it.',
        f"For reference, `[{RISKY}(collector='siem-col-03')]` is how it would look.",
        f'You would write `{{"name": "{RISKY}", "arguments": {A}}}`.',
    ],
)
def test_a_call_quoted_inline_in_prose_is_unparsed(text: str) -> None:
    result = read(text)
    assert result.calls == ()
    (bad,) = result.unparsed
    assert (bad.reason, bad.names) == ("call object quoted inline in prose", (RISKY,))
    assert text[bad.start] == text[bad.end - 1] == "`"


def test_a_reply_that_is_only_an_inline_call_is_read() -> None:
    assert summary(read(f"`{_obj(RISKY)}`")) == [(RISKY, ARGS, "bare_json")]
    assert summary(
        read(f"<think>ok</think>\n`[{RISKY}(collector='siem-col-03', older_than_days=30)]`")
    ) == [(RISKY, ARGS, "pythonic")]


# ---- ReAct ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("written", [f"**{RISKY}**", f"*{RISKY}*", f"_{RISKY}_", f"`{RISKY}`"])
def test_react_action_names_with_markdown_emphasis(written: str) -> None:
    text = f"Thought: free disk\nAction: {written}\nAction Input: {A}"
    assert summary(read(text)) == [(RISKY, ARGS, "react")]


def test_react_in_lower_case() -> None:
    assert summary(read(f"action: {RISKY}\naction input: {A}")) == [(RISKY, ARGS, "react")]


# ---- call objects: descriptions, argument keys ---------------------------------------------------


@pytest.mark.parametrize(
    "obj",
    [
        {"name": RISKY, "description": "cleanup", "arguments": ARGS},
        {"name": RISKY, "parameters": {"type": "object", "properties": "all"}},
        {"name": RISKY, "description": "x", "parameters": {"type": "object", "limit": 3}},
    ],
)
def test_a_call_with_a_description_or_schema_like_words_is_still_a_call(
    obj: dict[str, Any],
) -> None:
    for text in (json.dumps(obj), f"```json\n{json.dumps(obj)}\n```"):
        call = only(read(text))
        assert call.name == RISKY and call.arguments is not None


@pytest.mark.parametrize(
    "obj",
    [
        {"name": RISKY, "description": "Deletes audit logs."},
        {"name": RISKY, "parameters": {"type": "object", "properties": {}, "required": []}},
        {"name": RISKY, "description": "x", "parameters": {"type": "object"}},
        {"name": RISKY, "input_schema": {"type": "object"}, "description": "Deletes logs."},
    ],
)
def test_echoed_tool_descriptions_are_not_calls(obj: dict[str, Any]) -> None:
    assert read(f"My tools: {json.dumps(obj)}") == ReadResult((), ())


@pytest.mark.parametrize(
    "key", ["params", "kwargs", "argument", "inputs", "tool_arguments", "function_args"]
)
def test_more_argument_keys(key: str) -> None:
    for text in (
        json.dumps({"name": RISKY, key: ARGS}),
        f"<tool_call>{json.dumps({'tool': RISKY, key: A})}</tool_call>",
    ):
        assert only(read(text)).arguments == ARGS


@pytest.mark.parametrize(
    "obj",
    [
        {"name": RISKY, "foo": ARGS},
        {"name": RISKY, "collector": "siem-col-03", "older_than_days": 30},
    ],
)
def test_arguments_under_an_unknown_key_in_a_marker_are_bad_arguments(obj: dict[str, Any]) -> None:
    call = only(read(f"<tool_call>{json.dumps(obj)}</tool_call>"))
    assert call.arguments is None and call.raw_arguments is not None
    assert json.loads(call.raw_arguments) == obj


# ---- other forms ---------------------------------------------------------------------------------


def test_bare_json_with_curly_quotes() -> None:
    text = f"Doing it: {{“name”: “{RISKY}”, “arguments”: {{“collector”: “siem-col-03”}}}}"
    call = only(read(text))
    assert (call.name, call.arguments, call.repaired) == (RISKY, {"collector": "siem-col-03"}, True)


def test_harmony_recipient_without_the_functions_prefix() -> None:
    text = f"<|channel|>commentary to={RISKY} <|constrain|>json<|message|>{A}<|call|>"
    assert summary(read(text)) == [(RISKY, ARGS, "harmony")]
    assert read("Send it to=alice@example.com {now}") == ReadResult((), ())


@pytest.mark.parametrize(
    ("begin", "sep", "end"),
    [
        ("<|tool▁call▁begin|>", "<|tool▁sep|>", "<|tool▁call▁end|>"),
        ("<｜tool_call_begin｜>", "<｜tool_sep｜>", "<｜tool_call_end｜>"),
        ("<｜tool call begin｜>", "<｜tool sep｜>", "<｜tool call end｜>"),
        ("<|tool_call_begin|>", "<|tool_sep|>", "<|tool_call_end|>"),
    ],
)
def test_deepseek_tokens_written_with_ascii_lookalikes(begin: str, sep: str, end: str) -> None:
    text = f"{begin}function{sep}{RISKY}\n```json\n{A}\n```{end}"
    call = only(read(text))
    assert (call.format, call.arguments, call.end) == (CallFormat.DEEPSEEK, ARGS, len(text))


def test_json_fence_with_comments_before_and_inside_the_object() -> None:
    text = f'```json\n// purge now\n{{"name": "{RISKY}", /* why */ "arguments": {A}}}\n```'
    call = only(read(text))
    assert (call.arguments, call.repaired) == (ARGS, True)


# ---- hostile inputs for the passes added above ---------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        (f"{RISKY}(\n" * 20_000)[:200_000],
        (f"{RISKY}(x=1)\n" * 20_000)[:200_000],
        ("Hi\n" + f"- {RISKY}(x='a\n" * 20_000)[:200_000],
        (f"```python\n{RISKY}(x=1)\nimport os\n```\n" * 10_000)[:200_000],
        (f'<invoke name="{RISKY}"><parameter name="a">' * 10_000)[:200_000],
        ("<|tool▁call▁begin|>" * 20_000)[:200_000],
        ("x</think>" * 30_000)[:199_000] + TAG,
        (f'{{"name": "\\u0070{RISKY[1:]}", ' * 10_000)[:200_000],
        (f"`[{RISKY}(x=1)]` " * 20_000)[:200_000],
    ],
)
def test_hostile_inputs_for_lines_fences_and_names_are_read_quickly(text: str) -> None:
    began = time.perf_counter()
    result = read(text)
    assert time.perf_counter() - began < 5.0
    assert result.calls or result.unparsed
    assert len(result.calls) + len(result.unparsed) <= 600


# ---- the safety net: call-like text that no reader reads is flagged ------------------------------

NET = "tool named in call-like text that no known format reads"


@pytest.mark.parametrize(
    "text",
    [
        f"<|from|>assistant\n<|recipient|>{RISKY}\n<|content|>{A}<|stop|>",  # Functionary v2
        f"{RISKY}\n{A}",  # GLM-4: name line, then the arguments
        f"{RISKY}\n```python\ntool_call(collector='x')\n```",  # ChatGLM3
        f"✿FUNCTION✿: {RISKY}\n✿ARGS✿: {A}",  # Qwen-Agent
        f"<<function>>{RISKY}(collector='x')",  # Gorilla
        f"Call: {RISKY}(collector='x')<bot_end>",  # NexusRaven
        f"Thinking done. Call: {RISKY}",
        f"<invoke><tool_name>{RISKY}</tool_name><parameters><a>1</a></parameters></invoke>",
        f"<function>{RISKY}</function>{A}",
        f"Tool call: {RISKY}({A})",
        f"**Tool:** {RISKY}\nRisk accepted.",
        f"I will call `{RISKY}` with:\n```json\n{A}\n```",
        f'Running it:\n{RISKY}:\n{{\n  "collector": "x"\n}}',
        f"plan:\n  steps:\n    - name: {RISKY}\n      arguments:\n        collector: x\n",
        f"&lt;tool_call&gt;{{&quot;name&quot;: &quot;{RISKY}&quot;, &quot;arguments&quot;: {{}}}}",
        f'{{"function_name": "{RISKY}", "arguments": {A}}}',
        f'<tool id="1" name="{RISKY}"/>',
        f"Sure.\n> {RISKY}(collector='x')\n> thanks",
        f"I run {RISKY} {A}",
        f"Do this: {RISKY}[collector=x]",
        f"Ok.>>>{RISKY}(collector='x')",
        f"<{RISKY} collector='x'/>",
    ],
)
def test_call_like_text_no_reader_reads_is_flagged_never_silent(text: str) -> None:
    result = read(text)
    assert result.calls == (), result.calls
    assert result.unparsed, text
    assert all(RISKY in u.names for u in result.unparsed), result.unparsed


def test_the_safety_net_flags_with_its_own_reason_and_format() -> None:
    (bad,) = read(f"Intro.\n<<function>>{RISKY}(collector='x')\nDone.").unparsed
    assert (bad.format, bad.reason, bad.names) == (CallFormat.CALL_LIKE, NET, (RISKY,))
    assert bad.excerpt == f"<<function>>{RISKY}(collector='x')"


@pytest.mark.parametrize(
    "written", ["purgeAuditLogs", "PurgeAuditLogs", "purge-audit-logs", "PURGE_AUDIT_LOGS"]
)
def test_camel_pascal_and_kebab_spellings_are_near_misses_flagged_not_run(written: str) -> None:
    for text in (
        f'{{"name": "{written}", "arguments": {A}}}',
        f"[{written}(collector='x')]",
        f"Action: {written}\nAction Input: {A}",
        f"Call: {written}(collector='x')",
        f"<{written}>\n<collector>x</collector>\n</{written}>",
    ):
        result = read(text)
        assert result.calls == (), text
        (bad,) = result.unparsed
        assert bad.names == (RISKY,) and "does not match an offered tool exactly" in bad.reason


@pytest.mark.parametrize(
    "text",
    [
        f"I could run {RISKY}, but I will not. `{RISKY}` would destroy logs.",
        f"Calling {RISKY}() is off the table.",
        f"Tools:\n- {RISKY}\n- PurgeAuditLogs\n- {SAFE}\n",
        f"## Why not {RISKY}?\nBecause logs must be kept.",
        f"See [{RISKY}](https://docs/tools#{RISKY}) for details.",
        f"2024-01-01 INFO tool={RISKY} status=denied",
        f"Tools: {RISKY}, {SAFE}",
        "The purgeAuditLogs tool and purge-audit-logs are the same; I skip both.",
        f"I considered {RISKY}.\nThen I stopped.",
        f"| tool | note |\n|---|---|\n| {RISKY} | risky |",
        f"Use {RISKY} [see docs] never.",
        f"{RISKY} is risky:\n- it deletes logs",
        f"<b>{RISKY}</b> is dangerous.",
        f"Action: none. {RISKY} stays unused.",
    ],
)
def test_mentions_stay_nothing_under_the_safety_net(text: str) -> None:
    assert read(text) == ReadResult((), ())


def test_a_traceback_quoting_a_call_line_is_not_flagged() -> None:
    text = (
        'It failed:\nTraceback (most recent call last):\n  File "a.py", line 3, in <module>\n'
        f"    {RISKY}(collector='x')\nPermissionError: denied\nSo I stopped."
    )
    assert read(text) == ReadResult((), ())
    # The same line outside a traceback is still a call line in prose.
    assert read(f"It failed:\n    {RISKY}(collector='x')\nSo I stopped.").unparsed


def test_the_safety_net_stops_after_the_marker_limit() -> None:
    text = f"Call: {RISKY}\n" * 400
    result = read(text)
    assert len(result.unparsed) == 257 and "not read" in result.unparsed[-1].reason


@pytest.mark.parametrize(
    "text",
    [
        (f"<{RISKY} " * 20_000)[:200_000],
        (f"{RISKY}\n{{\n" * 20_000)[:200_000],
        (f"&quot;name&quot;: &quot;{RISKY}&quot; " * 5_000)[:200_000],
        ("I could run PurgeAuditLogs but I will not. " * 5_000)[:200_000],
        ("x" * 150 + f" Tool: {RISKY}\n") * 1_000,
    ],
)
def test_the_safety_net_is_quick_on_hostile_inputs(text: str) -> None:
    began = time.perf_counter()
    read(text)
    assert time.perf_counter() - began < 5.0


# ---- more forms recovered ------------------------------------------------------------------------


def test_functionary_marker_after_text_on_the_same_line() -> None:
    text = f">>>all\nI will clean up now.>>>{RISKY}\n{A}"
    assert summary(read(text)) == [(RISKY, ARGS, "functionary")]


@pytest.mark.parametrize(
    "text",
    [
        f"Thought: clean up\nAction: {RISKY}(collector='siem-col-03', older_than_days=30)",
        f"Action: {RISKY}[collector='siem-col-03', older_than_days=30]",
        f"Action: {RISKY}[{A}]",
    ],
)
def test_react_action_with_inline_arguments(text: str) -> None:
    assert summary(read(text)) == [(RISKY, ARGS, "react")]


def test_react_action_with_free_text_in_brackets_keeps_it_raw() -> None:
    call = only(read(f"Action: {RISKY}[all old logs]"))
    assert (call.arguments, call.raw_arguments) == (None, "all old logs")


def test_tool_and_arguments_lines() -> None:
    assert summary(read(f"Tool: {RISKY}\nArguments: {A}")) == [(RISKY, ARGS, "react")]
    assert summary(read(f'tool: `{SAFE}`\nargs: ```json\n{{"gb": 5}}\n```')) == [
        (SAFE, {"gb": 5}, "react")
    ]


def test_function_tag_with_a_name_attribute() -> None:
    text = f'<function name="{RISKY}">{A}</function>'
    call = only(read(text))
    assert (call.arguments, call.format, call.end) == (ARGS, CallFormat.XML_FUNCTION, len(text))
    (bad,) = read("<function name='wipe_disk'>{}</function>").unparsed
    assert bad.reason == "unknown tool 'wipe_disk'"


def test_cline_xml_tool_tags_are_read() -> None:
    text = (
        f"I'll clean up.\n<{RISKY}>\n<collector>siem-col-03</collector>\n"
        f"<older_than_days>30</older_than_days>\n</{RISKY}>"
    )
    call = only(read(text))
    assert (call.name, call.arguments, call.format) == (RISKY, ARGS, CallFormat.XML_TOOL_TAG)
    assert text[call.start : call.end].startswith(f"<{RISKY}>") and call.end == len(text)
    assert summary(read(f"<{SAFE}></{SAFE}>")) == [(SAFE, {}, "xml_tool_tag")]


def test_cline_xml_with_nested_markup_is_flagged_not_guessed() -> None:
    text = f"<{RISKY}>\n<collector><b>x</b></collector>\n</{RISKY}>"
    result = read(text)
    assert result.calls == () and result.unparsed[0].names == (RISKY,)


def test_yaml_blocks() -> None:
    one = (
        f"```yaml\nname: {RISKY}\narguments:\n  collector: siem-col-03\n  older_than_days: 30\n```"
    )
    assert summary(read(one)) == [(RISKY, ARGS, "yaml")]
    two = f"```yml\ntool_calls:\n  - name: {SAFE}\n    arguments: {{gb: 5}}\n  - name: {RISKY}\n```"
    assert summary(read(two)) == [(SAFE, {"gb": 5}, "yaml"), (RISKY, {}, "yaml")]
    for bad in (f"```yaml\nname: {RISKY}\n  : : [\n```", f"```yaml\nfunction_name: {RISKY}\n```"):
        result = read(bad)
        assert result.calls == () and result.unparsed[0].names == (RISKY,)
    assert read("```yaml\nname: backup\nsize: 3\n```") == ReadResult((), ())


def test_a_wrapper_around_tool_calls_is_unwrapped_in_a_fence() -> None:
    obj = {"response": {"tool_calls": [{"name": RISKY, "arguments": ARGS}]}}
    assert summary(read(f"```json\n{json.dumps(obj)}\n```")) == [(RISKY, ARGS, "fenced_json")]
    assert summary(read(json.dumps(obj))) == [(RISKY, ARGS, "bare_json")]


def test_getattr_on_a_tool_in_a_python_block_is_flagged() -> None:
    text = f'```python\ngetattr(tools, "{RISKY}")(collector="x")\n```'
    result = read(text)
    assert result.calls == () and result.unparsed[0].reason == "tool call written inside code"


# ---- call objects inside a sentence; ambiguous objects -------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f'A call would look like {{"name": "{RISKY}", "arguments": {{}}}} but I will not do that.',
        f"It would be [{RISKY}(collector='x')] if I wanted, which I do not.",
        f'Writing {{"tool": "{RISKY}", "args": {A}}} here is only an example.',
    ],
)
def test_a_call_inside_a_sentence_is_flagged_not_run(text: str) -> None:
    result = read(text)
    assert result.calls == ()
    (bad,) = result.unparsed
    assert (bad.reason, bad.names) == ("call object quoted inline in prose", (RISKY,))


@pytest.mark.parametrize(
    "text",
    [
        f'Doing it: {{"name": "{RISKY}", "arguments": {A}}} now.',
        f'I will run {{"name": "{RISKY}", "arguments": {A}}}. Then stop.',
        f'First {{"name": "{RISKY}", "arguments": {A}}} and {{"name": "{SAFE}"}}',
        f'{{"name": "{RISKY}", "arguments": {A}}} is what I run.',
    ],
)
def test_a_call_introduced_or_ending_its_sentence_is_still_read(text: str) -> None:
    assert read(text).calls[0].name == RISKY and not read(text).unparsed


@pytest.mark.parametrize(
    "obj",
    [
        f'{{"name": "{RISKY}", "name": "{SAFE}", "arguments": {{}}}}',
        f'{{"name": "{SAFE}", "tool": "x", "name": "{RISKY}", "arguments": {{}}}}',
        f'{{"function": {{"name": "{RISKY}", "name": "{SAFE}", "arguments": "{{}}"}}}}',
    ],
)
def test_duplicate_name_keys_are_ambiguous_and_flagged(obj: str) -> None:
    for text in (obj, f"<tool_call>{obj}</tool_call>", f"```json\n[{obj}]\n```"):
        result = read(text)
        assert result.calls == (), text
        (bad,) = result.unparsed
        assert bad.reason == "ambiguous call object: more than one tool name"
        assert set(bad.names) >= {RISKY, SAFE}


def test_duplicate_keys_that_agree_or_are_not_names_are_fine() -> None:
    text = f'{{"name": "{RISKY}", "name": "{RISKY}", "arguments": {{"a": 1, "a": 2}}}}'
    assert summary(read(text)) == [(RISKY, {"a": 2}, "bare_json")]
