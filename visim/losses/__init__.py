"""Built-in losses, registered through the visim hooks (see hookspecs.py)."""
