"""The feedback loop's statistics, as a pure library: online decisions between model versions
(:mod:`~shoprec.loop.intervals`, :mod:`~shoprec.loop.sequential`), exploration and off-policy
estimates from logged impressions.

Layer 5: imports data, text, models and pipeline only; the service calls it, never the reverse.
"""
