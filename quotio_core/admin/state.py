"""What the admin side keeps across gateways (a config reload replaces the gateway, not these)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .lockout import KeyLockout
from .metrics import Metrics

__all__ = ["AdminState"]


@dataclass
class AdminState:
    metrics: Metrics = field(default_factory=Metrics)
    lockout: KeyLockout = field(default_factory=KeyLockout)
