"""Process-level concerns of long-running drivers: the garbage-collection regime for a large,
long-lived heap, child processes that die with their parent, JSON logging.

Imports nothing of the project's other packages.
"""
