"""The gateway's own pages and routes: management API, dashboard, metrics, usage reports.

management.py     `/v0/management/*` (CLIProxyAPI's routes and ours), answered as `Reply`s
oauth.py          the login routes (`*-auth-url`, device codes, callbacks, uploads)
usage.py          `/v0/management/usage` and quotas
usage_report.py   usage_tables.py  the same figures for `quotio usage` and the dashboard
dashboard.py      the page and its static/ files
metrics.py        Prometheus `/metrics`
logs.py           the in-memory log tail management serves (secrets redacted)
lockout.py        wrong management keys lock a client out for a while
replies.py        Reply and error bodies;  state.py  what outlives a config reload
facade.py         GatewayView: all of the gateway this room may see

The room's rules: nothing outside admin/ (but the CLI) imports it, and it
sees the gateway only through `GatewayView`, never `quotio_core.gateway`.
"""
