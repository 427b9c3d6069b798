"""mitmproxy addons of the quotio gateway: thin adapters over quotio_core."""
