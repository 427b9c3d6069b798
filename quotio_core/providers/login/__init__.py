"""Logging in to each provider and staying logged in.

One module per provider (``providers/<provider>/login.py``), named by that
provider's spec (``providers.login_module``). Here: the contract they keep
(``base.py``), pending logins (``sessions.py``, ``callback.py``) and the
token keeper (``keeper.py``). A module offers the flows named in its ``FLOWS`` and
defines, for each:

* every module: ``PROVIDER``, ``FLOWS``, ``REFRESH_LEAD`` (a ``timedelta``
  before expiry at which the refresher renews the token, or None when the
  stored token does not expire), ``file_name(data) -> str`` and
  ``async refresh(ctx, data) -> dict`` (the whole new file; it keeps the old
  refresh token when the answer has none and raises ``InvalidGrant`` when the
  grant is dead). A module whose stored token never expires may omit refresh.
* ``"auth-code"``: ``CALLBACK_PORT``, ``CALLBACK_PATH``,
  ``authorize(ctx) -> AuthCodeStart`` and
  ``async exchange(ctx, start, code) -> dict`` (the auth file's JSON).
* ``"device"``: ``async device_start(ctx) -> DeviceStart`` and
  ``async device_poll(ctx, start) -> dict | None`` (None while pending;
  raises ``SlowDown`` or ``LoginError``).
* ``"service-account"``: ``async import_service_account(ctx, key) -> dict``.
* optionally ``async bearer(ctx, data) -> Bearer`` when requests carry a
  short-lived token derived from the file rather than the file's own token.

The file JSON is CLIProxyAPI's format for that provider, so a file written
here works in CLIProxyAPI and the other way round.
"""

from __future__ import annotations

from .base import AuthCodeStart, Bearer, DeviceStart, InvalidGrant, LoginContext, LoginError, SlowDown

__all__ = [
    "AuthCodeStart",
    "Bearer",
    "DeviceStart",
    "InvalidGrant",
    "LoginContext",
    "LoginError",
    "SlowDown",
]
