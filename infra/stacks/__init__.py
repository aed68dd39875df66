"""The eight stacks of the app, one module each (see infra/README.md)."""
