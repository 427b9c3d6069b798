"""Antigravity: CLIProxyAPI's accounts of Google's Antigravity; their files are read, not yet served.

spec.py   what the gateway knows of it
"""
