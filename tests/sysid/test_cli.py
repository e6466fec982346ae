"""racing fit --json on a CSV log; the fitted YAML loads back."""
from __future__ import annotations

import argparse
import json

from racing.models.params import load_params
from racing.sysid import cli
from racing.sysid.excite import excitation_log


def test_fit_json(tmp_path, capsys):
    true = load_params("f1tenth").replace(D_f=0.95, D_r=1.0)
    log, _ = excitation_log(true, 15.0, seed=4)
    log.save(tmp_path / "a.csv")
    ap = argparse.ArgumentParser()
    cli.register(ap.add_subparsers(dest="cmd"))
    args = ap.parse_args(["fit", str(tmp_path / "a.csv"), "--car", "f1tenth", "--out", str(tmp_path / "fit.yaml"),
                          "--params", "D_f,D_r,inertia_z", "--json", "--plot", str(tmp_path / "p.png")])
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["fit"]["params"]) == {"D_f", "D_r", "inertia_z"}
    assert "1 s" in out["evaluation"]["rmse"]["parametric"]
    assert abs(load_params(tmp_path / "fit.yaml").D_f / 0.95 - 1) < 0.05
    assert (tmp_path / "p.png").is_file()


def test_fit_bad_log_is_clear_error(tmp_path, capsys):
    (tmp_path / "x.csv").write_text("not a log\n")
    ap = argparse.ArgumentParser()
    cli.register(ap.add_subparsers(dest="cmd"))
    args = ap.parse_args(["fit", str(tmp_path / "x.csv")])
    assert args.func(args) == 2
    assert "not a racing log" in capsys.readouterr().err
