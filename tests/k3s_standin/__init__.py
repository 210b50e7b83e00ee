"""A k3s stand-in for the lab (NOT k3s), its release builder and a mirror server: see k3s.py."""
