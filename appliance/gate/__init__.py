"""The transparent TLS/HTTP gate: decides by SNI and Host without decrypting (mitmproxy)."""
