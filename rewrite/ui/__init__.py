"""The rewriting app: a FastAPI server (``server.py``) and a static front end (``static/``)."""
