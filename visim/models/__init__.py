"""Built-in models, registered through the visim hooks (see hookspecs.py)."""
