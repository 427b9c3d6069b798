"""quotio gateway: `mitmdump -s addons/quotio.py` (or mitmweb) starts it on :8317.

The order of STAGES matters: each stage sees an event after the ones before
it, and a stage that answers a flow (client key refused, management route,
model list) leaves nothing for the ones after it to do. mitmproxy sees them
as one addon (`Stages`, addons/dispatch.py), which calls each hook's stages
in this order.
"""

import sys
from pathlib import Path

try:
    import addons.core  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from addons.clientauth import ClientAuth  # noqa: E402
from addons.clienterrors import ClientErrors  # noqa: E402
from addons.core import GatewayCore  # noqa: E402
from addons.dispatch import Dispatcher, Stages  # noqa: E402
from addons.meta import GatewayHolder  # noqa: E402
from addons.failover import Failover  # noqa: E402
from addons.fallthrough import Fallthrough  # noqa: E402
from addons.flowcap import FlowCap  # noqa: E402
from addons.housekeeping import Housekeeping  # noqa: E402
from addons.intake import Intake  # noqa: E402
from addons.keepalive import KeepAlive  # noqa: E402
from addons.listener import Listener  # noqa: E402
from addons.management import Management  # noqa: E402
from addons.models import Models  # noqa: E402
from addons.overhead import Overhead  # noqa: E402
from addons.recorder import Recorder  # noqa: E402
from addons.refresher import Refresher  # noqa: E402
from addons.router import Router  # noqa: E402
from addons.secretmask import SecretMask  # noqa: E402
from addons.streams import Streams  # noqa: E402
from addons.timeouts import Timeouts  # noqa: E402

_holder = GatewayHolder()

STAGES = (
    Dispatcher(),
    GatewayCore(_holder),
    Listener(_holder),
    Intake(_holder),
    ClientAuth(_holder),
    Management(_holder),
    Models(_holder),
    # Before Router: a failed answer is replaced before it is translated.
    Failover(_holder),
    Router(_holder),
    # After every addon that answers or routes a request: what is left unanswered gets a 500.
    Fallthrough(_holder),
    # After Router: only routed requests get a first-byte deadline.
    Timeouts(_holder),
    Streams(_holder),
    # After Streams: wraps the stream callable Streams (or translation) installed.
    KeepAlive(_holder),
    # Before Recorder (which ends the flow's state): answers an upstream's
    # connection failure in the client's own shape.
    ClientErrors(_holder),
    # After Router and Streams: its request hook sees the request as it leaves,
    # its response hooks the answer as it is passed on.
    Overhead(_holder),
    SecretMask(_holder),
    Recorder(_holder),
    Refresher(_holder),
    Housekeeping(_holder),
    FlowCap(_holder),
)

addons = [Stages(STAGES)]
