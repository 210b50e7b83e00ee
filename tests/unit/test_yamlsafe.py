"""The bounded YAML loader: the same values as yaml.safe_load, and a one-line refusal (with line and key
path) for what safe_load crashes on or would build without bound."""

import datetime as dt

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeclu.yamlsafe import YamlProblem, decode, load

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20),
                    st.dates(), st.sampled_from(["yes", "off", "0644", "1_000", "0x1f", "~", "10.0.0.1", "1:30",
                                                 "2020-01-01 10:00:00", ".inf", "=", "<<", "null", ""]))
trees = st.recursive(scalars, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                     st.dictionaries(st.text(max_size=8), kids, max_size=4)),
                     max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(tree=trees, flow=st.booleans())
def test_same_values_as_safe_load(tree, flow):
    text = yaml.safe_dump(tree, default_flow_style=flow, allow_unicode=True)
    assert load(text) == yaml.safe_load(text)


@pytest.mark.parametrize("text", [
    "d: &d {x: 1, y: 2}\ne: {<<: *d, y: 3}\nf: {<<: [*d, {x: 9, z: 1}]}\n",
    "a: &a [1, 2]\nb: *a\n", "a: !!str 1\nb: !!binary aGVsbG8=\nc: 2001-12-14t21:59:43.10-05:00\n",
    "a: 0o17\nb: 017\nc: 1:30\nd: +12\ne: -.inf\n", "", "# only a comment\n", "a:\n", "? a\n",
])
def test_same_values_as_safe_load_for_merge_keys_aliases_and_yaml_11_scalars(text):
    assert load(text) == yaml.safe_load(text)


def test_aliases_are_shared_not_copied():
    doc = load("a: &a [1, 2]\nb: *a\n")
    assert doc["a"] is doc["b"]


@pytest.mark.parametrize(("text", "line", "path", "message"), [
    ("a: 1\na: 2\n", 2, (), "duplicate key 'a' (first on line 1)"),
    ("x:\n  ? [1]\n  : 2\n", 2, ("x",), "a key must be a plain value"),
    ("a: *nope\n", 1, ("a",), "alias *nope is not defined"),
    ("a: &x [*x]\n", 1, ("a", 0), "alias *x refers to a value that contains it"),
    ("a: " + "[" * 40 + "]" * 40 + "\n", 1, ("a",) + (0,) * 31, "nested deeper than 32 levels"),
    ("a: !vault |\n  xx\n", 1, ("a",), "tag !vault is not supported here"),
    ("a: !!python/object:os.system x\n", 1, ("a",),
     "tag tag:yaml.org,2002:python/object:os.system is not supported here"),
    ("--- 1\n--- 2\n", 2, (), "more than one YAML document (---)"),
    ("a: \x01\n", 1, (), "invalid YAML: control characters are not allowed"),
    ("a: [1,\nb: 2\n", 3, ("a", 2), "invalid YAML: did not find expected ',' or ']'"),
    ("a: !!int x\n", 1, ("a",), "'x' is not a valid int: invalid literal for int() with base 10: 'x'"),
    ("a: {<<: 1}\n", 1, ("a", "<<"), "a merge key (<<) takes a mapping or a list of mappings"),
    ("l0: &l0 [" + ", ".join("x" * 10) + "]\n" + "".join(
        f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 6)), 5, ("l4", 0),
     "alias *l3 stands for 11111 values (more than 10000): an alias bomb? write the values out"),
])
def test_refusals_name_line_and_path(text, line, path, message):
    with pytest.raises(YamlProblem) as e:
        load(text)
    assert (e.value.line, e.value.path, e.value.message) == (line, path, message)


def test_a_linear_alias_bomb_is_bounded_too():
    text = "a: &a [" + ", ".join(["x"] * 9_000) + "]\nb: [" + ", ".join(["*a"] * 300) + "]\n"
    with pytest.raises(YamlProblem, match="aliases make the document more than 2000000 values"):
        load(text)
    assert load(text, max_values=10_000_000)["b"][299] is not None


def test_decode_names_line_and_key_of_a_bad_byte():
    assert decode("ü: 1\n".encode()) == "ü: 1\n" and decode(b"\xef\xbb\xbfa: 1\n") == "a: 1\n"
    with pytest.raises(YamlProblem) as e:
        decode(b"a:\n  b: 1\n  c: \"x\xffy\"\n")
    assert (e.value.line, e.value.path, e.value.message) == (3, ("a", "c"), "not UTF-8 text (byte 0xff)")


def test_timestamps_and_dates_are_what_safe_load_builds():
    assert load("a: 2020-01-02\n") == {"a": dt.date(2020, 1, 2)}
