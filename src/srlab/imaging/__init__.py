"""Images as files and arrays: the bottom layer of srlab, importing nothing of srlab but its errors.

``io`` decodes and encodes image files safely (size limits, truncation, EXIF orientation, 16-bit, atomic
writes), with ``codecs16`` for the 16-bit colour PNG/TIFF Pillow lacks and ``arrays`` for the tensor and
PIL conversions; ``resize`` holds MATLAB's bicubic ``imresize``, the study's resize and the named
degradations, ``color`` the BT.601 colour conversions and ``files`` the one image lister that training,
evaluation and upscaling all use.
"""
