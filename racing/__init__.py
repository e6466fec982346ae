"""racing: model-based real-time control for racing cars.

Vehicle models (kinematic bicycle, dynamic single-track with Pacejka tyres, semi-parametric),
tracks and Frenet geometry, a closed-loop race simulator, controllers (pure pursuit, MPPI,
...), system identification and the ``racing`` command line.
"""
__version__ = "0.1.0"
