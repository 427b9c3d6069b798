"""Test doubles for the gateway's upstream providers."""

from tests.fakes.upstreams import DEFAULT_REPLY, Captured, FakeUpstream, api_key_check, split_reply

__all__ = ["DEFAULT_REPLY", "Captured", "FakeUpstream", "api_key_check", "split_reply"]
