"""Bundle recommendation: sets of products that belong together, chosen by combinatorial optimisation.

>>> from shoprec.bundles import BundleRecommender, recommend_bundle      # doctest: +SKIP
>>> rec = BundleRecommender().fit(dataset, item_vectors)                 # doctest: +SKIP
>>> recommend_bundle(rec, items=["P00007"], budget=120, max_size=3)      # doctest: +SKIP
"""

from shoprec.bundles.api import recommend_bundle
from shoprec.bundles.complements import ComplementConfig, ComplementModel
from shoprec.bundles.constraints import bundle_violations, compile_problem
from shoprec.bundles.explain import explain_bundle
from shoprec.bundles.objective import BundleConstraints, InfeasibleBundle, Instance
from shoprec.bundles.recommender import Anchor, Bundle, BundleConfig, BundleRecommender
from shoprec.bundles.solvers import SOLVERS, Solution, SolverConfig, solve

__all__ = ["Anchor", "Bundle", "BundleConfig", "BundleConstraints", "BundleRecommender", "ComplementConfig"]
__all__ += ["ComplementModel", "InfeasibleBundle", "Instance", "SOLVERS", "Solution", "SolverConfig"]
__all__ += ["bundle_violations", "compile_problem", "explain_bundle", "recommend_bundle", "solve"]
