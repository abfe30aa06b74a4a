"""Data sets: the catalogue of known sets (``catalog``), finding them on disk (``find``), downloading them
(``fetch``) and in-memory training sets (``datasets``)."""
