"""tools/import_graph.py: the package's import graph has no cycle and no upward arrow, every module has a layer,
and no function is over 100 lines; the checker itself finds a cycle and an upward arrow it is shown."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load():
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "tools" / "import_graph.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_package_has_no_cycle_no_upward_arrow_and_no_long_function():
    r = load().report()
    assert r["cycles"] == [], r["cycles"]
    assert r["upward"] == [], r["upward"]
    assert r["unlayered"] == [], r["unlayered"]
    assert r["long_functions"] == [], r["long_functions"]


def test_the_checker_finds_a_cycle_and_an_upward_arrow(tmp_path, monkeypatch):
    ig = load()
    pkg = tmp_path / "racing"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "models" / "__init__.py").write_text("")
    (pkg / "models" / "a.py").write_text("def f():\n    from racing.models import b\n")  # function-local counts
    (pkg / "models" / "b.py").write_text("from racing.models.a import f\nfrom racing import cli\n")
    (pkg / "cli.py").write_text("x = 1\n" + "def g():\n" + "    y = 1\n" * 101)
    monkeypatch.setattr(ig, "ROOT", tmp_path)
    r = ig.report(pkg)
    assert r["cycles"] == [["racing.models.a", "racing.models.b"]]
    assert r["upward"] == [["racing.models.b", "racing.cli"]]
    assert r["long_functions"] == [["racing.cli.g", 102]]
