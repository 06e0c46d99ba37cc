"""Egress enforcement: the nftables ruleset, its learned address sets, and fail-closed boot."""
