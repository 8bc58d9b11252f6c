"""The ``loyalty`` command line. Each command group lives in its own module; heavy libraries are
imported inside commands so ``loyalty --help`` stays fast."""

from loyalty_ml.cli.main import app

__all__ = ["app"]
