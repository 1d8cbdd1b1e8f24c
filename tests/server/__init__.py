"""Tests under a real ASGI server (uvicorn or gunicorn in a thread or a process): streams,
body limits, file streaming and fan-out across processes."""
