"""OpenAI-compatible upstreams (openai-compatibility entries; codex-api-key entries call them too).

spec.py   what the gateway knows of it
call.py   how its upstream is called
"""
