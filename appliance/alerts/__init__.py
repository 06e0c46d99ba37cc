"""Alerts from the appliance itself: rules as data over events, and notifiers."""
