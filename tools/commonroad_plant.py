"""Test/tool adapter (not part of the package): CommonRoad's single-track (ST) and multi-body (MB) models (TUM, PyPI ``commonroad-vehicle-models``)
as plants.

Only the glue lives here: the CommonRoad model (``vehicle_dynamics_st``, vehicle 2 = BMW 320i) integrates the
car; the car's actuators turn Ackermann commands into its inputs (steering velocity, longitudinal acceleration)
through the project's one actuator model, :func:`racing.models.actuators.actuator_inputs` (servo lag and rate
limit, speed loop). State mapping (CommonRoad ST -> the project's layout): ``x, y`` = (s_x, s_y) (CoG),
``yaw = psi``, ``v_x = v cos(beta)``, ``v_y = v sin(beta)``, ``r = psi_dot``, ``delta``.

MB: ``v_x = x[3]``, ``v_y = x[10]`` (sprung mass), ``r = x[5]``, ``delta = x[2]``.

**Truth in the project's terms** (:func:`truth`): mass m, l_f = a, l_r = b and I_z are CommonRoad's. ST's
linear tyres give ``F_yi = mu C_Si F_zi alpha_i`` with ``mu = p_dy1``, ``C_S = -p_ky1 / p_dy1`` and (at zero
acceleration) the static loads ``F_zf = m g b / L``, ``F_zr = m g a / L``, so the axle cornering stiffness is
``K_i = mu C_Si F_zi = -p_ky1 F_zi`` [N/rad]. MB's Pacejka tyres have ``K_y = -p_ky1 F_z`` per tyre (camber 0), so
its axle stiffness is ``-p_ky1`` times its static axle load ``F0_z = m_s g (b, a) / L + m_u g`` (init_mb). MB's
yaw equation uses the sprung mass's ``I_z`` about its CoG, with the unsprung masses ``m_uf, m_ur`` at the axles
carried laterally by the suspension; a single-track model of total mass m is one rigid body, so its equivalent
yaw inertia is ``I_z + m_uf a^2 + m_ur b^2`` (2006 kg m^2 against I_z = 1792; the total CoG is 1.6 cm behind
the sprung one, neglected). ST's truth is its ``I_z``. The project's Pacejka axle has, at small slip, ``K_i = B_i C_i D_i F_zi`` with its static loads
``m g (l_r, l_f) / L``: those axle stiffnesses [N/rad] are compared. (CommonRoad's loads shift with ``a h``; the
excitation keeps accelerations moderate.)
"""
from __future__ import annotations

import math

import numpy as np

from racing.models.actuators import actuator_inputs
from racing.models.ops import NUMPY
from racing.models.params import G, VehicleParams, load_params

from vehiclemodels.parameters_vehicle2 import parameters_vehicle2  # noqa: E402
from vehiclemodels.init_mb import init_mb  # noqa: E402
from vehiclemodels.vehicle_dynamics_mb import vehicle_dynamics_mb  # noqa: E402
from vehiclemodels.vehicle_dynamics_st import vehicle_dynamics_st  # noqa: E402


def cr_params():
    return parameters_vehicle2()


def truth(model: str = "st") -> dict:
    """BMW 320i (CommonRoad vehicle 2) in the project's terms (module doc): K_f, K_r axle cornering stiffness
    [N/rad]."""
    p = cr_params()
    L = p.a + p.b
    k = -p.tire.p_ky1
    iz = p.I_z
    if model == "mb":
        fzf, fzr = p.m_s * G * p.b / L + p.m_uf * G, p.m_s * G * p.a / L + p.m_ur * G
        iz = p.I_z + p.m_uf * p.a ** 2 + p.m_ur * p.b ** 2
    else:
        fzf, fzr = p.m * G * p.b / L, p.m * G * p.a / L
    return {"mass": p.m, "inertia_z": iz, "I_z_sprung": p.I_z, "l_f": p.a, "l_r": p.b, "h_cg": p.h_s,
            "K_f": k * fzf, "K_r": k * fzr}


def axle_stiffness(q: VehicleParams) -> tuple[float, float]:
    """(K_f, K_r) [N/rad] of the project's model: ``B C D F_z`` at the static loads."""
    L = q.l_f + q.l_r
    return q.B_f * q.C_f * q.D_f * q.mass * G * q.l_r / L, q.B_r * q.C_r * q.D_r * q.mass * G * q.l_f / L


def actuator_car(steer_tau: float = 0.08) -> VehicleParams:
    """The adapter's actuators (steering servo of lag ``steer_tau``, CommonRoad's steering-rate limit, speed loop)
    and geometry, as a VehicleParams (the tyre fields are not used by the plant)."""
    p, t = cr_params(), truth()
    return load_params("gt_car").replace(
        name="bmw320i", mass=t["mass"], inertia_z=t["inertia_z"], l_f=t["l_f"], l_r=t["l_r"], h_cg=t["h_cg"],
        width=p.w, B_f=10.0, C_f=1.3, D_f=-p.tire.p_ky1 / 13.0, B_r=10.0, C_r=1.3, D_r=-p.tire.p_ky1 / 13.0,
        mu=p.tire.p_dy1,
        E_f=0.0, E_r=0.0, c_roll=0.0, c_drag=0.0, steer_max=min(p.steering.max, 0.6), steer_rate_max=p.steering.v_max,
        accel_max=p.longitudinal.a_max, decel_max=p.longitudinal.a_max,
        power_max=p.m * p.longitudinal.a_max * p.longitudinal.v_switch, v_max=p.longitudinal.v_max,
        steer_tau=steer_tau, steer_gain=1.0, steer_offset=0.0, speed_kp=1.5, tuning=None)


class CommonRoadPlant:
    """``reset(x0[7])``, ``step(command, dt) -> x[7]``: a CommonRoad model ("st" or "mb") behind the project's
    actuators, RK4 with sub-steps of at most ``h_max`` [s] (MB needs about 1 ms)."""

    def __init__(self, model: str = "st", actuators: VehicleParams | None = None, h_max: float | None = None):
        self.model = model
        self.p = cr_params()
        self.act = actuators or actuator_car()
        self.pa = self.act.to_array()
        self.h_max = h_max or (0.005 if model == "st" else 0.001)
        self.dyn = vehicle_dynamics_st if model == "st" else vehicle_dynamics_mb
        self.x = None

    def reset(self, x0):
        x0 = np.asarray(x0, float)
        v = math.hypot(x0[3], x0[4])
        st = [x0[0], x0[1], x0[6], v, x0[2], x0[5], math.atan2(x0[4], x0[3]) if v > 0 else 0.0]
        self.x = np.array(st if self.model == "st" else init_mb(st, self.p), dtype=float)

    def state(self) -> np.ndarray:
        s = self.x
        yaw = (s[4] + math.pi) % (2 * math.pi) - math.pi
        if self.model == "st":
            return np.array([s[0], s[1], yaw, s[3] * math.cos(s[6]), s[3] * math.sin(s[6]), s[5], s[2]])
        return np.array([s[0], s[1], yaw, s[3], s[10], s[5], s[2]])

    def _f(self, x, u):
        return np.asarray(self.dyn(list(x), u, self.p))

    def step(self, cmd, dt):
        n = max(1, int(math.ceil(dt / self.h_max - 1e-9)))
        h = dt / n
        for _ in range(n):
            s = self.state()
            rate, acc = actuator_inputs(s[6], s[3], cmd.steering_angle, cmd.speed, cmd.acceleration, self.pa, h, True,
                                        NUMPY)
            u = [float(rate), float(acc)]
            x = self.x
            k1 = self._f(x, u)
            k2 = self._f(x + 0.5 * h * k1, u)
            k3 = self._f(x + 0.5 * h * k2, u)
            k4 = self._f(x + h * k3, u)
            self.x = x + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        return self.state()
