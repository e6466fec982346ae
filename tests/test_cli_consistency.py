"""One command line: --version, the same defaults for race and raceline, every option's default in its help, no
reStructuredText markup in help texts, one error prefix and one exit-code convention, missing extras named."""
import argparse
import re
import sys

import pytest

from racing.cli import main, make_parser
from racing.models.params import DEFAULT_CAR


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    return {}


def test_version(capsys):
    from racing import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"racing {__version__}"


def test_raceline_defaults_to_the_track_and_car_of_race():
    subs = _subparsers(make_parser())
    race = subs["race"].parse_args([])
    raceline = subs["raceline"].parse_args([])
    # race.car is None: the default car, unless the plant is a car of its own (commonroad:...)
    assert (raceline.track, raceline.car) == (race.track, race.car or DEFAULT_CAR) == ("lab_loop", "f1tenth")


def test_help_texts_show_defaults_and_no_markup():
    subs = _subparsers(make_parser())
    assert {"race", "raceline", "fit", "learn", "bench", "drive", "list"} <= set(subs)
    for name, p in subs.items():
        text = p.format_help()
        assert "``" not in text and not re.search(r":(mod|func|class|meth|data):`", text), name
        assert "%%" not in text and "%(" not in text, name
        for action in p._actions:
            if (action.option_strings and action.default not in (None, False, True, argparse.SUPPRESS)
                    and action.help is not argparse.SUPPRESS):
                flag = action.option_strings[-1]
                m = re.search(r"\n  (?:-\w, )?" + re.escape(flag) + r"\b(.*?)(?=\n  -|\Z)", text, flags=re.S)
                assert m, f"racing {name} {flag}: not in the help"
                assert "default" in m.group(1), f"racing {name} {flag}: no default in its help: {m.group(1)}"


@pytest.mark.parametrize("argv,prefix", [
    (["race", "--track", "nowhere", "--no-save"], "racing race: error:"),
    (["raceline", "--track", "nowhere"], "racing raceline: error:"),
    (["fit", "/nonexistent/log.csv"], "racing fit: error:"),
    (["learn", "--car", "bus"], "racing learn: error:"),
])
def test_one_error_prefix_and_exit_code_2(argv, prefix, capsys):
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith(prefix), err


def test_a_missing_extra_is_named(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "casadi", None)  # as if the raceline extra were not installed
    monkeypatch.setenv("RACING_RACELINE_CACHE", str(tmp_path))
    rc = main(["raceline", "--track", "lab_loop", "--no-cache"])
    err = capsys.readouterr().err
    assert rc == 2 and "racing raceline: error:" in err and "pip install 'racing[raceline]'" in err, err


def test_exit_codes_are_documented_in_the_readme():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for words in ("`completed_with_incidents`", "| 3 |", "| 1 |", "| 2 |", "completed clean"):
        assert words in readme, words
