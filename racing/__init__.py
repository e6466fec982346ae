"""racing: model-based real-time control for racing cars.

Vehicle models (kinematic bicycle, dynamic single-track with Pacejka tyres, semi-parametric),
tracks and Frenet geometry, a closed-loop race simulator, controllers (pure pursuit, MPPI,
...), system identification and the ``racing`` command line.

The notebook API (:mod:`racing.api`): ``racing.load_track``, ``racing.load_car``, ``racing.make_controller``,
``racing.make_plant``, ``racing.SimConfig``, ``racing.simulate``, ``racing.race``, ``racing.fit``,
``racing.plot_race``, ``racing.save_race``, ...
"""
__version__ = "0.1.0"

from racing.api import __all__ as _API  # noqa: E402  (light: racing.api imports nothing heavy at import time)

__all__ = ["__version__", *_API]


def __getattr__(name):
    """``racing.load_track``, ``racing.race``, ... (see :mod:`racing.api`), loaded on first use."""
    if name in _API:
        from racing import api

        return getattr(api, name)
    raise AttributeError(f"module 'racing' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
