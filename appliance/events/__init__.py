from .event import ACTIONS, SCHEMA_VERSION, Event, Stamp

__all__ = ["ACTIONS", "SCHEMA_VERSION", "Event", "Stamp"]
