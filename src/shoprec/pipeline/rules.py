"""Business rules and rerankers: hard filters, boosts, MMR diversity and pinned slots.

A ranker has set :attr:`Candidates.score`; :meth:`Rules.apply` then, in this order,

1. **filters** (hard: a filtered item never appears, whatever its score): blocked ids, brands and
   title words, categories, price range, stock, and per user what they bought or saw;
2. **boosts** on the score: ``promoted`` items and long-tail items are raised by a multiple of the
   candidates' score spread (best minus worst finite score), so the setting means the same for
   any ranker's scale and a boost never lowers an item, whatever the sign of its score;
3. **sort** by the boosted score (ties: the ranker's score, then the candidate order);
4. **MMR** over the top ``mmr_window`` candidates when ``mmr_lambda`` is set, with the boosted
   score as relevance;
5. **pins** at their 0-based slots; a pin is shown even when no source proposed it, if it passes
   the filters (pins that a per-user filter removes are skipped and counted); a pin whose slot
   lies past the end of a short list goes last, after any pins with smaller slots;
6. **truncation** to ``k``.

Every step appends a counted note to the result's :attr:`Candidates.notes`. Configuration
mistakes are found when the rules load (:meth:`RulesConfig.validate`), not per request.

>>> config = RulesConfig.from_dict({"exclude_purchased": True, "pinned": {"SKU-1": 0}}, where="shop.toml: rules")
>>> rules = Rules(config, info, popularity_counts)          # doctest: +SKIP
>>> shown = rules.apply(candidates.sorted(), context, k=10)  # doctest: +SKIP
>>> shown.notes[-3:]                                         # doctest: +SKIP
['filters removed 3 of 40 candidates: 1 out of stock, 2 purchased', 'pinned 1 item at slot 0 (...)', ...]
"""

from __future__ import annotations

import numpy as np

from shoprec.errors import ConfigError, ModelError
from shoprec.pipeline.candidates import Candidates
from shoprec.pipeline.catalog import ItemInfo
from shoprec.pipeline.context import UserContext
from shoprec.pipeline.diversity import head_mask, mmr_positions
from shoprec.pipeline.filters import STATIC_REASONS, static_codes
from shoprec.pipeline.rules_config import RulesConfig

__all__ = ["REASONS", "Rules", "RulesConfig"]

REASONS = (*STATIC_REASONS, "purchased", "seen")
"""Filter reasons in the order a candidate is counted under (its first broken rule)."""
_PURCHASED, _SEEN = len(STATIC_REASONS) + 1, len(STATIC_REASONS) + 2


class Rules:
    """Configured rules over one catalogue; masks and the head/tail split are computed once.

    ``popularity_counts`` (n_items,) are interactions per item (needed for ``longtail_boost``);
    ``item_vectors`` (n_items, d) are the vectors MMR compares (needed for ``mmr_lambda``).
    Validation runs here, so a bad configuration fails at load; non-fatal findings (such as
    blocked ids missing from the catalogue) are kept in :attr:`warnings`.
    """

    def __init__(
        self,
        config: RulesConfig,
        info: ItemInfo,
        popularity_counts: np.ndarray | None = None,
        item_vectors: np.ndarray | None = None,
        *,
        where: str = "rules",
    ) -> None:
        self.config, self.info = config, info
        config.check(where)  # types first: the masks below assume them
        self.codes = static_codes(config, info)  # (n_items,) int8, 0 = allowed for everyone
        self.warnings = config.validate(info, where=where, codes=self.codes)
        self.tail = self._tail(popularity_counts, where)  # (n_items,) bool, or None when no boost
        self.vectors = self._vectors(item_vectors, where)
        index = {item: i for i, item in enumerate(info.item_id.astype(str).tolist())}
        slots = sorted((slot, index[item]) for item, slot in config.pinned.items())
        self.pin_slots = np.array([s for s, _ in slots], dtype=np.int64)
        self.pin_items = np.array([i for _, i in slots], dtype=np.int64)
        self.boost = np.zeros(info.n_items, dtype=np.float64)  # promoted boost, in score spreads
        self.promoted = np.zeros(info.n_items, dtype=bool)
        for item, value in config.promoted.items():
            self.boost[index[item]], self.promoted[index[item]] = value, True

    def _tail(self, counts: np.ndarray | None, where: str) -> np.ndarray | None:
        if self.config.longtail_boost == 0:
            return None
        if counts is None:
            raise ConfigError(
                "longtail_boost is set but no popularity counts were given",
                where=f"{where}.longtail_boost",
                fix="pass popularity_counts (interactions per item) to Rules, or set longtail_boost = 0",
            )
        counts = np.asarray(counts, dtype=np.float64).ravel()
        if len(counts) != self.info.n_items or np.any(counts < 0) or not np.all(np.isfinite(counts)):
            raise ModelError(
                f"popularity_counts must hold {self.info.n_items} finite non-negative counts, one per item; "
                f"got {len(counts)} values"
            )
        return ~head_mask(counts, self.config.head_share)

    def _vectors(self, vectors: np.ndarray | None, where: str) -> np.ndarray | None:
        if self.config.mmr_lambda is None:
            return None
        if vectors is None:
            raise ConfigError(
                "mmr_lambda is set but no item vectors were given",
                where=f"{where}.mmr_lambda",
                fix="pass item_vectors (n_items, d) to Rules, or remove mmr_lambda",
            )
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or len(vectors) != self.info.n_items:
            raise ModelError(f"item_vectors must have shape ({self.info.n_items}, d); got {vectors.shape}")
        return vectors

    # ------------------------------------------------------------------ per request
    def allowed_mask(self, context: UserContext) -> np.ndarray:
        """(n_items,) bool: items this user may be shown (static rules plus purchased/seen)."""
        allowed = self.codes == 0
        allowed[self._user_blocked(context)] = False
        return allowed

    def apply(self, candidates: Candidates, context: UserContext, k: int) -> Candidates:
        """Filter, boost, sort, diversify, pin and cut ``candidates`` to ``k`` (input untouched)."""
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
            raise ModelError(f"k must be a non-negative integer, got {k!r}")
        self._check_items(candidates.items, "candidates")
        out = self._filter(candidates, context)
        spread = _spread(out.score)
        pins, slots, out = self._pins(out, context)
        out = self._boosted(out, spread)
        out = self._diversified(out)
        out = self._pinned(out, pins, slots)
        if len(out) > k:
            out.notes.append(f"kept the top {k}: {len(out) - k} allowed candidates not shown")
            out = out.take(np.arange(k))
        return out

    def _check_items(self, items: np.ndarray, what: str) -> None:
        if len(items) and (items.min() < 0 or items.max() >= self.info.n_items):
            raise ModelError(f"{what} hold item indices outside [0, {self.info.n_items}) (the catalogue's size)")
        if what == "candidates" and len(np.unique(items)) != len(items):
            raise ModelError("candidates hold an item twice; merge proposals with Candidates.merge")

    def _user_blocked(self, context: UserContext) -> np.ndarray:
        """Item indices this user's own history rules out (purchased and/or seen)."""
        history = np.asarray(context.history, dtype=np.int64)
        self._check_items(history, "the user's history")
        if self.config.exclude_seen:
            return np.unique(history)
        if self.config.exclude_purchased:
            return context.purchased()
        return np.empty(0, dtype=np.int64)

    def _codes(self, items: np.ndarray, context: UserContext) -> np.ndarray:
        """Filter code per item: its first broken static rule, else purchased / seen, else 0."""
        codes = self.codes[items].copy()
        history = np.asarray(context.history, dtype=np.int64)
        self._check_items(history, "the user's history")
        if self.config.exclude_purchased:
            codes[(codes == 0) & np.isin(items, context.purchased())] = _PURCHASED
        if self.config.exclude_seen:
            codes[(codes == 0) & context.seen(items)] = _SEEN
        return codes

    def _filter(self, candidates: Candidates, context: UserContext) -> Candidates:
        codes = self._codes(candidates.items, context)
        out = candidates.take(codes == 0)
        if np.any(self.codes) or self.config.exclude_purchased or self.config.exclude_seen:
            counts = np.bincount(codes, minlength=len(REASONS) + 1)[1:]
            removed = ", ".join(f"{c} {r}" for c, r in zip(counts, REASONS, strict=True) if c)
            out.notes.append(
                f"filters removed {int(counts.sum())} of {len(candidates)} candidates"
                + (f": {removed}" if removed else "")
            )
        return out

    def _pins(self, out: Candidates, context: UserContext) -> tuple[Candidates, np.ndarray, Candidates]:
        """Rows of the pins this user may see (in slot order), their slots, and the other candidates.

        A pin that is a candidate keeps its row (and provenance); others get a row with NaN scores.
        """
        if len(self.pin_items) == 0:
            return out.take(np.empty(0, dtype=np.int64)), self.pin_slots, out
        codes = self._codes(self.pin_items, context)
        skipped = np.bincount(codes, minlength=len(REASONS) + 1)[1:]
        if skipped.sum():
            why = ", ".join(f"{c} {r}" for c, r in zip(skipped, REASONS, strict=True) if c)
            out.notes.append(f"skipped {int(skipped.sum())} of {len(self.pin_items)} pinned items: {why}")
        items, slots = self.pin_items[codes == 0], self.pin_slots[codes == 0]
        is_pin = np.isin(out.items, items)
        rows = _concat(out.take(is_pin), _unscored(items[~np.isin(items, out.items)], out.sources))
        rank_of = {item: r for r, item in enumerate(items.tolist())}
        order = np.argsort([rank_of[i] for i in rows.items.tolist()], kind="stable")
        return rows.take(order), slots, out.take(~is_pin)

    def _boosted(self, out: Candidates, spread: float) -> Candidates:
        """Promoted and long-tail boosts (additive, in score spreads), then a stable sort."""
        old = out.score.astype(np.float64)
        lift = self.boost[out.items]
        if self.config.promoted:
            n = int(np.count_nonzero(self.promoted[out.items]))
            out.notes.append(
                f"promoted {n} of {len(out)} candidates (boosts in units of the score spread {spread:.4g})"
            )
        if self.tail is not None:
            tail = self.tail[out.items]
            lift = lift + np.where(tail, self.config.longtail_boost, 0.0)
            out.notes.append(
                f"long-tail boost +{self.config.longtail_boost:g} x spread {spread:.4g} "
                f"for {int(tail.sum())} of {len(out)} candidates"
            )
        if np.any(lift):
            out.score = np.asarray(old + lift * spread, dtype=np.float32)
        order = np.lexsort((np.arange(len(out)), -_sort_key(old), -_sort_key(out.score)))
        return out.take(order)

    def _diversified(self, out: Candidates) -> Candidates:
        lambda_ = self.config.mmr_lambda
        if lambda_ is None or len(out) < 2:
            return out
        window = min(self.config.mmr_window, len(out))
        head = out.items[:window]
        picked = mmr_positions(out.score[:window], self.vectors[head], lambda_, window)
        moved = int(np.count_nonzero(picked != np.arange(window)))
        out = out.take(np.concatenate([picked, np.arange(window, len(out))]))
        out.notes.append(f"MMR (lambda {lambda_:g}) reordered the top {window} candidates: {moved} changed place")
        return out

    def _pinned(self, out: Candidates, pins: Candidates, slots: np.ndarray) -> Candidates:
        """Pins (in slot order) inserted at their slots, one after another; a pin whose slot lies past
        the end of the list so far goes last. So pins keep their slot order, and each lands exactly
        on its slot whenever the other items and the earlier pins reach that far."""
        if len(pins) == 0:
            return out
        total = len(out) + len(pins)
        places = np.minimum(slots, len(out) + np.arange(len(pins)))  # later inserts never shift earlier pins
        n_late = int(np.count_nonzero(places < slots))
        is_pin = np.zeros(total, dtype=bool)
        is_pin[places] = True
        order = np.empty(total, dtype=np.int64)
        order[~is_pin] = np.arange(len(out))
        order[places] = np.arange(len(out), total)
        added = int(np.count_nonzero(pins.source_ranks.max(axis=1, initial=-1) < 0))
        late = f"; {n_late} past the end of the list placed last" if n_late else ""
        merged = _concat(out, pins)
        where = f"slot{'s' if len(pins) > 1 else ''} {', '.join(str(s) for s in slots.tolist())}"
        merged.notes.append(
            f"pinned {len(pins)} item{'s' if len(pins) > 1 else ''} at {where} ({added} proposed by no source){late}"
        )
        return merged.take(order)


def _spread(score: np.ndarray) -> float:
    """Best minus worst finite score (float64, so huge float32 scores do not overflow); 1 if all equal."""
    finite = np.asarray(score, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    spread = float(finite.max() - finite.min()) if len(finite) else 0.0
    return spread if spread > 0 else 1.0


def _sort_key(score: np.ndarray) -> np.ndarray:
    """Scores for a descending sort with NaN (unscored) last."""
    return np.where(np.isnan(score), -np.inf, np.asarray(score, dtype=np.float64))


def _unscored(items: np.ndarray, sources: tuple[str, ...]) -> Candidates:
    """Rows for items no source proposed: NaN scores, rank -1."""
    n = len(items)
    return Candidates(
        np.asarray(items, dtype=np.int64),
        sources,
        np.full((n, len(sources)), np.nan, dtype=np.float32),
        np.full((n, len(sources)), -1, dtype=np.int32),
        np.full(n, np.nan, dtype=np.float32),
    )


def _concat(first: Candidates, second: Candidates) -> Candidates:
    """Rows of ``first`` then ``second`` (same sources); notes of ``first``."""
    return Candidates(
        np.concatenate([first.items, second.items]),
        first.sources,
        np.concatenate([first.source_scores, second.source_scores]),
        np.concatenate([first.source_ranks, second.source_ranks]),
        np.concatenate([first.score, second.score]),
        list(first.notes),
    )
