"""Data sets: the catalogue of known sets (``catalog``), finding them on disk (``find``), downloading them
(``fetch``), making the derived ones from their originals (``prepare``) and in-memory training sets
(``datasets``)."""
