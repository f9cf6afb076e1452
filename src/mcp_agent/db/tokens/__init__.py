"""Bearer tokens of the REST API: values, and the stores that keep only their hashes."""
