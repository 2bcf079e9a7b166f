"""lgerisk's version: one home that every module may import (the package face re-exports it)."""

__version__ = "0.1.0"
