"""Fuzzing the config parser with TOML documents built from the real schema.

The schema is read from the config dataclasses themselves, so new keys are fuzzed as soon
as they exist. Documents are written in every TOML style (table headers, dotted keys,
inline tables) with values of the right type, the wrong type, out of range, unknown keys,
unicode and non-finite numbers; then random text and damaged documents. The property is
the README's: a bad file is refused with one ConfigError, whose message starts with the
file name and names the key; nothing else ever escapes `config.parse`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
import typing
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pivox import config

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Keys that a rule across several keys may name (config._check_rules).
CROSS_RULE_KEYS = frozenset({"link.thinking_level", "link.thinking_budget",
                             "link.proactive_audio", "link.affective_dialog", "leds.pins",
                             "link.url", "wake.keyword", "wake.keywords", "wake.stop_keyword",
                             "wake.cutoffs", "mqtt.tls"})


def schema(cls: type = config.Config, prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """Every leaf key of the config as "section.key" -> (type, default)."""
    hints = typing.get_type_hints(cls)
    out: dict[str, tuple[Any, Any]] = {}
    for f in dataclasses.fields(cls):
        if not (f.init and f.compare):
            continue
        path = f"{prefix}.{f.name}" if prefix else f.name
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out.update(schema(tp, path))
        else:
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            out[path] = (tp, default)
    return out


SCHEMA = schema()
LEAVES = sorted(SCHEMA)
SECTIONS = sorted({p.rsplit(".", 1)[0] for p in LEAVES if "." in p}
                  | {p.split(".", 1)[0] for p in LEAVES})


def test_the_schema_is_what_the_fuzzers_think_it_is() -> None:
    assert len(LEAVES) > 40 and "link.url" in SCHEMA and "audio.capture.rate" in SCHEMA
    kinds = {typing.get_origin(tp) or tp for tp, _ in SCHEMA.values()}
    assert kinds <= {bool, int, float, str, tuple, dict}, kinds


# ------------------------------------------------------------------ a small TOML writer


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_string(key)


def toml_string(s: str, literal: bool = False) -> str:
    if literal and not re.search(r"['\x00-\x08\x0a-\x1f\x7f]", s):
        return f"'{s}'"
    escapes = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
               "\r": "\\r"}
    out = []
    for ch in s:
        if ch in escapes:
            out.append(escapes[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return repr(v)  # inf, -inf, 1e+300 and 0.5 are all TOML
    if isinstance(v, str):
        return toml_string(v)
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, list | tuple):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def nest(flat: dict[tuple[str, ...], Any]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path, value in flat.items():
        node = root
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return root


def write_toml(flat: dict[tuple[str, ...], Any], style: str) -> str:
    """`flat` (key path -> value) as a TOML document in one of three styles."""
    if style == "dotted":
        return "".join(f"{'.'.join(toml_key(p) for p in path)} = {toml_value(v)}\n"
                       for path, v in flat.items())
    tree = nest(flat)
    if style == "inline":
        return "".join(f"{toml_key(k)} = {toml_value(v)}\n" for k, v in tree.items())
    lines: list[str] = []

    def table(node: dict[str, Any], path: tuple[str, ...]) -> None:
        leaves = {k: v for k, v in node.items() if not _is_table(v)}
        if path and (leaves or not node):
            lines.append(f"[{'.'.join(toml_key(p) for p in path)}]")
        lines.extend(f"{toml_key(k)} = {toml_value(v)}" for k, v in leaves.items())
        for k, v in node.items():
            if _is_table(v):
                table(v, (*path, k))

    table(tree, ())
    return "\n".join(lines) + "\n"


def _is_table(v: Any) -> bool:
    return isinstance(v, dict)


# ------------------------------------------------------------------ strategies

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
datetimes = st.one_of(st.datetimes(), st.dates(), st.times())
huge_ints = st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-1000, 100_000))
floats = st.floats(allow_nan=True, allow_infinity=True)
scalar = st.one_of(st.booleans(), huge_ints, floats, text, datetimes)
toml_values = st.recursive(
    scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(text.filter(bool), inner, max_size=3)),
    max_leaves=8,
)


def kind_of(tp: Any) -> str:
    if typing.get_origin(tp) is tuple:
        return "list"
    if typing.get_origin(tp) is dict:
        return "table"
    return {bool: "bool", int: "int", float: "float", str: "str"}[tp]


def right_type(tp: Any) -> st.SearchStrategy[Any]:
    return {
        "bool": st.booleans(),
        "int": st.one_of(huge_ints, st.integers(-5, 50_000)),
        "float": st.one_of(floats, huge_ints),
        "str": st.one_of(text, st.sampled_from(("", "wav:/tmp/x.wav", "ws://127.0.0.1:9/x",
                                                "wss://example.com/x", "ws://example.com/x",
                                                "gemini-2.5-flash-native-audio-preview-12-2025",
                                                "gemini-3.1-flash-live-preview", "rgb", "gpio",
                                                "on", "off", "MINIMAL", "auto", "half"))),
        "list": st.lists(st.integers(-3, 40), max_size=5),
        "table": st.dictionaries(st.sampled_from(("okay_nabu", "alexa", "x")),
                                 st.one_of(floats, st.integers(-1, 2)), max_size=3),
    }[kind_of(tp)]


def wrong_type(tp: Any) -> st.SearchStrategy[Any]:
    """Values a key of type `tp` must refuse (an int is a fine float, nothing else is)."""
    kind = kind_of(tp)
    others: list[st.SearchStrategy[Any]] = [datetimes]
    if kind != "table":
        others.append(st.dictionaries(text, scalar, max_size=2))
    else:  # a table with one value that is not a number
        others.append(st.dictionaries(text, st.one_of(text, st.booleans(), datetimes),
                                      min_size=1, max_size=2))
    if kind != "bool":
        others.append(st.booleans())
    if kind not in ("int", "float"):
        others.append(huge_ints)
    if kind != "float":
        others.append(floats)
    else:
        others.append(st.sampled_from((math.inf, -math.inf, math.nan)))
    if kind != "str":
        others.append(text)
    if kind != "list":
        others.append(st.lists(scalar, max_size=3))
    elif kind == "list":  # a list with one element that is not an integer
        others.append(st.tuples(st.lists(st.integers(0, 27), max_size=3),
                                scalar.filter(lambda v: type(v) is not int))
                      .map(lambda t: [*t[0], t[1]]))
    return st.one_of(others)


styles = st.sampled_from(("tables", "dotted", "inline"))
file_names = st.one_of(st.just("pivox.toml"), st.just("/etc/pivox/pivox.toml"),
                       text.filter(lambda s: s.strip() != ""))


def path_of(key: str) -> tuple[str, ...]:
    return tuple(key.split("."))


def base_key(key: str) -> str:
    """The schema key an error names: without a list index or a table entry's name."""
    return re.sub(r"^(wake\.cutoffs)\..*", r"\1", re.sub(r"\[\d+\]$", "", key))


def check_error(exc: config.ConfigError, file: str, allowed: set[str]) -> None:
    """One line: "FILE: KEY: expected ...", KEY one of `allowed` (or an element of one)."""
    msg = str(exc)
    assert msg.startswith(f"{file}: {exc.key}: expected "), msg
    assert exc.expected
    key = base_key(exc.key)
    assert key in allowed | CROSS_RULE_KEYS, (exc.key, sorted(allowed))


def parse(text_: str, file: str) -> config.Config | config.ConfigError:
    """config.parse, with a ConfigError returned; anything else escapes and fails the test."""
    try:
        return config.parse(text_, file)
    except config.ConfigError as exc:
        return exc


# ------------------------------------------------------------------ properties


@FUZZ
@given(st.lists(st.sampled_from(LEAVES), unique=True, max_size=12), styles, file_names)
def test_any_subset_of_defaults_parses_to_the_defaults(keys: list[str], style: str,
                                                       file: str) -> None:
    flat = {path_of(k): list(SCHEMA[k][1]) if isinstance(SCHEMA[k][1], tuple) else SCHEMA[k][1]
            for k in keys}
    cfg = parse(write_toml(flat, style), file)
    assert isinstance(cfg, config.Config), cfg
    assert cfg == config.Config() and cfg.source == file


@st.composite
def one_wrong_type(draw: st.DrawFn) -> tuple[str, Any]:
    key = draw(st.sampled_from(LEAVES))
    return key, draw(wrong_type(SCHEMA[key][0]))


@FUZZ
@given(one_wrong_type(), st.lists(st.sampled_from(LEAVES), unique=True, max_size=6), styles,
       file_names)
@example(("link.silence_ms", True), [], "tables", "pivox.toml")
@example(("leds.pins", [1, "2"]), [], "dotted", "pivox.toml")
@example(("wake.cutoff", math.inf), [], "tables", "pivox.toml")
def test_a_wrong_type_is_refused_naming_its_key(bad: tuple[str, Any], defaults: list[str],
                                                style: str, file: str) -> None:
    key, value = bad
    flat = {path_of(k): list(SCHEMA[k][1]) if isinstance(SCHEMA[k][1], tuple) else SCHEMA[k][1]
            for k in defaults if k != key}
    flat[path_of(key)] = value
    tp = SCHEMA[key][0]
    if kind_of(tp) == "float" and isinstance(value, float) and math.isfinite(value):
        return  # a finite float is the right type after all (wrong_type draws few of them)
    result = parse(write_toml(flat, style), file)
    assert isinstance(result, config.ConfigError), (key, value, result)
    check_error(result, file, {key})
    assert base_key(result.key) == key


@st.composite
def one_right_type(draw: st.DrawFn) -> tuple[str, Any]:
    key = draw(st.sampled_from(LEAVES))
    return key, draw(right_type(SCHEMA[key][0]))


@settings(FUZZ, max_examples=600)
@given(one_right_type(), styles, file_names)
@example(("audio.capture.rate", 22050), "tables", "pivox.toml")
@example(("link.url", "ws://example.com/x"), "tables", "pivox.toml")
@example(("leds.kind", "rgb"), "dotted", "pivox.toml")
@example(("link.thinking_level", "MINIMAL"), "inline", "pivox.toml")
def test_a_value_out_of_range_is_refused_naming_its_key(item: tuple[str, Any], style: str,
                                                        file: str) -> None:
    """The right type, any value: accepted as given, or refused naming the key."""
    key, value = item
    result = parse(write_toml({path_of(key): value}, style), file)
    if isinstance(result, config.ConfigError):
        check_error(result, file, {key})
        return
    section: Any = result
    for part in path_of(key):
        section = getattr(section, part)
    want = tuple(value) if isinstance(value, list) else value
    same_nan = isinstance(want, float) and math.isnan(want) and math.isnan(section)
    assert section == want or same_nan, (key, value, section)


@FUZZ
@given(st.sampled_from(["", *SECTIONS]), text, toml_values, styles, file_names)
def test_an_unknown_key_is_refused_naming_it(section: str, name: str, value: Any, style: str,
                                             file: str) -> None:
    known = {p.rsplit(".", 1)[-1] for p in LEAVES if p.rsplit(".", 1)[0] == section} | {
        s.rsplit(".", 1)[-1] for s in SECTIONS if "." in s and s.rsplit(".", 1)[0] == section}
    if not section:
        known = {p.split(".", 1)[0] for p in LEAVES}
    if name in known:
        return
    path = (*path_of(section), name) if section else (name,)
    result = parse(write_toml({path: value}, style), file)
    assert isinstance(result, config.ConfigError), result
    check_error(result, file, {".".join(path)})


@FUZZ
@given(st.sampled_from(SECTIONS), scalar, file_names)
def test_a_section_that_is_not_a_table_is_refused_naming_it(section: str, value: Any,
                                                             file: str) -> None:
    result = parse(write_toml({path_of(section): value}, "dotted"), file)
    assert isinstance(result, config.ConfigError), result
    check_error(result, file, {section})


@st.composite
def random_document(draw: st.DrawFn) -> tuple[dict[tuple[str, ...], Any], set[str]]:
    """Schema keys with right, wrong or random values, plus unknown keys anywhere."""
    flat: dict[tuple[str, ...], Any] = {}
    for key in draw(st.lists(st.sampled_from(LEAVES), unique=True, max_size=15)):
        tp = SCHEMA[key][0]
        flat[path_of(key)] = draw(st.one_of(right_type(tp), wrong_type(tp), toml_values))
    for _ in range(draw(st.integers(0, 2))):
        section = draw(st.sampled_from(["", *SECTIONS]))
        name = draw(text)
        path = (*path_of(section), name) if section else (name,)
        if not any(p[: len(path)] == path or path[: len(p)] == p for p in flat):
            flat[path] = draw(toml_values)
    names = {".".join(p[:i]) for p in flat for i in range(1, len(p) + 1)}
    return flat, names


@settings(FUZZ, max_examples=500)
@given(random_document(), styles, file_names)
def test_random_documents_parse_or_name_a_key_in_them(doc: tuple, style: str,
                                                      file: str) -> None:
    flat, names = doc
    result = parse(write_toml(flat, style), file)
    if isinstance(result, config.ConfigError):
        check_error(result, file, names | {"<syntax>"})
    else:
        assert result.source == file


@st.composite
def damaged_document(draw: st.DrawFn) -> str:
    flat, _ = draw(random_document())
    doc = write_toml(flat, draw(styles)) or "x = 1\n"
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(doc)))
        what = draw(st.sampled_from(("insert", "delete", "replace")))
        junk = draw(st.sampled_from(('"', "'", "[", "]", "{", "}", "=", ".", "\n", "#", "\\",
                                     "\x00", "é", "[[", "]]", '"""', "inf", "1e999", "0x"))
                    | text)
        if what == "insert":
            doc = doc[:at] + junk + doc[at:]
        elif what == "delete":
            doc = doc[:at] + doc[at + draw(st.integers(1, 5)):]
        else:
            doc = doc[:at] + junk + doc[at + len(junk):]
    return doc


@FUZZ
@given(st.one_of(damaged_document(), st.text(max_size=300)), file_names)
def test_damaged_and_random_text_only_ever_raises_config_error(doc: str, file: str) -> None:
    result = parse(doc, file)
    if isinstance(result, config.ConfigError):
        assert str(result).startswith(f"{file}: {result.key}: expected "), str(result)


@pytest.mark.parametrize("doc", [
    "x = " + "[" * 3000 + "]" * 3000,
    "x = " + "{a = " * 1500 + "1" + "}" * 1500,
    "[link]\nurl = " + "[" * 5000,
])
def test_deeply_nested_toml_is_a_config_error(doc: str) -> None:
    result = parse(doc, "deep.toml")
    assert isinstance(result, config.ConfigError)
    assert str(result).startswith("deep.toml: ")
