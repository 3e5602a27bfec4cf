"""The example worlds: tenants and their customers' records, loaded from examples/."""
