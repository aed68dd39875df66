"""Reusable constructs and factories shared by the stacks."""
