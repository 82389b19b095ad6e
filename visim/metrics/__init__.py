"""Built-in metrics, registered through the visim hooks (see hookspecs.py)."""
