"""Built-in data, registered through the visim hooks (see hookspecs.py)."""
