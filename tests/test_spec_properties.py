"""Property-based tests of the experiment spec schema (issue 10), in-process with Hypothesis.

A tiny valid spec is mutated (a field given another type or an absurd number, a field deleted, a misspelt or unknown
key, an unknown option or modality name, a ``dotted.field=value`` override, broken TOML text, binary bytes) and run
through ``gmn-run SPEC --dry-run``. Every mutant is either accepted (``load_spec`` returns and the dry run exits 0)
or refused with exit code 2 and one stderr line per problem, each ``FILE: dotted.field: what is wrong`` naming the
mutated field; a mutant that makes one problem gets exactly one line. Never a traceback, never another exception.
"""

import contextlib
import copy
import io
import json
import math
import re
import tomllib

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from gmn_plugins.cli import run
from gmn_plugins.core.spec import DataSpec, ExperimentSpec, TrainSpec, load_spec, notices, to_dict

EXAMPLES = 100  # per property; the whole file runs in well under a minute on 2 cores
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None)  # no example database (.hypothesis/)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("spec-properties")


@pytest.fixture(scope="module")
def base(root) -> dict:
    """Every field of the schema, spelt out, at tiny sizes (the dry run never touches data.dir or train.out)."""
    spec = ExperimentSpec(
        name="tiny", modalities=["rgb", "haptic"], seed=3,
        data=DataSpec(dir=str(root / "data"), train_scenes=4, val_scenes=1, views=4, shard_size=2, workers=1),
        train=TrainSpec(out=str(root / "run"), steps=2, batch_scenes=2, max_targets=2, device="cpu", threads=1),
    )  # fmt: skip
    data = to_dict(spec)
    # TOML has no null: an optional field left unset (train.seed) is written by leaving it out
    data = {k: {kk: vv for kk, vv in v.items() if vv is not None} if isinstance(v, dict) else v
            for k, v in data.items() if v is not None}  # fmt: skip
    assert tomllib.loads(to_toml(data)) == data  # the writer below is sound
    return data


# ----------------------------------------------------------------------------------------------------------------
# a small TOML writer (the mutants are written as real files)


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_value(key)


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "nan" if math.isnan(value) else {math.inf: "inf", -math.inf: "-inf"}.get(value, repr(value))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(map(toml_value, value)) + "]"
    return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def to_toml(data: dict) -> str:
    lines = [f"{toml_key(k)} = {toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for name, table in data.items():
        if isinstance(table, dict):
            lines += ["", f"[{toml_key(name)}]"] + [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def shown(key: str) -> str:
    """How a spec error names a key: bare, or quoted as in TOML."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


# ----------------------------------------------------------------------------------------------------------------
# the property


def dry_run(path, overrides=()) -> tuple[int, str]:
    """``gmn-run PATH OVERRIDES --dry-run`` in this process: (exit code, stderr). Any other exception propagates."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            run.main([str(path), *overrides, "--dry-run"])
            code = 0
        except SystemExit as exc:
            code = exc.code
    return code, err.getvalue()


def check(path, overrides=(), field: str | None = None, problems: int | None = 1, refused: bool = False) -> None:
    """Accepted, or exit 2 with lines ``PATH: FIELD...: what`` (``problems`` of them when given)."""
    code, err = dry_run(path, overrides)
    event("accepted" if code == 0 else f"refused, {len(err.splitlines())} line(s)")
    if code == 0 and not refused:
        spec = load_spec(path, list(overrides))
        assert err.splitlines() == notices(spec, str(path))  # nothing but the notices of what a run would not do
        return
    assert code == 2, (code, err)
    lines = err.splitlines()
    assert lines and (problems is None or len(lines) == problems), err
    for line in lines:
        assert line.startswith(f"{path}: ") and len(line) > len(f"{path}: "), err
        if field is not None:
            rest = line.removeprefix(f"{path}: ")
            assert rest.startswith(field) and rest[len(field)] in ":[.", (field, err)


def write(root, data_or_text) -> str:
    path = root / "mutant.toml"
    path.write_text(data_or_text if isinstance(data_or_text, str) else to_toml(data_or_text), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------------------------------
# strategies

OPTIONS = ["apoe", "poe", "baseline", "v4", "small", "present", "all", "bias", "context", "dense", "light", "fast",
           "faithful", "code", "paper", "value", "norm", "builtin", "auto", "cpu", "cuda", "cuda:0", "cuda:7", "mps",
           "poex", "APoE", "", " cpu", "cpu\n"]  # fmt: skip
MODALITIES = ["rgb", "haptic", "rgb-ul", "haptics1", "depth", "haptc", "RGB", "rgb "]
SCALARS = st.one_of(
    st.booleans(),
    st.integers(),
    st.sampled_from([-1, 0, 1, 2, 8, 9, 2**31, 2**32, 2**63, 2**64, 10**12, -(2**63), 10**400]),
    st.floats(),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -0.0, 5e-324, 1.0, 1e12]),
    st.text(max_size=12),
    st.sampled_from(OPTIONS + MODALITIES),
)
NAMES = st.lists(st.sampled_from(MODALITIES), min_size=0, max_size=3)


# any TOML value making one problem at most (but data.hand): a scalar, a table or an array of one item at most
VALUES = st.one_of(
    SCALARS, st.lists(st.sampled_from(MODALITIES), max_size=1), st.lists(SCALARS, max_size=1),
    st.dictionaries(st.text(max_size=6), SCALARS, max_size=1), st.lists(st.lists(SCALARS, max_size=1), max_size=1),
    st.fixed_dictionaries({"mjcf": st.one_of(st.text(max_size=8), SCALARS)}),
)  # fmt: skip


def fields(data: dict) -> list[tuple[str, ...]]:
    """Every key path of the spec: the top-level fields, the tables, and every field of each table."""
    return [(k,) for k in data] + [(k, f) for k, v in data.items() if isinstance(v, dict) for f in v]


def table_of(data: dict, path: tuple[str, ...]) -> dict:
    return data if len(path) == 1 else data[path[0]]


def typo(word: str) -> st.SearchStrategy[str]:
    """One edit of ``word``: a character deleted, inserted, replaced, or two swapped."""
    chars = st.sampled_from("abcdeilmnorstx_-0 .É")
    i = st.integers(0, len(word) - 1)
    return st.one_of(
        i.map(lambda k: word[:k] + word[k + 1 :]),
        st.tuples(st.integers(0, len(word)), chars).map(lambda a: word[: a[0]] + a[1] + word[a[0] :]),
        st.tuples(i, chars).map(lambda a: word[: a[0]] + a[1] + word[a[0] + 1 :]),
        st.integers(0, len(word) - 2).map(lambda k: word[:k] + word[k + 1] + word[k] + word[k + 2 :]),
    )


# ----------------------------------------------------------------------------------------------------------------
# properties


def must_refuse(path: tuple[str, ...], old, new) -> bool:
    """What no field takes: another type (an int for a float is fine), a negative or not finite number."""
    if path == ("data", "hand"):  # "builtin" or a table {mjcf = PATH}
        return not (new == "builtin" or type(new) is dict)
    if type(new) is not type(old) and not (type(old) is float and type(new) is int):
        return True
    if type(new) is float:
        return not (math.isfinite(new) and new >= 0)
    return type(new) is int and new < 0


@SETTINGS
@given(data=st.data())
def test_a_field_of_another_type_or_an_absurd_value_is_one_line_naming_it(root, base, data):
    path = data.draw(st.sampled_from(fields(base)), label="field")
    value = data.draw(VALUES, label="value")
    spec = copy.deepcopy(base)
    table_of(spec, path)[path[-1]] = value
    problems = None if path == ("data", "hand") and type(value) is dict else 1  # {KEY = 1}: no mjcf, unknown KEY
    refused = must_refuse(path, table_of(base, path)[path[-1]], value)
    check(write(root, spec), field=".".join(path), problems=problems, refused=refused)


@SETTINGS
@given(data=st.data())
def test_containers_with_several_bad_items_give_one_line_per_problem(root, base, data):
    path = data.draw(st.sampled_from(fields(base)), label="field")
    several = st.one_of(st.lists(SCALARS, min_size=2, max_size=4), NAMES,
                        st.dictionaries(st.text(max_size=6), SCALARS, min_size=2, max_size=4))  # fmt: skip
    value = data.draw(several, label="value")
    spec = copy.deepcopy(base)
    table_of(spec, path)[path[-1]] = value
    check(write(root, spec), field=".".join(path), problems=None)


@SETTINGS
@given(data=st.data())
def test_a_deleted_field_is_accepted_or_one_line_naming_it(root, base, data):
    path = data.draw(st.sampled_from(fields(base)), label="field")
    spec = copy.deepcopy(base)
    del table_of(spec, path)[path[-1]]
    check(write(root, spec), field=".".join(path))


@SETTINGS
@given(data=st.data())
def test_a_misspelt_field_is_one_line_naming_the_misspelling(root, base, data):
    path = data.draw(st.sampled_from(fields(base)), label="field")
    table = table_of(base, path)
    new = data.draw(typo(path[-1]).filter(lambda k: k not in table), label="typo")
    spec = copy.deepcopy(base)
    mutant = table_of(spec, path)
    mutant[new] = mutant.pop(path[-1])
    check(write(root, spec), field=".".join([*path[:-1], shown(new)]), refused=True)


@SETTINGS
@given(data=st.data())
def test_an_unknown_key_is_one_line_naming_it(root, base, data):
    table = data.draw(st.sampled_from([None, "data", "model", "train"]), label="table")
    key = data.draw(st.text(max_size=10).filter(lambda k: k not in (base[table] if table else base)), label="key")
    spec = copy.deepcopy(base)
    (spec[table] if table else spec)[key] = data.draw(VALUES, label="value")
    check(write(root, spec), field=".".join(filter(None, [table, shown(key)])), refused=True)


@SETTINGS
@given(data=st.data())
def test_overrides_are_accepted_or_one_line_naming_the_file(root, base, data):
    keys = [".".join(p) for p in fields(base)]
    key = data.draw(st.one_of(st.sampled_from(keys), st.sampled_from(keys).flatmap(typo), st.text(max_size=12)),
                    label="key")  # fmt: skip
    raw = data.draw(st.one_of(VALUES.map(toml_value), st.text(max_size=12)), label="value")
    sep = data.draw(st.sampled_from(["=", ""]), label="separator")
    override = key + sep + raw
    if override.startswith("-"):  # argparse would read it as an option
        override = "x" + override[1:]
    named = key if key in keys and sep else None
    check(write(root, base), [override], field=named, problems=None)


@SETTINGS
@given(data=st.data())
def test_broken_toml_text_is_accepted_or_lines_naming_the_file(root, base, data):
    text = to_toml(base)
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        i = data.draw(st.integers(0, len(text)), label="at")
        char = data.draw(st.one_of(st.sampled_from('=[]{}"\'#\n.,\\ x0-+e'), st.characters(blacklist_categories=("Cs",))), label="char")  # Cs: lone surrogates cannot be written
        kind = data.draw(st.sampled_from(["delete", "insert", "replace"]), label="edit")
        text = {"delete": text[:i] + text[i + 1 :], "insert": text[:i] + char + text[i:],
                "replace": text[:i] + char + text[i + 1 :]}[kind]  # fmt: skip
    check(write(root, text), problems=None)


@SETTINGS
@given(head=st.sampled_from([b"", b'name = "x"\n', b"\xef\xbb\xbf"]), body=st.binary(max_size=64))
def test_binary_bytes_are_lines_naming_the_file(root, head, body):
    path = root / "mutant.toml"
    path.write_bytes(head + body)
    check(path, problems=None)
