"""Google Vertex AI: service-account auth files (Gemini and Claude models) and vertex-api-key entries (express mode, Gemini).

spec.py   what the gateway knows of it (the `Provider` in providers/__init__.py's list)
call.py   how its upstream is called
login.py  how it logs in and stays logged in
"""
