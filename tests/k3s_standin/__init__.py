"""A k3s stand-in for the lab (NOT k3s), its release builder and a mirror server: see standin/__init__.py."""
