"""Import target for plain ASGI servers: ``uvicorn loyalty_ml.serving.asgi:app``.

Building the app is cheap; the backend and keys load in its lifespan, once per worker.
"""

from loyalty_ml.serving.app import create_app

app = create_app()
