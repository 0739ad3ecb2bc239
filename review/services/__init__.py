"""Use cases. Plain functions that take a Session, never commit, and raise ServiceError."""
