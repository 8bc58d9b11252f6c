"""benefits."""
