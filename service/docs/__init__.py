"""/docs: the contract rendered by Swagger UI, every asset served by the service itself (no CDN)."""
