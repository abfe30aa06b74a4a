"""Stand-in for torchvision, for importing spandrel in the tests only (see tests/stubs/README.md)."""

__version__ = "0.0.0+srlab-test-stub"
