"""Factories and small constructs shared by the stacks.

(Not named `constructs`: run from infra/, such a folder would shadow the `constructs` library.)
"""
