"""racing raceline: options outside their range are exit 2 with the option and the range named (before any
cached line is reused or any solver runs); the checks live in racing.raceline.cli.check_options, which
compute() (and so the raceline cache behind the controllers) runs too."""
import re

import pytest

from racing.cli import main
from racing.config import ConfigError
from racing.models.params import load_params
from racing.raceline.cli import check_options, compute
from racing.track import load_track


@pytest.mark.parametrize("argv,pattern", [
    (["--method", "mintime", "--time-limit", "0"], r"--time-limit 0.0: IPOPT wall-time limit; expected a number > 0 s"),
    (["--method", "mintime", "--max-iter", "0"], r"--max-iter 0: IPOPT iteration limit; expected an integer >= 1"),
    (["--spacing", "-1"], r"--spacing -1.0: grid spacing of track lab_loop \(99.\d\d m long\); expected 0.00498 .. 12.4 m"),
    (["--spacing", "0"], r"--spacing 0.0: .*expected 0.00498 .. 12.4 m \(8 to 20000 grid intervals\)"),
    (["--spacing", "nan"], r"--spacing nan: "),
    (["--margin", "-1"], r"--margin -1.0: safety margin .*; expected a number >= 0 m"),
    (["--margin", "100"], r"--margin 100.0: no room left for car f1tenth \(0.310 m wide\) on track lab_loop \(narrowest "
                          r"2.000 m\); expected a margin below 0.845 m"),
])
def test_raceline_options_out_of_range_are_exit_2(argv, pattern, capsys, tmp_path):
    out = tmp_path / "line.csv"
    rc = main(["raceline", "--track", "lab_loop", "--car", "f1tenth", "--out", str(out)] + argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "racing raceline: error:" in err
    assert re.search(pattern, err), err
    assert not out.exists()


def test_compute_checks_the_same_options():
    track, car = load_track("lab_loop"), load_params("f1tenth")
    check_options(track, car)  # the defaults
    with pytest.raises(ConfigError, match=r"--time-limit -1"):
        compute(track, car, "mintime", time_limit=-1.0)
    with pytest.raises(ConfigError, match=r"--max-iter 2.5"):
        check_options(track, car, max_iter=2.5)
