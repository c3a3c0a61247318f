"""Limits shared by the spec, the delta files and the session (one floor below them all)."""

#: Largest edit strength (the factor on the solved change ΔW).
MAX_STRENGTH = 10.0
#: Largest ``stats.seed`` (the statistics' random generator takes 32-bit seeds).
MAX_STATS_SEED = 2**32 - 1
