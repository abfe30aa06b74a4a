"""On-the-fly degradations beyond the fixed resizes of :mod:`srlab.imaging.resize`: Real-ESRGAN's
second-order pipeline (``kernels`` the blur kernels, ``ops`` the image operations, ``pipeline`` the
options, the per-sample parameters and the batch function)."""
