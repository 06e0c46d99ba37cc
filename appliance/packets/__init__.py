"""Packets the kernel logged (NFLOG) turned into events."""
