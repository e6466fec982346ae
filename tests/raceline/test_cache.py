"""The raceline cache: attaching a cached line, and computing a minimum-curvature one when asked."""


def test_attach_cached_computes_and_caches_a_min_curvature_line_when_asked(tmp_path, monkeypatch):
    """iLQR's fallback: no minimum-time line cached -> the car's minimum-curvature line, computed once, cached,
    then reused; without ``compute`` nothing is attached."""
    import numpy as np

    from racing.models.params import load_params
    from racing.raceline.cache import attach_cached
    from racing.track import Track

    monkeypatch.setenv("RACING_RACELINE_CACHE", str(tmp_path))
    th = np.linspace(0, 2 * np.pi, 300, endpoint=False)
    track = Track.from_centerline(np.column_stack([14.0 * np.cos(th), 7.0 * np.sin(th)]), 1.2, 1.2, name="oval_rl")
    params = load_params("f1tenth")
    plain, rec = attach_cached(track, params, True)
    assert plain is track and rec["source"] is None
    with_line, rec = attach_cached(track, params, True, compute="mincurv")
    assert with_line.raceline is not None and track.raceline is None
    assert rec["method"] == "mincurv" and rec.get("computed") and (tmp_path / "oval_rl_f1tenth_mincurv.csv").is_file()
    again, rec2 = attach_cached(track, params, True, compute="mincurv")
    assert again.raceline is not None and not rec2.get("computed") and rec2["method"] == "mincurv"
