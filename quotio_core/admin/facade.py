"""What the admin room may see of the gateway: exactly these members.

`Gateway` satisfies it structurally; admin modules type against this and
never import `quotio_core.gateway`, so a new admin feature that needs more
of the gateway has to say so here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..config import Config
    from ..pool.authstore import AuthStore
    from ..pool.breaker import Breakers
    from ..pool.cooldown import CooldownBook
    from ..pool.credentials import Credential
    from ..pool.quota import QuotaBook
    from ..providers.login.keeper import TokenKeeper
    from ..providers.login.sessions import LoginSessions
    from ..records import RecordStore

__all__ = ["GatewayView"]


class GatewayView(Protocol):
    config: Config
    started_at: float
    store: AuthStore  # the auth dir
    records: RecordStore
    cooldowns: CooldownBook
    breakers: Breakers
    tokens: TokenKeeper  # refresh, bearer
    logins: LoginSessions  # pending OAuth logins
    quotas: QuotaBook

    def credentials(self) -> list[Credential]: ...

    def rebuild_router(self) -> None: ...
