"""The vehicle runtime (``racing drive``): a fixed-rate loop with a watchdog that drives a car over
the UDP protocol of :mod:`racing.runtime.protocol`, and the car's simulated twin.

>>> from racing.runtime import RuntimeLoop, LoopConfig, UdpVehicle
>>> sec = LinkSecurity(key=load_key("car.key"))
>>> result = RuntimeLoop(controller, UdpVehicle("127.0.0.1", 5600, security=sec), LoopConfig(duration_s=10)).run()

Heavy parts (the plant, numba) are imported by :mod:`racing.runtime.vehicle_sim` only.
"""
from racing.runtime.auth import LinkSecurity, Receiver, Rejected, Sender, load_key, write_key
from racing.runtime.loop import DriveResult, LoopConfig, RuntimeLoop, run_with_signals
from racing.runtime.protocol import ProtocolError, decode, encode
from racing.runtime.vehicle import LinkStats, UdpVehicle, Vehicle, parse_udp_url
from racing.runtime.watchdog import Trip, Watchdog, WatchdogConfig

__all__ = [
    "DriveResult",
    "LinkSecurity",
    "LinkStats",
    "LoopConfig",
    "ProtocolError",
    "Receiver",
    "Rejected",
    "Sender",
    "RuntimeLoop",
    "Trip",
    "UdpVehicle",
    "Vehicle",
    "Watchdog",
    "WatchdogConfig",
    "decode",
    "encode",
    "load_key",
    "parse_udp_url",
    "run_with_signals",
    "write_key",
]
