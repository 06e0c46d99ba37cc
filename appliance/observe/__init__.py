"""Observation: who (device identity), which name (attribution), how much (flows), and evidence."""
