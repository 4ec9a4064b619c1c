"""Benchmark code, not product code: a cheap stand-in for the core's rules.

A benchmark run with `--stand-in` puts this directory on its children's PYTHONPATH, so that
every subject it starts (`rxgate worker` and the loops over the Processor alike) decides each
order with no rule checks at all: the order is still parsed and validated, the history read,
changed and written, the decision built and serialized, only `decide()` finds nothing. What
is left is the stream shell's own cost per record, so the run shows the shell's ceiling when
the core gets faster, not the core's speed.
"""
try:
    import rxgate.decide as _decide

    _decide.RULE_CATEGORIES = ()
except Exception:  # not a run that imports rxgate: nothing to stand in for
    pass
