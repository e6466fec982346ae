"""Test/tool helpers around the CommonRoad plant (:mod:`racing.sim.commonroad`): the truth of a CommonRoad car in
the project's terms, to score identification against.

**Truth in the project's terms** (:func:`truth`): mass m, l_f = a, l_r = b and I_z are CommonRoad's. ST's
linear tyres give ``F_yi = mu C_Si F_zi alpha_i`` with ``mu = p_dy1``, ``C_S = -p_ky1 / p_dy1`` and (at zero
acceleration) the static loads ``F_zf = m g b / L``, ``F_zr = m g a / L``, so the axle cornering stiffness is
``K_i = mu C_Si F_zi = -p_ky1 F_zi`` [N/rad]. MB's Pacejka tyres have ``K_y = -p_ky1 F_z`` per tyre (camber 0), so
its axle stiffness is ``-p_ky1`` times its static axle load ``F0_z = m_s g (b, a) / L + m_u g`` (init_mb). MB's
yaw equation uses the sprung mass's ``I_z`` about its CoG, with the unsprung masses ``m_uf, m_ur`` at the axles
carried laterally by the suspension; a single-track model of total mass m is one rigid body, so its equivalent
yaw inertia is ``I_z + m_uf a^2 + m_ur b^2`` (2006 kg m^2 against I_z = 1792; the total CoG is 1.6 cm behind
the sprung one, neglected). ST's truth is its ``I_z``. The project's Pacejka axle has, at small slip,
``K_i = B_i C_i D_i F_zi`` with its static loads ``m g (l_r, l_f) / L``: those axle stiffnesses [N/rad] are
compared.
"""
from __future__ import annotations

from racing.models.params import G, VehicleParams
from racing.sim.commonroad import CommonRoadPlant, nominal_params, vehicle_parameters  # noqa: F401 (re-exported)


def cr_params(vehicle: int = 2):
    return vehicle_parameters(vehicle)


def truth(model: str = "st", vehicle: int = 2) -> dict:
    """A CommonRoad car (default BMW 320i) in the project's terms (module doc): K_f, K_r axle cornering stiffness
    [N/rad]."""
    p = cr_params(vehicle)
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
    """The identification base car: the CommonRoad BMW's geometry, mass, limits and actuators (servo lag
    ``steer_tau``) with a generic tyre (B 10, C 1.3, the stiffness per load of CommonRoad's ``p_ky1``)."""
    p = cr_params()
    return nominal_params(2, "st", name="bmw320i").replace(
        B_f=10.0, C_f=1.3, D_f=-p.tire.p_ky1 / 13.0, B_r=10.0, C_r=1.3, D_r=-p.tire.p_ky1 / 13.0, mu=p.tire.p_dy1,
        E_f=0.0, E_r=0.0, steer_tau=steer_tau)
