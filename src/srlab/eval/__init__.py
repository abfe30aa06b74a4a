"""Evaluation: protocols, metrics (perceptual ones in ``perceptual/``), the evaluation loop (``loop``), model
loading for evaluation (``models``), scoring folders made elsewhere (``folders``), shards and their merge
(``shard``, ``merge``) and the one results-table builder with its completeness rule (``results``).

``srlab eval`` and studies both go through this package. Importing it imports nothing heavy: the submodules
are imported by what needs them.
"""
