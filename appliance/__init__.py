"""gcsguard: network-isolation verification appliance for drone ground stations."""
__version__ = "0.1.0"
