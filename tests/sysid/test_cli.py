"""racing fit on CSV logs: JSON, YAML round trip, names, base car from the header, scale check, --residual."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from racing.models.params import load_params
from racing.sysid import cli
from racing.sysid.excite import excitation_log


def _run(argv):
    ap = argparse.ArgumentParser()
    cli.register(ap.add_subparsers(dest="cmd"))
    args = ap.parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module")
def f1_log(tmp_path_factory):
    true = load_params("f1tenth").replace(D_f=0.95, D_r=1.0)
    log, _ = excitation_log(true, 15.0, seed=4)
    log.meta["car"] = "f1tenth"
    path = tmp_path_factory.mktemp("logs") / "a.csv"
    log.save(path)
    return path


def test_fit_json(tmp_path, capsys, f1_log):
    assert _run(["fit", str(f1_log), "--car", "f1tenth", "--out", str(tmp_path / "fit.yaml"),
                 "--params", "D_f,D_r,inertia_z", "--json", "--plot", str(tmp_path / "p.png"), "--boot", "50",
                 "--eval", str(f1_log)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["evaluation"]["data"] == "held-out logs"
    assert set(out["fit"]["params"]) | set(out["fit"]["not_identified"]) == {"D_f", "D_r", "inertia_z"}
    ev = out["evaluation"]
    assert "1 s" in ev["rmse"]["parametric"] and ev["init"] == "causal"
    for m in ("persistence", "constant-velocity", "base", "parametric"):  # baselines in every table
        assert set(ev["rmse"][m]) == {"one-step", "0.5 s", "1 s"}
        assert {"pos_avg", "pos_final"} <= set(ev["position"][m])
    assert abs(load_params(tmp_path / "fit.yaml").D_f / 0.95 - 1) < 0.05
    assert (tmp_path / "p.png").is_file()


def test_written_yaml_loads_back_unchanged(tmp_path, capsys, f1_log):
    """fit -> write -> load -> equal, including values YAML 1.1 would read as strings (1e-06)."""
    out = tmp_path / "fit.yaml"
    assert _run(["fit", str(f1_log), "--params", "speed_kp,D_f", "--out", str(out), "--json", "--boot", "20",
                 "--name", "tiny_kp"]) == 0
    fitted = load_params(out)
    assert fitted.name == "tiny_kp"
    odd = fitted.replace(speed_kp=1e-06, c_roll=1e-7, inertia_z=5e-05)
    odd.to_yaml(tmp_path / "odd.yaml")
    assert "speed_kp: 1.0e-06" in (tmp_path / "odd.yaml").read_text()
    assert load_params(tmp_path / "odd.yaml") == odd
    # the car racing fit wrote equals what it reported
    rep = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(fitted.D_f, rep["fit"]["params"].get("D_f", load_params("f1tenth").D_f), rtol=1e-12)


def test_two_fits_from_one_base_get_different_names(tmp_path, capsys, f1_log):
    for k, params in enumerate(("D_f", "D_r")):
        assert _run(["fit", str(f1_log), "--params", params, "--out", str(tmp_path / f"f{k}.yaml"), "--boot", "0"]) == 0
    a, b = load_params(tmp_path / "f0.yaml"), load_params(tmp_path / "f1.yaml")
    assert a.name != b.name and a.name.startswith("f1tenth_fit_") and b.name.startswith("f1tenth_fit_")
    assert "base car: f1tenth (log header '# car: f1tenth')" in capsys.readouterr().out


def test_scale_mismatch_is_an_error(tmp_path, capsys, f1_log):
    assert _run(["fit", str(f1_log), "--car", "gt_car"]) == 2  # the header names f1tenth
    err = capsys.readouterr().err
    assert "the log header says it was driven by car 'f1tenth'" in err and "--car 'gt_car' is another car" in err
    bare = tmp_path / "bare.csv"  # no header: the data alone give the car away
    bare.write_text("".join(ln for ln in f1_log.read_text().splitlines(keepends=True) if not ln.startswith("# car:")))
    assert _run(["fit", str(bare), "--car", "gt_car"]) == 2
    err = capsys.readouterr().err
    assert "does not fit the scale of the base car 'gt_car'" in err and "wheelbase" in err


def test_no_car_and_no_header_is_an_error(tmp_path, capsys):
    log, _ = excitation_log(load_params("f1tenth"), 3.0, seed=1)
    log.meta.pop("car", None)
    log.save(tmp_path / "x.csv")
    assert _run(["fit", str(tmp_path / "x.csv")]) == 2
    assert "no '# car:' header" in capsys.readouterr().err


def test_fit_bad_log_is_clear_error(tmp_path, capsys):
    (tmp_path / "x.csv").write_text("not a log\n")
    assert _run(["fit", str(tmp_path / "x.csv")]) == 2
    assert "not a racing log" in capsys.readouterr().err


def test_residual_completes_with_json(tmp_path, capsys):
    pytest.importorskip("torch")
    log, _ = excitation_log(load_params("f1tenth"), 8.0, seed=5)
    log.save(tmp_path / "short.csv")
    assert _run(["fit", str(tmp_path / "short.csv"), "--car", "f1tenth", "--params", "D_f", "--boot", "0",
                 "--residual", str(tmp_path / "w.npz"), "--epochs", "1", "--hidden", "8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    r = out["residual"]
    assert isinstance(r["taus"], list) and r["kept"] in (True, False) and "validation" in r
    assert (tmp_path / "w.npz").is_file() == r["kept"]
    assert ("semi-parametric" in out["evaluation"]["rmse"]) == r["kept"]
