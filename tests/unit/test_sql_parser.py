"""The SQL dialect: every statement form, quoting, scripts, error positions; fuzzing only yields SqlSyntaxError."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings, strategies as st

from fs_bus.client.models import StartPosition
from fs_bus.errors import SqlSyntaxError
from fs_bus.sql.parser import (
    KEYWORDS, CreateFunction, DescribeFunction, DropFunction, DropShadow, PromoteFunction, RollbackFunction,
    ShowDiff, ShowFunctions, ShowHistory, StartFunction, StopFunction, parse,
)


def refused(text: str) -> SqlSyntaxError:
    with pytest.raises(SqlSyntaxError) as info:
        parse(text)
    return info.value


# --- every statement form, keywords in any case -----------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("CREATE FUNCTION WITH ('function_path'='upper.wasm', 'config_path'='config.yaml')",
     CreateFunction({"function_path": "upper.wasm", "config_path": "config.yaml"})),
    ("create function with ('function_path'='a.wasm','config_path'='c.yaml')",
     CreateFunction({"function_path": "a.wasm", "config_path": "c.yaml"})),
    ("CrEaTe FuNcTiOn WiTh ( 'k' = 'v' )", CreateFunction({"k": "v"})),
    ("START FUNCTION upper", StartFunction("upper")),
    ("start function upper", StartFunction("upper")),
    ("sTaRt FUNCTION my-fn", StartFunction("my-fn")),
    ("STOP FUNCTION upper", StopFunction("upper")),
    ("Stop Function f1.v2_x", StopFunction("f1.v2_x")),
    ("DROP FUNCTION upper", DropFunction("upper", False)),
    ("drop function upper", DropFunction("upper", False)),
    ("DROP FUNCTION IF EXISTS upper", DropFunction("upper", True)),
    ("drop Function if exists upper", DropFunction("upper", True)),
    ("dRoP fUnCtIoN iF eXiStS 0abc", DropFunction("0abc", True)),
    ("SHOW FUNCTIONS", ShowFunctions()),
    ("show functions", ShowFunctions()),
    ("ShOw FuNcTiOnS;", ShowFunctions()),
    ("CREATE OR REPLACE FUNCTION WITH ('function_path'='a.wasm', 'config_path'='c.yaml', 'mode'='shadow')",
     CreateFunction({"function_path": "a.wasm", "config_path": "c.yaml", "mode": "shadow"}, True)),
    ("create or replace function with ('k'='v')", CreateFunction({"k": "v"}, True)),
    ("ROLLBACK FUNCTION upper", RollbackFunction("upper")),
    ("rollback function upper to revision 3", RollbackFunction("upper", 3)),
    ("SHOW FUNCTION HISTORY upper", ShowHistory("upper")),
    ("show function diff upper", ShowDiff("upper")),
    ("PROMOTE FUNCTION upper", PromoteFunction("upper")),
    ("drop shadow upper", DropShadow("upper")),
    # The upgrade words are not reserved: they name functions too.
    ("DROP FUNCTION history", DropFunction("history", False)),
    ("ROLLBACK FUNCTION to TO REVISION 1", RollbackFunction("to", 1)),
    ("SHOW FUNCTION HISTORY diff", ShowHistory("diff")),
    ("STOP FUNCTION shadow", StopFunction("shadow")),
])
def test_statement_forms_in_mixed_case(text, expected):
    assert parse(text) == [expected]


def test_names_keep_their_case():
    assert parse("STOP FUNCTION MyFn") == [StopFunction("MyFn")]
    assert parse('STOP FUNCTION "MyFn"') == [StopFunction("MyFn")]


# --- quoting ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, name", [
    ('START FUNCTION "My Fn"', "My Fn"),
    ("START FUNCTION `My Fn`", "My Fn"),
    ('START FUNCTION "say ""hi"""', 'say "hi"'),
    ("START FUNCTION `back``tick`", "back`tick"),
    ('START FUNCTION "it\'s"', "it's"),
    ("START FUNCTION `a \"b\"`", 'a "b"'),
    ('START FUNCTION "two\nlines"', "two\nlines"),
    ('START FUNCTION "semi;colon -- not a comment"', "semi;colon -- not a comment"),
])
def test_quoted_identifiers(text, name):
    assert parse(text) == [StartFunction(name)]


def test_quoted_identifier_right_after_keyword_needs_no_space():
    assert parse('DROP FUNCTION IF EXISTS"x y"') == [DropFunction("x y", True)]


def test_empty_quoted_identifier_refused():
    exc = refused('STOP FUNCTION ""')
    assert exc.position == 14 and "empty quoted name" in str(exc)


@pytest.mark.parametrize("literal, value", [
    ("'plain'", "plain"),
    ("'it''s'", "it's"),
    ("''''", "'"),
    ("''", ""),
    ("'a b; c -- d'", "a b; c -- d"),
    ("'\"dq\" and `bq`'", '"dq" and `bq`'),
    ("'multi\nline'", "multi\nline"),
])
def test_string_literals_with_doubled_quote_escapes(literal, value):
    assert parse(f"CREATE FUNCTION WITH ('k'={literal}, {literal}='v')") == [CreateFunction({"k": value, value: "v"})]


def test_property_order_is_kept():
    (stmt,) = parse("CREATE FUNCTION WITH ('b'='1', 'a'='2', 'c'='3')")
    assert list(stmt.properties) == ["b", "a", "c"]


# --- scripts --------------------------------------------------------------------------------------------------


def test_script_split_on_semicolons_with_empty_statements_and_comments():
    script = """\
-- deploy the upper function
;;
CREATE FUNCTION WITH (
    'function_path' = 'upper.wasm', -- the component
    'config_path' = 'config.yaml'
);
  ;
-- a comment; with a semicolon in it
STOP FUNCTION upper;;START FUNCTION upper ;
drop function if exists "old one"; show functions -- trailing comment"""
    assert parse(script) == [
        CreateFunction({"function_path": "upper.wasm", "config_path": "config.yaml"}),
        StopFunction("upper"),
        StartFunction("upper"),
        DropFunction("old one", True),
        ShowFunctions(),
    ]


@pytest.mark.parametrize("text", ["", "   ", ";", ";;;", "-- only a comment", "-- a\n;\n-- b\n", "\n\t\r\n"])
def test_empty_scripts(text):
    assert parse(text) == []


def test_trailing_semicolon_is_optional():
    assert parse("SHOW FUNCTIONS") == parse("SHOW FUNCTIONS;") == parse("SHOW FUNCTIONS;\n") == [ShowFunctions()]


def test_comment_after_a_punctuation_or_space():
    assert parse("SHOW FUNCTIONS --c\n;STOP FUNCTION f;--c") == [ShowFunctions(), StopFunction("f")]


def test_comment_glued_to_a_bare_word():
    assert parse("STOP FUNCTION upper-- pause it\n;SHOW FUNCTIONS-- all") == [StopFunction("upper"), ShowFunctions()]


def test_statements_need_a_semicolon_between_them():
    exc = refused("SHOW FUNCTIONS SHOW FUNCTIONS")
    assert (exc.line, exc.column, exc.position) == (1, 16, 15)
    assert "expected ';', found 'SHOW'" in str(exc)


# --- errors: where and what -----------------------------------------------------------------------------------


def test_error_on_line_3_reports_line_column_and_position():
    script = "SHOW FUNCTIONS;\nSTOP FUNCTION a;\n  STRAT FUNCTION b;\n"
    exc = refused(script)
    assert exc.position == script.index("STRAT")
    assert (exc.line, exc.column) == (3, 3)
    assert exc.text == script
    assert str(exc) == ("syntax error at line 3, column 3: expected a statement (CREATE, START, STOP, DROP, SHOW, DESCRIBE, ROLLBACK or PROMOTE), "
                        "found 'STRAT'\n  STRAT FUNCTION b;\n  ^")


def test_error_in_the_middle_of_a_line():
    script = "-- header\n\nCREATE FUNCTION WITH ('a'='1' 'b'='2')"
    exc = refused(script)
    assert exc.position == script.index("'b'")
    assert (exc.line, exc.column) == (3, 31)
    assert "expected ')', found 'b'" in str(exc)
    assert str(exc).endswith("\n" + " " * 30 + "^")


def test_error_at_end_of_input():
    exc = refused("SHOW FUNCTIONS;\nSTOP FUNCTION")
    assert exc.position == len("SHOW FUNCTIONS;\nSTOP FUNCTION")
    assert (exc.line, exc.column) == (2, 14)
    assert "expected a function name, found end of input" in str(exc)


@pytest.mark.parametrize("text, position", [
    ("CREATE FUNCTION WITH ('function_path'='upper.wasm", 38),
    ('STOP FUNCTION "never closed', 14),
    ("STOP FUNCTION `never closed", 14),
    ("CREATE FUNCTION WITH ('it''s", 22),
    ("CREATE FUNCTION WITH ('a'='b''", 26),
])
def test_unterminated_quotes_point_at_the_opening_quote(text, position):
    exc = refused(text)
    assert exc.position == position
    assert f"unterminated quoted text starting with {text[position]}" in str(exc)


def test_a_property_given_twice_is_refused_at_its_second_key():
    text = "CREATE FUNCTION WITH ('a'='1', 'a'='2')"
    exc = refused(text)
    assert exc.position == text.rindex("'a'") and "given twice" in str(exc)


@pytest.mark.parametrize("keyword", KEYWORDS)
def test_a_keyword_is_no_bare_name_but_works_quoted(keyword):
    refused(f"DROP FUNCTION {keyword.lower()}")
    assert parse(f'DROP FUNCTION "{keyword.lower()}"') == [DropFunction(keyword.lower())]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_text_raises_only_syntax_errors_with_a_valid_position(text):
    try:
        parse(text)
    except SqlSyntaxError as exc:
        assert 0 <= exc.position <= len(text)


# --- generated statements rendered as SQL parse back ---------------------------------------------------------

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)
props = st.dictionaries(st.text(max_size=10), st.text(max_size=10), min_size=1, max_size=3)
statements = st.one_of(
    st.builds(CreateFunction, props, st.booleans()),
    st.builds(RollbackFunction, names, st.none() | st.integers(1, 10**6)),
    st.builds(ShowHistory, names),
    st.builds(ShowDiff, names),
    st.builds(PromoteFunction, names),
    st.builds(DropShadow, names),
    st.builds(StartFunction, names),
    st.builds(StopFunction, names),
    st.builds(DropFunction, names, st.booleans()),
    st.just(ShowFunctions()),
)


def _kw(draw, word):
    return "".join(c.upper() if draw(st.booleans()) else c.lower() for c in word)


def _name(draw, name):
    bare = re.fullmatch(r"[A-Za-z_](?:[A-Za-z0-9_.]|-(?!-))*", name) and name.upper() not in KEYWORDS
    if bare and draw(st.booleans()):
        return name
    if draw(st.booleans()):
        return '"' + name.replace('"', '""') + '"'
    return "`" + name.replace("`", "``") + "`"


def _lit(value):
    return "'" + value.replace("'", "''") + "'"


@st.composite
def rendered(draw, stmts):
    space = lambda: draw(st.sampled_from([" ", "  ", "\n", "\t", " -- note\n"]))
    parts = []
    for stmt in stmts:
        if isinstance(stmt, CreateFunction):
            body = ("," + space()).join(f"{_lit(k)}{space()}={space()}{_lit(v)}" for k, v in stmt.properties.items())
            replace = f"{_kw(draw, 'or')}{space()}{_kw(draw, 'replace')}{space()}" if stmt.replace else ""
            text = (f"{_kw(draw, 'create')}{space()}{replace}{_kw(draw, 'function')}{space()}{_kw(draw, 'with')}"
                    f"{space()}({body})")
        elif isinstance(stmt, RollbackFunction):
            to = (f"{space()}{_kw(draw, 'to')}{space()}{_kw(draw, 'revision')}{space()}{stmt.revision}"
                  if stmt.revision else "")
            text = f"{_kw(draw, 'rollback')}{space()}{_kw(draw, 'function')}{space()}{_name(draw, stmt.name)}{to}"
        elif isinstance(stmt, (ShowHistory, ShowDiff)):
            what = "history" if isinstance(stmt, ShowHistory) else "diff"
            text = (f"{_kw(draw, 'show')}{space()}{_kw(draw, 'function')}{space()}{_kw(draw, what)}{space()}"
                    f"{_name(draw, stmt.name)}")
        elif isinstance(stmt, PromoteFunction):
            text = f"{_kw(draw, 'promote')}{space()}{_kw(draw, 'function')}{space()}{_name(draw, stmt.name)}"
        elif isinstance(stmt, DropShadow):
            text = f"{_kw(draw, 'drop')}{space()}{_kw(draw, 'shadow')}{space()}{_name(draw, stmt.name)}"
        elif isinstance(stmt, ShowFunctions):
            text = f"{_kw(draw, 'show')}{space()}{_kw(draw, 'functions')}"
        elif isinstance(stmt, DropFunction):
            guard = f"{_kw(draw, 'if')}{space()}{_kw(draw, 'exists')}{space()}" if stmt.if_exists else ""
            text = f"{_kw(draw, 'drop')}{space()}{_kw(draw, 'function')}{space()}{guard}{_name(draw, stmt.name)}"
        else:
            verb = "start" if isinstance(stmt, StartFunction) else "stop"
            text = f"{_kw(draw, verb)}{space()}{_kw(draw, 'function')}{space()}{_name(draw, stmt.name)}"
        parts.append(text)
    return (";" + space()).join(parts)


@settings(max_examples=250, deadline=None)
@given(st.lists(statements, max_size=5).flatmap(lambda stmts: st.tuples(st.just(stmts), rendered(stmts))))
def test_rendered_statements_parse_back(case):
    stmts, text = case
    assert parse(text) == stmts


# --- reprocessing and DESCRIBE -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("START FUNCTION f FROM EARLIEST", StartFunction("f", StartPosition("earliest"))),
    ("start function f from latest", StartFunction("f", StartPosition("latest"))),
    ("START FUNCTION f FROM OFFSET 42", StartFunction("f", StartPosition("offset", 42))),
    ("START FUNCTION f FROM TIMESTAMP '2026-11-30T00:00:00Z'", StartFunction("f", StartPosition("timestamp", 1_795_996_800_000))),
    ("START FUNCTION f FROM TIMESTAMP '2026-11-30T01:00:00+01:00'", StartFunction("f", StartPosition("timestamp", 1_795_996_800_000))),
    ("DESCRIBE FUNCTION f", DescribeFunction("f")),
    ("describe function `my fn`", DescribeFunction("my fn")),
])
def test_start_from_and_describe(text, expected):
    assert parse(text) == [expected]


@pytest.mark.parametrize("text, message", [
    ("START FUNCTION f FROM", "expected EARLIEST, LATEST, OFFSET n or TIMESTAMP"),
    ("START FUNCTION f FROM OFFSET x", "expected an offset"),
    ("START FUNCTION f FROM OFFSET -1", "unexpected character '-'"),
    ("START FUNCTION f FROM TIMESTAMP 5", "expected a time in single quotes"),
    ("START FUNCTION f FROM TIMESTAMP 'yesterday'", "expected an ISO 8601 time"),
    ("STOP FUNCTION f FROM EARLIEST", "expected ';'"),
])
def test_start_from_errors_name_what_was_expected(text, message):
    assert message in str(refused(text))


@given(st.sampled_from(["earliest", "latest"]) | st.integers(0, 2**62).map(str)
       | st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 1, 1),
                      timezones=st.just(timezone.utc)).map(lambda d: d.isoformat()))
def test_a_start_position_survives_its_own_rendering(spec):
    position = StartPosition.parse(spec)
    rendered = str(position)
    assert parse(f"START FUNCTION f FROM {rendered}") == [StartFunction("f", position)]


# --- upgrades ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, message", [
    ("CREATE OR FUNCTION WITH ('k'='v')", "expected REPLACE"),
    ("ROLLBACK FUNCTION f TO 3", "expected REVISION"),
    ("ROLLBACK FUNCTION f TO REVISION 0", "expected a revision number"),
    ("ROLLBACK FUNCTION f TO REVISION x", "expected a revision number"),
    ("SHOW FUNCTION f", "expected HISTORY or DIFF after SHOW FUNCTION"),
    ("DROP SHADE f", "expected FUNCTION or SHADOW"),
    ("PROMOTE f", "expected FUNCTION"),
])
def test_upgrade_statements_refused_say_what_was_expected(text, message):
    assert message in str(refused(text))
