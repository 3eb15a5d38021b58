"""The shoprec HTTP service: API, durable store, live state."""
