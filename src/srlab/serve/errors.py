"""The one error the API raises: an HTTP status and a one-line message, answered as ``{"error": ...}``."""

from __future__ import annotations

__all__ = ["ApiError"]


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message
