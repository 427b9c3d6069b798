"""Google Gemini: gemini-api-key entries (the public API) and Gemini CLI OAuth accounts (Code Assist).

spec.py   what the gateway knows of it (the `Provider` in providers/__init__.py's list)
call.py   how its upstream is called
code_assist.py  how Gemini CLI accounts are called (Code Assist)
login.py  how it logs in and stays logged in
quota.py  what its quota fetch reads
"""
