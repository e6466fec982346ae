"""The strict config loader: unknown/missing keys, types, ranges, nested sections."""
from dataclasses import dataclass, field

import pytest

from racing.config import ConfigError, from_mapping, load, replace_from, to_dict


@dataclass(frozen=True)
class Inner:
    gain: float = field(default=1.0, metadata={"min": 0.0})


@dataclass(frozen=True)
class Outer:
    k: int = field(metadata={"gt": 0})
    mode: str = field(default="a", metadata={"choices": ("a", "b")})
    inner: Inner = Inner()
    flag: bool = False
    opt: float | None = None
    times: tuple[float, ...] = ()


def test_roundtrip_and_nested():
    o = from_mapping(Outer, {"k": 3, "inner": {"gain": 2.5}, "times": [1, 2]})
    assert o.k == 3 and o.inner.gain == 2.5 and o.times == (1.0, 2.0)
    assert from_mapping(Outer, to_dict(o)) == o
    assert replace_from(o, {"inner": {"gain": 0.5}}).inner.gain == 0.5


@pytest.mark.parametrize("data,pattern", [
    ({"k": 1, "kk": 2}, r"f\.yaml: unknown key 'kk'; known keys: flag, inner, k, mode, opt, times"),
    ({}, r"f\.yaml: missing key k"),
    ({"k": 0}, r"f\.yaml: k: expected a value > 0"),
    ({"k": 1.5}, r"f\.yaml: k: expected an integer"),
    ({"k": "x"}, r"f\.yaml: k: expected an integer"),
    ({"k": 1, "mode": "c"}, r"f\.yaml: mode: expected one of \['a', 'b'\]"),
    ({"k": 1, "inner": {"gain": -1}}, r"f\.yaml: inner\.gain: -1 is below the minimum 0"),
    ({"k": 1, "inner": {"gian": 1}}, r"f\.yaml: unknown key 'inner\.gian'"),
    ({"k": 1, "flag": "yes"}, r"f\.yaml: flag: expected true or false"),
    ({"k": 1, "opt": float("nan")}, r"f\.yaml: opt: expected a finite number"),
])
def test_errors_name_file_and_key(data, pattern):
    with pytest.raises(ConfigError, match=pattern):
        from_mapping(Outer, data, source="f.yaml")


def test_load_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load(Outer, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("k: [1,\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        load(Outer, bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load(Outer, lst)


def test_a_key_given_twice_is_an_error_naming_it_and_both_lines(tmp_path):
    """PyYAML keeps the last of two equal keys silently; the loader refuses them, nested mappings too."""
    dup = tmp_path / "dup.yaml"
    dup.write_text("k: 1.0\ninner:\n  a: 1\n  a: 2\n")
    with pytest.raises(ConfigError, match=r"dup\.yaml: not valid YAML: key 'a' appears twice \(lines 3 and 4\)"):
        load(Outer, dup)
    dup.write_text("k: 1.0\nk: 2.0\n")
    with pytest.raises(ConfigError, match=r"key 'k' appears twice \(lines 1 and 2\)"):
        load(Outer, dup)
