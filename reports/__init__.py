"""What analysts read: the report (terminal and HTML), policy comparisons, quick SQL."""
