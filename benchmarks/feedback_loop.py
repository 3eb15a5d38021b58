"""The feedback loop on a simulated shop: CTR per simulated day for (a) a model trained once,
(b) the nightly retraining loop, (c) the loop with exploration, on the same seeded visits.

    flock /work/coord/cpu.lock .venv/bin/python benchmarks/feedback_loop.py --days 14 --sessions 300

Writes benchmarks/results/feedback_loop.json (one row per policy and day: CTR with its 95% Wilson
interval, the click model's exact expected CTR of the lists served, the oracle's, versions served).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from shoprec.service.versions import train_version
from shoprec.sim.clicks import ClickModel, utility
from shoprec.sim.loop import Policy, own_retrain, run_policy
from shoprec.sim.world import build_world

RESULTS = Path(__file__).parent / "results" / "feedback_loop.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--sessions", type=int, default=300, help="visits per simulated day")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--users", type=int, default=1500)
    parser.add_argument("--explore", type=float, default=0.1, help="exploration share of policy (c)")
    parser.add_argument("--work", default="/tmp/shoprec-feedback-loop")
    parser.add_argument("--policies", default="once,loop,explore")
    args = parser.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    world = build_world(args.seed, args.items, args.users, sim_days=args.days)
    model = ClickModel(utility(world.users, world.catalog))
    began = time.perf_counter()
    cache = work / "vector-cache"
    first = train_version(
        world.base_dataset(), work / "first", evaluate=False, vector_cache=cache, crosscat_mode="graph"
    )
    print(f"v0001 trained in {time.perf_counter() - began:.1f} s", flush=True)
    policies = {
        "once": Policy("once"),
        "loop": Policy("loop", retrain=True),
        "explore": Policy("explore", retrain=True, settings={"explore_share": args.explore}),
    }
    rows = []
    for name in args.policies.split(","):
        days = run_policy(
            world,
            model,
            policies[name],
            first,
            work,
            args.days,
            args.sessions,
            seed=args.seed,
            retrain_step=own_retrain(cache),
            log=lambda line: print(line, flush=True),
        )
        rows += [d.row() for d in days]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1, default=str))
    for name in args.policies.split(","):
        mine = [r for r in rows if r["policy"] == name]
        shown, clicks = sum(r["shown"] for r in mine), sum(r["clicks"] for r in mine)
        expected = sum(r["expected_clicks"] for r in mine) / shown
        print(f"{name}: CTR {clicks / shown:.4f} over {shown} shown, expected {expected:.4f}")
    print(f"total {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
