"""DuckDB projections: the fact tables and the analysts' views of SPEC §7."""
