from harness.backends.base import Artifact, Backend, BackendOptions, Session, backend_names, get_backend

__all__ = ["Artifact", "Backend", "BackendOptions", "Session", "backend_names", "get_backend"]
