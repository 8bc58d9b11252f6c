"""loyalty-ml."""
