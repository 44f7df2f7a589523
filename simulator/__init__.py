"""A synthetic company whose customers respond to how they are served: `spoc simulate`."""
