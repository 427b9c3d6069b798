"""Antigravity accounts: their auth files parse (and show in listings), but no executor serves them yet."""

from __future__ import annotations

from ..base import Provider

PROVIDER = Provider(id="antigravity")
