"""Qwen Code: Qwen device-login accounts (Chat Completions on DashScope).

spec.py   what the gateway knows of it (the `Provider` in providers/__init__.py's list)
call.py   how its upstream is called
login.py  how it logs in and stays logged in
"""
