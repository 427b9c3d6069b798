"""The pool: which accounts and keys exist, which may serve now, and which one does.

credentials.py  a Credential from a config entry or an auth file (the provider's own parsing)
authstore.py    the auth dir: scanning, safe names, writes (temp file, rename, 0600)
routing.py      model name -> the credentials that can serve it (and the name to send)
selector.py     round-robin / fill-first among candidates
affinity.py     a session kept on one account (and thinking signatures remembered per session)
cooldown.py     what a failed answer means for its credential (`decide`, clock injected), persisted
breaker.py      circuit breakers per credential and per upstream host
quota.py        each account's quota windows, polled in the background

The room's rules: the pool knows providers only through the
`quotio_core.providers` list (never a provider's own package), and never
imports admin/ or the gateway. What a status means for retrying is
`quotio_core.retry`'s, not the pool's.
"""
