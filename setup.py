"""The package layout, which pyproject.toml cannot state alone: the data folders at the top of the repository
(``tracks/``, ``vehicle_params/``) go into the wheel as ``racing/tracks`` and ``racing/vehicle_params``
(:mod:`racing.resources` finds them in either place). Everything else is in pyproject.toml."""
from setuptools import find_namespace_packages, setup

DATA = {"racing.tracks": "tracks", "racing.vehicle_params": "vehicle_params"}

setup(
    packages=find_namespace_packages(include=["racing", "racing.*"]) + list(DATA),
    package_dir=DATA,
    # the tracks (every file of every track folder, the licences), the cars, the MPPI tunings, the sysid column maps
    package_data={"racing.tracks": ["**/*"], "racing.vehicle_params": ["*.yaml"],
                  "racing": ["control/mppi/*.yaml", "sysid/columns/*.yaml"]},
)
