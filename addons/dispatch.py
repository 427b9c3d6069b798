"""Hook dispatch that costs only what it does.

mitmproxy calls every addon in its chain for every event, nested ones too,
each through a generator walk, a context manager and a coroutine; a flow
sees a dozen events and a gateway chain holds about 50 addons, so most of
mitmproxy's time per request went to calling hooks that do nothing. Two
things here take that away, and each is measured in `make bench`:

- `Stages` runs quotio's own addons as one: each hook is a precomputed
  tuple of the stages that define it, called in the order they are listed
  (the order that matters lives in code, in addons/quotio.py). A stage that
  raises is logged and the next one still runs, as under mitmproxy's own
  dispatch.
- `FastDispatch` replaces the addon manager's `trigger_event` for every
  event but the lifecycle ones (load, configure, running, done): an addon
  without a hook for the event is not called at all, and a built-in addon
  whose feature is off (map_local empty, anticache off, no server replay,
  ...) is not called for flow events. Those features still work the moment
  a user turns them on: the check reads the addon's own state on each event.
  `quotio_fast_dispatch=false` restores mitmproxy's dispatch.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

from mitmproxy import ctx, exceptions, hooks
from mitmproxy.addonmanager import AddonManager, safecall, traverse

log = logging.getLogger("quotio")

LIFECYCLE = frozenset({"load", "configure", "running", "done"})


class Stages:
    """quotio's addons behind one chain entry; see the module docstring."""

    def __init__(self, stages: Sequence[object]):
        self.stages = tuple(stages)
        for name in hooks.all_hooks:
            calls = tuple(f for s in self.stages if callable(f := getattr(s, name, None)))
            if calls:
                setattr(self, name, _hook(name, calls))

    def __repr__(self) -> str:
        return f"Stages({', '.join(type(s).__name__ for s in self.stages)})"


def _hook(name: str, calls: tuple[Callable[..., Any], ...]) -> Callable[..., Any]:
    if any(inspect.iscoroutinefunction(f) for f in calls):

        async def run_async(*args: Any) -> None:
            for f in calls:
                try:
                    res = f(*args)
                    if res is not None and inspect.isawaitable(res):
                        await res
                except (exceptions.AddonHalt, exceptions.OptionsError):
                    raise
                except Exception:
                    log.exception("quotio: %s.%s failed", type(getattr(f, "__self__", f)).__name__, name)

        run_async.__name__ = name
        return run_async

    def run(*args: Any) -> None:
        for f in calls:
            try:
                f(*args)
            except (exceptions.AddonHalt, exceptions.OptionsError):
                raise
            except Exception:
                log.exception("quotio: %s.%s failed", type(getattr(f, "__self__", f)).__name__, name)

    run.__name__ = name
    return run


# Built-in addons that do nothing while their feature is off: class name -> "off" test.
# The test reads the addon's own state (what its `configure` parsed) or an option.
_IDLE: dict[str, Callable[[Any], bool]] = {
    "AntiCache": lambda a: not ctx.options.anticache,
    "AntiComp": lambda a: not ctx.options.anticomp,
    "BlockList": lambda a: not a.items,
    "MapRemote": lambda a: not a.replacements,
    "MapLocal": lambda a: not a.replacements,
    "ModifyBody": lambda a: not a.replacements,
    "ModifyHeaders": lambda a: not a.replacements,
    "StickyAuth": lambda a: not a.flt,
    "StickyCookie": lambda a: not a.flt,
    "ProxyAuth": lambda a: not a.validator,
    "UpstreamAuth": lambda a: not a.auth,
    "ServerPlayback": lambda a: not a.flowmap,
    "Save": lambda a: not a.stream,
    "SaveHar": lambda a: not ctx.options.hardump,
    "Dumper": lambda a: ctx.options.flow_detail == 0,
}


def _idle_test(addon: object) -> Callable[[Any], bool] | None:
    cls = type(addon)
    # Only mitmproxy's own classes: a user's addon of the same name is always called.
    if not cls.__module__.startswith("mitmproxy."):
        return None
    return _IDLE.get(cls.__name__)


class FastDispatch:
    """Installed as `manager.trigger_event`; `uninstall` puts mitmproxy's back."""

    def __init__(self, manager: AddonManager):
        self.manager = manager
        self._original = manager.trigger_event
        self._chain: tuple = ()
        # Event name -> (addon, idle test or None) for the chain entries that handle it.
        self._by_event: dict[str, tuple[tuple[object, Callable[[Any], bool] | None], ...]] = {}

    def install(self) -> None:
        self.manager.trigger_event = self

    def uninstall(self) -> None:
        if self.manager.__dict__.get("trigger_event") is self:
            del self.manager.trigger_event

    def _entries(self, name: str):
        chain = tuple(self.manager.chain)
        if chain != self._chain:
            # Addons were added or removed, or a script reloaded: look again.
            self._chain, self._by_event = chain, {}
        entries = self._by_event.get(name)
        if entries is None:
            entries = self._by_event[name] = tuple(
                (a, _idle_test(a)) for a in chain if _handles(a, name)
            )
        return entries

    async def __call__(self, event: hooks.Hook) -> None:
        name = event.name
        if name in LIFECYCLE:
            await self._original(event)
            return
        invoke = self.manager.invoke_addon
        for addon, idle in self._entries(name):
            if idle is not None and idle(addon):
                continue
            try:
                with safecall():
                    await invoke(addon, event)
            except exceptions.AddonHalt:
                return


def _handles(addon: object, name: str) -> bool:
    """Whether `addon` or one nested in it has a hook `name` (nested script addons may change
    on reload, so an entry with children is always called)."""
    if hasattr(addon, "addons"):
        return True
    return any(callable(getattr(a, name, None)) for a in traverse([addon]))


class Dispatcher:
    """Puts FastDispatch in place while the gateway runs (option `quotio_fast_dispatch`)."""

    def __init__(self) -> None:
        self._fast: FastDispatch | None = None

    def load(self, loader) -> None:
        loader.add_option(
            "quotio_fast_dispatch", bool, True,
            "Call only the addons that act on an event (see addons/dispatch.py); off: mitmproxy's own dispatch.",
        )  # fmt: skip

    def configure(self, updated: set[str]) -> None:
        if "quotio_fast_dispatch" not in updated:
            return
        if ctx.options.quotio_fast_dispatch:
            if self._fast is None:
                self._fast = FastDispatch(ctx.master.addons)
                self._fast.install()
        else:
            self.done()

    def done(self) -> None:
        if self._fast is not None:
            self._fast.uninstall()
            self._fast = None
