"""Model registry: which detector weights exist, where they come from and how to check them."""
