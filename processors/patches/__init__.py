"""Changes to third-party internals, one module each, applied only by the entry points that need them.

Each module names the upstream version or issue it works around, and
``tests/unit/test_patches.py`` fails when the internals it replaces change shape.
"""
