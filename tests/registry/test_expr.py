# SPDX-License-Identifier: BSD-3-Clause
"""Tests of the registry query expression language against a real in-memory SQLite table."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spherex_dask.errors import QueryError, QuerySyntaxError, UnknownNameError
from spherex_dask.registry.expr import (
    ColumnTerm,
    TimespanTerm,
    compile_expression,
    parse_expression,
    referenced_names,
)
from spherex_dask.types import Timespan, datetime_to_ns

BASE = datetime(2025, 5, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)

METADATA = sa.MetaData()
TABLE = sa.Table(
    "dataset",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("instrument", sa.String(32)),
    sa.Column("detector", sa.Integer),
    sa.Column("exposure", sa.Integer),
    sa.Column("obs_id", sa.String(32)),
    sa.Column("band", sa.Integer),
    sa.Column("ts_begin", sa.BigInteger),
    sa.Column("ts_end", sa.BigInteger),
    sa.Column("cal_begin", sa.BigInteger),
    sa.Column("cal_end", sa.BigInteger),
    sa.Column("ra", sa.Float),
    sa.Column("is_deep", sa.Boolean),
)


def _make_rows() -> list[dict[str, Any]]:
    rows = []
    for index in range(10):
        begin = BASE + index * 2 * HOUR
        for detector in range(1, 7):
            cal_begin = BASE + detector * 3 * HOUR
            rows.append(
                {
                    "id": len(rows),
                    "instrument": "SPHEREx",
                    "detector": detector,
                    "exposure": 100 + index,
                    "obs_id": f"2025W19_2B_{index:04d}_{index % 4 + 1}",
                    "band": 7 - detector,
                    "ts_begin": datetime_to_ns(begin),
                    "ts_end": datetime_to_ns(begin + HOUR),
                    "cal_begin": datetime_to_ns(cal_begin),
                    "cal_end": datetime_to_ns(cal_begin + 4 * HOUR),
                    "ra": 10.0 * index + 0.5 * detector,
                    "is_deep": index % 3 == 0,
                }
            )
    return rows


ROWS = _make_rows()
ALL_IDS = {row["id"] for row in ROWS}


class TableResolver:
    """The test's resolver: a fixed map of names to the columns of TABLE."""

    def __init__(self) -> None:
        c = TABLE.c
        self.names: dict[tuple[str, str | None], ColumnTerm | TimespanTerm] = {
            ("instrument", None): ColumnTerm(c.instrument, "string"),
            ("detector", None): ColumnTerm(c.detector, "int"),
            ("exposure", None): ColumnTerm(c.exposure, "int"),
            ("exposure", "obs_id"): ColumnTerm(c.obs_id, "string"),
            ("detector", "band"): ColumnTerm(c.band, "int"),
            ("exposure", "ra"): ColumnTerm(c.ra, "float"),
            ("exposure", "is_deep"): ColumnTerm(c.is_deep, "bool"),
            ("exposure", "timespan"): TimespanTerm(c.ts_begin, c.ts_end),
            ("calibration_label", "timespan"): TimespanTerm(c.cal_begin, c.cal_end),
        }

    def resolve(self, element: str, field: str | None) -> ColumnTerm | TimespanTerm:
        try:
            return self.names[(element, field)]
        except KeyError:
            known = ", ".join(sorted(".".join(p for p in k if p) for k in self.names))
            raise UnknownNameError(f"Unknown name {element}.{field}; known: {known}") from None


RESOLVER = TableResolver()


@pytest.fixture(scope="module")
def engine() -> Iterator[sa.Engine]:
    engine = sa.create_engine("sqlite://", poolclass=sa.StaticPool)
    METADATA.create_all(engine)
    with engine.begin() as connection:
        connection.execute(TABLE.insert(), ROWS)
    yield engine
    engine.dispose()


def select_ids(engine: sa.Engine, expr: str, bind: dict[str, Any] | None = None) -> set[int]:
    condition = compile_expression(expr, RESOLVER, bind)
    with engine.connect() as connection:
        return set(connection.execute(sa.select(TABLE.c.id).where(condition)).scalars())


def expected_ids(predicate: Callable[[dict[str, Any]], bool]) -> set[int]:
    return {row["id"] for row in ROWS if predicate(row)}


def ns(text: str) -> int:
    return datetime_to_ns(datetime.fromisoformat(text).replace(tzinfo=UTC))


def overlaps(begin: int, end: int, other_begin: int, other_end: int) -> bool:
    return begin < other_end and other_begin < end


CASES: list[tuple[str, Callable[[dict[str, Any]], bool]]] = [
    ("detector = 3", lambda r: r["detector"] == 3),
    ("detector != 3", lambda r: r["detector"] != 3),
    ("detector <> 3", lambda r: r["detector"] != 3),
    ("detector < 3", lambda r: r["detector"] < 3),
    ("3 >= detector", lambda r: r["detector"] <= 3),
    ("detector >= 5 AND exposure <= 102", lambda r: r["detector"] >= 5 and r["exposure"] <= 102),
    ("detector IN (1, 2, 5..6)", lambda r: r["detector"] in (1, 2, 5, 6)),
    ("detector NOT IN (2..5)", lambda r: not 2 <= r["detector"] <= 5),
    ("exposure IN (100..109:3)", lambda r: r["exposure"] in (100, 103, 106, 109)),
    ("exposure in (101..108:3, 100)", lambda r: r["exposure"] in (101, 104, 107, 100)),
    ("exposure.obs_id = '2025W19_2B_0003_4'", lambda r: r["obs_id"] == "2025W19_2B_0003_4"),
    ("exposure.obs_id IN (\"2025W19_2B_0001_2\", 'nope')", lambda r: r["exposure"] == 101),
    ("exposure.obs_id > '2025W19_2B_0007'", lambda r: r["obs_id"] > "2025W19_2B_0007"),
    ("exposure.ra > 40.5", lambda r: r["ra"] > 40.5),
    ("exposure.ra < 1e1", lambda r: r["ra"] < 10),
    ("exposure.ra IN (10..20)", lambda r: 10 <= r["ra"] <= 20),
    ("exposure.ra = 11", lambda r: r["ra"] == 11),
    ("detector.band = detector", lambda r: r["band"] == r["detector"]),
    ("detector.band > detector", lambda r: r["band"] > r["detector"]),
    ("exposure.is_deep", lambda r: r["is_deep"]),
    ("NOT exposure.is_deep", lambda r: not r["is_deep"]),
    ("exposure.is_deep = FALSE", lambda r: not r["is_deep"]),
    ("exposure.is_deep AND detector = 1", lambda r: r["is_deep"] and r["detector"] == 1),
    (
        "detector = 1 OR detector = 2 AND exposure = 100",
        lambda r: r["detector"] == 1 or (r["detector"] == 2 and r["exposure"] == 100),
    ),
    (
        "(detector = 1 OR detector = 2) AND exposure = 100",
        lambda r: r["detector"] in (1, 2) and r["exposure"] == 100,
    ),
    ("not detector = 1 and exposure = 101", lambda r: r["detector"] != 1 and r["exposure"] == 101),
    ("NOT (detector = 1 OR exposure = 101)", lambda r: r["detector"] != 1 and r["exposure"] != 101),
    ("detector = -1", lambda r: False),
    ("instrument = 'SPHEREx'", lambda r: True),
    ("TRUE", lambda r: True),
    ("FALSE OR detector = 2", lambda r: r["detector"] == 2),
    (
        "exposure.timespan OVERLAPS T'2025-05-01T04:30'",
        lambda r: r["ts_begin"] <= ns("2025-05-01T04:30") < r["ts_end"],
    ),
    ("exposure.timespan OVERLAPS T'2025-05-01T05:00'", lambda r: False),
    (
        "exposure.timespan OVERLAPS (T'2025-05-01T03:00', T'2025-05-01T08:30')",
        lambda r: overlaps(
            r["ts_begin"], r["ts_end"], ns("2025-05-01T03:00"), ns("2025-05-01T08:30")
        ),
    ),
    (
        "(T'2025-05-01T03:00', T'2025-05-01T08:30') overlaps exposure.timespan",
        lambda r: overlaps(
            r["ts_begin"], r["ts_end"], ns("2025-05-01T03:00"), ns("2025-05-01T08:30")
        ),
    ),
    (
        "exposure.timespan OVERLAPS calibration_label.timespan",
        lambda r: overlaps(r["ts_begin"], r["ts_end"], r["cal_begin"], r["cal_end"]),
    ),
    (
        "exposure.timespan.begin OVERLAPS calibration_label.timespan",
        lambda r: r["cal_begin"] <= r["ts_begin"] < r["cal_end"],
    ),
    (
        "exposure.timespan.begin >= T'2025-05-01T10:00'",
        lambda r: r["ts_begin"] >= ns("2025-05-01T10:00"),
    ),
    ("exposure.timespan.END < T'2025-05-01'", lambda r: False),
    ("exposure.timespan.end <= T'2025-05-01T05:00:00+02:00'", lambda r: r["exposure"] <= 101),
    (
        "exposure.timespan.begin = calibration_label.timespan.begin",
        lambda r: r["ts_begin"] == r["cal_begin"],
    ),
]


@pytest.mark.parametrize(("expr", "predicate"), CASES, ids=[c[0] for c in CASES])
def test_expression_matches_python(engine: sa.Engine, expr: str, predicate: Any) -> None:
    """Each expression selects exactly the rows the Python reference selects."""
    assert select_ids(engine, expr) == expected_ids(predicate)


def test_empty_expression_is_no_restriction(engine: sa.Engine) -> None:
    """An empty or blank expression parses to a falsy node and compiles to TRUE."""
    assert not parse_expression("")
    assert not parse_expression("  \t ")
    assert select_ids(engine, "   ") == ALL_IDS
    assert compile_expression(None, RESOLVER).compare(sa.true())


BIND_CASES: list[tuple[str, dict[str, Any], Callable[[dict[str, Any]], bool]]] = [
    ("detector = :det", {"det": 4}, lambda r: r["detector"] == 4),
    ("detector IN (:dets)", {"dets": [1, 3]}, lambda r: r["detector"] in (1, 3)),
    ("detector IN :dets", {"dets": (2, 6)}, lambda r: r["detector"] in (2, 6)),
    ("detector IN (dets)", {"dets": {5}}, lambda r: r["detector"] == 5),
    ("detector IN (dets, 1)", {"dets": range(6, 1, -2)}, lambda r: r["detector"] in (6, 4, 2, 1)),
    ("detector IN (:dets)", {"dets": []}, lambda r: False),
    ("detector NOT IN (:dets)", {"dets": []}, lambda r: True),
    ("detector IN (:dets)", {"dets": range(3, 3)}, lambda r: False),
    ("exposure.ra < :ra", {"ra": 12.25}, lambda r: r["ra"] < 12.25),
    ("exposure.obs_id = obs", {"obs": "2025W19_2B_0002_3"}, lambda r: r["exposure"] == 102),
    ("exposure.is_deep = :deep", {"deep": True}, lambda r: r["is_deep"]),
    (":deep", {"deep": False}, lambda r: False),
    (
        "exposure.timespan.begin < :t",
        {"t": datetime(2025, 5, 1, 3)},
        lambda r: r["exposure"] in (100, 101),
    ),
    (
        "exposure.timespan OVERLAPS :t",
        {"t": BASE + 6 * HOUR + timedelta(minutes=1)},
        lambda r: r["exposure"] == 103,
    ),
    (
        "exposure.timespan OVERLAPS :span",
        {"span": Timespan(BASE + 3 * HOUR, BASE + 7 * HOUR)},
        lambda r: r["exposure"] in (102, 103),
    ),
    (
        "exposure.timespan OVERLAPS :span",
        {"span": Timespan(None, BASE + 2 * HOUR)},
        lambda r: r["exposure"] == 100,
    ),
    (
        "exposure.timespan OVERLAPS (:a, T'2025-05-01T03:00')",
        {"a": BASE},
        lambda r: r["exposure"] in (100, 101),
    ),
]


@pytest.mark.parametrize(("expr", "bind", "predicate"), BIND_CASES, ids=[c[0] for c in BIND_CASES])
def test_bind_parameters(
    engine: sa.Engine, expr: str, bind: dict[str, Any], predicate: Any
) -> None:
    """``:name`` and bare-name bind parameters take scalars, lists, ranges, times, timespans."""
    assert select_ids(engine, expr, bind) == expected_ids(predicate)


def test_bind_values_are_bound_parameters() -> None:
    """Bind values never appear in the SQL text; they are bound parameters."""
    condition = compile_expression(
        "exposure.obs_id = :obs AND detector IN (:dets)",
        RESOLVER,
        {"obs": "SECRET_VALUE", "dets": [11, 12]},
    )
    compiled = sa.select(TABLE.c.id).where(condition).compile()
    assert "SECRET_VALUE" not in str(compiled)
    assert "SECRET_VALUE" in compiled.params.values()


def test_ranges_compile_to_between() -> None:
    """Ranges become BETWEEN (and a modulo for strides), never long lists."""
    sql = str(compile_expression("detector IN (1..1000000:7)", RESOLVER))
    assert "BETWEEN" in sql
    assert "%" in sql
    assert sql.count(":") < 6


def test_unknown_bind_parameter_lists_given_names() -> None:
    """An unknown ``:name`` raises UnknownNameError naming the bind keys given."""
    with pytest.raises(UnknownNameError, match=r":nope.*alpha, beta"):
        compile_expression("detector = :nope", RESOLVER, {"alpha": 1, "beta": 2})
    with pytest.raises(UnknownNameError, match="given: none"):
        compile_expression("detector = :nope", RESOLVER)


def test_unknown_name_lists_alternatives() -> None:
    """The resolver's error (listing known names) comes through, noting the bind keys."""
    with pytest.raises(UnknownNameError, match=r"exposure\.obs_id") as info:
        compile_expression("visit = 3", RESOLVER, {"dets": [1]})
    assert any("dets" in note for note in info.value.__notes__)
    with pytest.raises(UnknownNameError, match="known:"):
        compile_expression("exposure.nothing = 3", RESOLVER)


TYPE_ERRORS = [
    ("detector = 'abc'", ["detector (int)", "'abc' (string)"]),
    ("exposure.obs_id = 5", ["exposure.obs_id (string)", "5 (int)"]),
    ("exposure.obs_id IN ('a', 5)", ["exposure.obs_id (string)", "5 (int)"]),
    ("exposure.timespan.begin > 5", ["exposure.timespan.begin (time)", "5 (int)", "T'"]),
    ("exposure.timespan.begin = '2025-05-01'", ["(time)", "(string)"]),
    ("exposure.timespan = T'2025-05-01'", ["timespan", "OVERLAPS"]),
    ("detector OVERLAPS T'2025-05-01'", ["detector is int"]),
    ("exposure.timespan.begin OVERLAPS T'2025-05-01'", ["at least one side"]),
    ("exposure.timespan OVERLAPS (1, 2)", ["needs two times"]),
    ("exposure.timespan OVERLAPS (T'2025-05-02', T'2025-05-01')", ["ends before it begins"]),
    ("exposure.ra IN (1..9:2)", ["needs an integer", "exposure.ra is float"]),
    ("exposure.obs_id IN (1..3)", ["needs a number"]),
    ("detector", ["int value, not a condition"]),
    ("detector.band.begin > T'2025-05-01'", ["not a timespan"]),
    ("'1' = '1'", ["no column"]),
    ("exposure.is_deep < TRUE", ["cannot order boolean"]),
    ("detector = 1 AND exposure.ra", ["float value, not a condition"]),
]


@pytest.mark.parametrize(("expr", "fragments"), TYPE_ERRORS, ids=[c[0] for c in TYPE_ERRORS])
def test_type_errors(expr: str, fragments: list[str]) -> None:
    """Incompatible operands raise QueryError naming them."""
    with pytest.raises(QueryError) as info:
        compile_expression(expr, RESOLVER)
    assert not isinstance(info.value, QuerySyntaxError | UnknownNameError)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_list_bind_outside_in_is_an_error() -> None:
    """A list-valued bind parameter is only allowed in an IN list."""
    with pytest.raises(QueryError, match="IN list"):
        compile_expression("detector = :dets", RESOLVER, {"dets": [1, 2]})
    with pytest.raises(QueryError, match="unsupported type"):
        compile_expression("detector = :x", RESOLVER, {"x": object()})


SYNTAX_ERRORS = [
    ("detector = ", 12, "expected a value after '='"),
    ("detector = )", 12, "expected a value after '='"),
    ("detector == = 3", 13, "expected a value after '=='"),
    ("detector IN 3", 13, "expected '('"),
    ("detector IN ()", 14, "expected a value after '('"),
    ("detector IN (1, 2", 18, "expected ',' or ')'"),
    ("detector IN (1..)", 17, "expected a value after '..'"),
    ("detector IN (1..3:0)", 19, "stride"),
    ("detector IN (5..3)", 15, "empty range"),
    ("detector IN (1.5..3)", 14, "integer bounds"),
    ("(detector = 1", 14, "expected ')'"),
    ("detector = 1)", 13, "expected AND, OR"),
    ("detector = 1 exposure = 2", 14, "expected AND, OR"),
    ("detector = 1 AND", 17, "after 'AND'"),
    ("NOT", 4, "after 'NOT'"),
    ("5", 2, "expected a comparison operator"),
    ("detector = 1 OR 'x'", 20, "expected a comparison operator"),
    ("exposure.obs_id = 'abc", 19, "unterminated string"),
    ("exposure.timespan.begin > T'2025-13-01'", 27, "invalid time literal"),
    ("exposure. = 1", 10, "expected a field name"),
    ("a.b.c = 1", 1, "invalid name"),
    ("detector = 3x", 13, "right after the number"),
    ("detector = - x", 14, "expected a number after '-'"),
    ("detector = 1 # comment", 14, "unexpected character '#'"),
]


@pytest.mark.parametrize(
    ("expr", "column", "fragment"), SYNTAX_ERRORS, ids=[c[0] for c in SYNTAX_ERRORS]
)
def test_syntax_errors_report_column(expr: str, column: int, fragment: str) -> None:
    """Syntax errors carry the 1-based column and say what was expected."""
    with pytest.raises(QuerySyntaxError) as info:
        parse_expression(expr)
    assert info.value.column == column, str(info.value)
    assert fragment in str(info.value)
    assert f"(at column {column})" in str(info.value)
    assert str(info.value).splitlines()[-1] == "  " + " " * (column - 1) + "^"


def test_string_escapes_and_quotes() -> None:
    """Doubled quotes escape themselves, in either quote style."""
    node = parse_expression('exposure.obs_id IN (\'it\'\'s\', "say ""hi""", "it\'s")')
    assert [item.value for item in node.items] == ["it's", 'say "hi"', "it's"]  # type: ignore[attr-defined]


def test_keywords_are_case_insensitive() -> None:
    """Keywords may be written in any case."""
    upper = parse_expression("NOT detector IN (1) AND exposure.is_deep OR TRUE")
    lower = parse_expression("not detector in (1) and exposure.is_deep or true")
    mixed = parse_expression("Not detector In (1) And exposure.is_deep Or True")
    assert upper == lower == mixed


def test_round_trip_through_text() -> None:
    """str(node) is canonical text that parses back to an equal tree."""
    text = (
        "NOT (detector IN (1..3:2, :x, dets) OR exposure.ra >= -1.5e-3) AND "
        "exposure.timespan OVERLAPS (T'2025-05-01', :t) AND (exposure.is_deep = TRUE OR FALSE)"
    )
    node = parse_expression(text)
    assert parse_expression(str(node)) == node
    assert str(parse_expression(str(node))) == str(node)


def test_referenced_names() -> None:
    """Names are split into (element, field); bind parameters are excluded."""
    node = parse_expression(
        "detector IN (dets) AND exposure.obs_id = :o AND exposure.timespan.begin > T'2025-05-01' "
        "AND instrument = 'SPHEREx' AND exposure.timespan OVERLAPS calibration_label.timespan"
    )
    assert referenced_names(node, {"dets": [1]}) == {
        ("detector", None),
        ("exposure", "obs_id"),
        ("exposure", "timespan"),
        ("instrument", None),
        ("calibration_label", "timespan"),
    }
    assert ("dets", None) in referenced_names(node)  # without bind it is a dimension name
    assert referenced_names(parse_expression("")) == set()


INJECTIONS = [
    "detector = 1; DROP TABLE dataset",
    "detector = 1 -- AND exposure = 2",
    "detector = 1 /* comment */",
    "detector = 1 OR 1=1",
    "exposure.obs_id = 'a' OR '1'='1'",
    "exposure.obs_id = 'x'); DROP TABLE dataset; --",
    "exposure.obs_id = 'x''; DROP TABLE dataset; --'",
    'exposure.obs_id = "x""; DROP TABLE dataset; --"',
    "exposure.obs_id = 'a'' OR ''1''=''1'",
    "detector = 1 UNION SELECT id FROM dataset",
    "detector IN (SELECT id FROM dataset)",
]


@pytest.mark.parametrize("expr", INJECTIONS)
def test_injection_attempts_are_values_or_errors(engine: sa.Engine, expr: str) -> None:
    """Injection attempts are syntax/type errors or quoted values matching nothing extra."""
    try:
        ids = select_ids(engine, expr)
    except QueryError:
        ids = None
    if ids is not None:  # only the quoted-value forms parse: they match no obs_id
        assert ids == set(), expr
    with engine.connect() as connection:
        assert sa.inspect(connection).has_table("dataset")
        assert connection.execute(sa.select(sa.func.count()).select_from(TABLE)).scalar() == len(
            ROWS
        )


def test_injection_through_bind_value(engine: sa.Engine) -> None:
    """A hostile bind value is just a string that matches nothing."""
    hostile = "x'; DROP TABLE dataset; --"
    assert select_ids(engine, "exposure.obs_id = :o", {"o": hostile}) == set()
    assert select_ids(engine, "exposure.obs_id IN (o)", {"o": [hostile, "' OR '1'='1"]}) == set()
    with engine.connect() as connection:
        assert sa.inspect(connection).has_table("dataset")


# -- property test: random expressions against a Python evaluation ------------------------

Leaf = tuple[str, Callable[[dict[str, Any]], bool]]
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_INT_COLUMNS = {"detector": "detector", "exposure": "exposure", "detector.band": "band"}
_OBS_IDS = sorted({row["obs_id"] for row in ROWS})


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@st.composite
def int_comparisons(draw: st.DrawFn) -> Leaf:
    name = draw(st.sampled_from(sorted(_INT_COLUMNS)))
    op = draw(st.sampled_from(sorted(_OPS)))
    value = draw(st.integers(-2, 112))
    key = _INT_COLUMNS[name]
    return f"{name} {op} {value}", lambda r: _OPS[op](r[key], value)


@st.composite
def string_comparisons(draw: st.DrawFn) -> Leaf:
    op = draw(st.sampled_from(sorted(_OPS)))
    alphabet = st.characters(min_codepoint=32, max_codepoint=126)
    value = draw(st.sampled_from(_OBS_IDS) | st.text(alphabet, max_size=12))
    return f"exposure.obs_id {op} {_quote(value)}", lambda r: _OPS[op](r["obs_id"], value)


@st.composite
def float_comparisons(draw: st.DrawFn) -> Leaf:
    op = draw(st.sampled_from(sorted(_OPS)))
    value = draw(st.floats(-5, 100, allow_nan=False) | st.sampled_from([10.5, 20.0, 33.0]))
    return f"exposure.ra {op} {value!r}", lambda r: _OPS[op](r["ra"], value)


@st.composite
def in_lists(draw: st.DrawFn) -> Leaf:
    name = draw(st.sampled_from(sorted(_INT_COLUMNS)))
    key = _INT_COLUMNS[name]
    texts, allowed = [], set()
    for _ in range(draw(st.integers(1, 3))):
        start = draw(st.integers(-1, 110))
        if draw(st.booleans()):
            texts.append(str(start))
            allowed.add(start)
            continue
        stop, stride = start + draw(st.integers(0, 12)), draw(st.integers(1, 4))
        texts.append(
            f"{start}..{stop}" + (f":{stride}" if stride > 1 or draw(st.booleans()) else "")
        )
        allowed.update(range(start, stop + 1, stride))
    negated = draw(st.booleans())
    text = f"{name} {'NOT IN' if negated else 'IN'} ({', '.join(texts)})"
    return text, lambda r: (r[key] in allowed) != negated


@st.composite
def time_conditions(draw: st.DrawFn) -> Leaf:
    minutes = draw(st.integers(-60, 24 * 60))
    when = BASE + timedelta(minutes=minutes)
    literal, when_ns = f"T'{when.isoformat()}'", datetime_to_ns(when)
    kind = draw(st.sampled_from(["begin", "end", "instant", "span"]))
    if kind in ("begin", "end"):
        op = draw(st.sampled_from(sorted(_OPS)))
        key = "ts_begin" if kind == "begin" else "ts_end"
        text = f"exposure.timespan.{kind} {op} {literal}"
        return text, lambda r: _OPS[op](r[key], when_ns)
    if kind == "instant":
        text = f"exposure.timespan OVERLAPS {literal}"
        return text, lambda r: r["ts_begin"] <= when_ns < r["ts_end"]
    length = timedelta(minutes=draw(st.integers(0, 300)))
    end_ns = datetime_to_ns(when + length)
    text = f"exposure.timespan OVERLAPS ({literal}, T'{(when + length).isoformat()}')"
    return text, lambda r: overlaps(r["ts_begin"], r["ts_end"], when_ns, end_ns)


def _combine(children: st.SearchStrategy[Leaf]) -> st.SearchStrategy[Leaf]:
    def negate(leaf: Leaf) -> Leaf:
        text, predicate = leaf
        return f"NOT ({text})", lambda r: not predicate(r)

    def join(pair: tuple[Leaf, Leaf], word: str) -> Leaf:
        (left, lp), (right, rp) = pair
        if word == "AND":
            return f"({left}) AND ({right})", lambda r: lp(r) and rp(r)
        return f"({left}) or ({right})", lambda r: lp(r) or rp(r)

    pairs = st.tuples(children, children)
    return (
        children.map(negate)
        | pairs.map(lambda p: join(p, "AND"))
        | pairs.map(lambda p: join(p, "OR"))
    )


LEAVES = (
    int_comparisons() | string_comparisons() | float_comparisons() | in_lists() | time_conditions()
)
EXPRESSIONS = st.recursive(LEAVES, _combine, max_leaves=6)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(EXPRESSIONS)
def test_random_expressions_match_python(engine: sa.Engine, leaf: Leaf) -> None:
    """Random combinations of comparisons select the rows a Python evaluation selects."""
    text, predicate = leaf
    assert select_ids(engine, text) == expected_ids(predicate), text
    node = parse_expression(text)
    assert parse_expression(str(node)) == node
