"""The appliance's network role: its interfaces, checked at start and watched."""
