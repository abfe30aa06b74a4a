"""Images as files and arrays: the bottom layer of srlab, importing nothing of srlab but its errors.

``io`` decodes and encodes image files safely (size limits, truncation, EXIF orientation, 16-bit, atomic
writes), ``resize`` holds MATLAB's bicubic ``imresize`` and the study's resize, ``color`` the BT.601 colour
conversions and ``files`` the one image lister that training, evaluation and upscaling all use.
"""
