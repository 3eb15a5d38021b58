"""A simulated shop that closes the feedback loop through the service's API.

Shoppers of a demo shop, whose latent tastes are known (:mod:`~shoprec.sim.world`), arrive day by
day, read their home feed from the service, click and buy by a position-biased click model on
their true utility (:mod:`~shoprec.sim.clicks`), and the events go back through ``POST
/v1/events``; a retraining policy trains a new version from the store each night
(:mod:`~shoprec.sim.loop`, :mod:`~shoprec.sim.retrain`). The click model's exact expected CTR of
any list is the truth that online statistics and off-policy estimates are judged against.
See docs/feedback-loop.md, "Simulated shop".
"""
