"""OpenAI Codex: ChatGPT OAuth accounts (the Codex backend, Responses) and codex-api-key entries (platform keys, Chat Completions).

spec.py   what the gateway knows of it (the `Provider` in providers/__init__.py's list)
call.py   how its upstream is called
login.py  how it logs in and stays logged in
quota.py  what its quota fetch reads
"""
