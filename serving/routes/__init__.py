"""HTTP routes: thin handlers (load, authorize, call the domain function)."""
