"""Stand-in for torchvision.transforms (see tests/stubs/README.md)."""
