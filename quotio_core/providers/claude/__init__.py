"""Anthropic Claude: Claude Code OAuth accounts and claude-api-key entries (Messages).

spec.py   what the gateway knows of it (the `Provider` in providers/__init__.py's list)
call.py   how its upstream is called
login.py  how it logs in and stays logged in
quota.py  what its quota fetch reads
"""
