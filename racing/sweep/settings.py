"""Controller settings addressed by dotted keys (``cost.progress``), as the sweep and tune specs write them."""
from __future__ import annotations

import dataclasses


def nest(flat: dict) -> dict:
    """``{"cost.progress": 3.0, "lambda_": 1.0}`` -> ``{"cost": {"progress": 3.0}, "lambda_": 1.0}``."""
    out: dict = {}
    for key, value in flat.items():
        parts = str(key).split(".")
        d = out
        for p in parts[:-1]:
            d = d.setdefault(p, {})
        d[parts[-1]] = value
    return out


def get_dotted(conf, key: str):
    """The value of a dotted key in a (nested) config dataclass."""
    v = conf
    for p in key.split("."):
        v = getattr(v, p)
    return v


def flat_dict(conf, prefix: str = "") -> dict:
    """A config dataclass as ``{dotted key: value}`` (nested dataclasses flattened)."""
    out = {}
    for f in dataclasses.fields(conf):
        v = getattr(conf, f.name)
        if dataclasses.is_dataclass(v):
            out.update(flat_dict(v, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = v
    return out


__all__ = ["flat_dict", "get_dotted", "nest"]
