"""The associative-memory maths, free of any model family.

* :mod:`.stats`: streaming second moments of keys and per-unit value statistics;
* :mod:`.directions`: context directions ``D`` from keys and the second moment;
* :mod:`.update`: the constrained update ``W1 = W0 + Λ Dᵀ`` along the input axis;
* :mod:`.solvers`: ways to choose ``Λ`` (and unconstrained baselines), in a registry.
"""
