"""Optional rephrasing of explanation texts by an OpenAI-compatible chat endpoint.

Off by default: with ``base_url=None`` :meth:`LLMExplainer.rephrase` returns the template text of
:func:`~shoprec.pipeline.explain_text.render` and makes no network call. When on, it POSTs to
``{base_url}/chat/completions`` (OpenAI chat format; vLLM, Ollama, llama.cpp and hosted services
speak it) with a system prompt that allows rephrasing only, and a user message that holds ONLY the
explanation's facts (:func:`facts`: titles, shares, shared traits, co-purchase counts, source
names) - never the user id, the full history or anything else. Any failure (timeout, connection
error, non-200, malformed JSON, empty answer) falls back to the template text within
``timeout_s`` plus a small margin, and is counted in :attr:`LLMExplainer.outcomes`.

>>> explainer = LLMExplainer(LLMConfig(base_url="http://localhost:8000/v1", model="qwen2.5-7b"))  # doctest: +SKIP
>>> explainer.rephrase(explanation, "zh")                                                    # doctest: +SKIP
('您浏览过「Nordhaus 咖啡杯」，这款同系列的…', True)
"""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass

from shoprec.errors import ConfigError
from shoprec.pipeline.explain import Explanation
from shoprec.pipeline.explain_text import render, source_phrase

LANGUAGE_NAMES = {"en": "English", "zh": "Simplified Chinese"}

SYSTEM_PROMPT = (
    "You rewrite product-recommendation explanations for shoppers. You receive the facts of one "
    "explanation as JSON. Write one or two short, friendly sentences in {language} that state these "
    "facts and nothing else: do not add products, numbers, claims, prices or advice that are not in "
    "the JSON, and do not mention JSON, scores or models. Answer with the sentences only."
)


@dataclass
class LLMConfig:
    """Where and how to ask a chat model; ``base_url=None`` keeps rephrasing off."""

    base_url: str | None = None
    """Endpoint root, e.g. ``http://localhost:8000/v1``; None: templates only, no network."""
    model: str = "gpt-4o-mini"
    """Model name the endpoint serves."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the API key, read per request; unset: no Authorization header
    (local servers need none). The key itself never sits in a config file."""
    timeout_s: float = 2.0
    """Whole-request deadline in seconds; past it the template text is shown."""
    max_tokens: int = 120
    """Longest answer asked for."""
    temperature: float = 0.2
    """Low: rephrase, do not invent."""

    def __post_init__(self) -> None:
        if self.base_url is not None and not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"base_url must start with http:// or https://, got {self.base_url!r}",
                where="LLMConfig.base_url",
                fix="give the endpoint root such as http://localhost:8000/v1, or None to keep rephrasing off",
            )
        if not self.timeout_s > 0:
            raise ConfigError(f"timeout_s must be > 0, got {self.timeout_s!r}", where="LLMConfig.timeout_s")
        if not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ConfigError(f"max_tokens must be a whole number >= 1, got {self.max_tokens!r}", where="LLMConfig")


def facts(explanation: Explanation, lang: str = "en") -> dict:
    """The facts an LLM may see, the same the template text states: the item and its cited drivers
    by title with shares, shared traits, the driver most often bought with it and in how many
    orders, source phrases and the scenario. No ids, indices, user, or other history items."""
    cited = explanation.drivers[: explanation.cited]
    shared = explanation.shared
    return {
        "recommended_item": explanation.title,
        "scenario": explanation.scenario,
        "shopper_has_no_history": explanation.cold,
        "because_of": [{"title": d.title, "share": f"{round(d.share * 100)}%", "action": d.event} for d in cited],
        "shared_with_them": {
            "category": shared.category,
            "brand": shared.brand,
            "tags": list(shared.tags),
            "attributes": dict(shared.attributes),
        },
        "bought_together": [{"title": c.title, "orders": c.orders} for c in explanation.co_purchase[:1]],
        "suggested_by": [
            {"source": source_phrase(s.name, lang), "share": None if s.share is None else f"{round(s.share * 100)}%"}
            for s in explanation.sources
        ],
    }


class LLMExplainer:
    """Rephrases template explanations with a chat model, falling back to the template on any failure."""

    def __init__(self, config: LLMConfig | None = None) -> None:
        self.config = config or LLMConfig()
        self.outcomes: Counter[str] = Counter()
        """How each call ended: ``off``, ``llm``, ``timeout``, ``http_error``, ``connection_error``,
        ``malformed``, ``empty``."""

    @property
    def enabled(self) -> bool:
        return self.config.base_url is not None

    def rephrase(self, explanation: Explanation, lang: str = "en") -> tuple[str, bool]:
        """``(text, used_llm)``: the model's rephrasing, or the template text and False."""
        template = render(explanation, lang)  # also checks lang
        if not self.enabled:
            self.outcomes["off"] += 1
            return template, False
        result: dict[str, str] = {}
        worker = threading.Thread(target=self._ask, args=(self._payload(explanation, lang), result), daemon=True)
        worker.start()
        worker.join(self.config.timeout_s + 0.1)  # urllib's timeout is per socket call: enforce the deadline
        if worker.is_alive() or "outcome" not in result:
            self.outcomes["timeout"] += 1
            return template, False
        self.outcomes[result["outcome"]] += 1
        if result["outcome"] != "llm":
            return template, False
        return result["text"], True

    def _payload(self, explanation: Explanation, lang: str) -> dict:
        return {
            "model": self.config.model,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT.format(language=LANGUAGE_NAMES[lang])},
                {"role": "user", "content": json.dumps(facts(explanation, lang), ensure_ascii=False)},
            ],
            "max_tokens": self.config.max_tokens,
            "temperature": self.config.temperature,
        }

    def _ask(self, payload: dict, result: dict[str, str]) -> None:
        """POST the payload; put ``outcome`` (and ``text`` on success) into ``result``."""
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.config.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(
            self.config.base_url.rstrip("/") + "/chat/completions",
            data=json.dumps(payload, ensure_ascii=False).encode("utf-8"),
            headers=headers,
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError:
            result["outcome"] = "http_error"
            return
        except TimeoutError:
            result["outcome"] = "timeout"
            return
        except (urllib.error.URLError, OSError) as error:
            timed_out = isinstance(getattr(error, "reason", None), TimeoutError)
            result["outcome"] = "timeout" if timed_out else "connection_error"
            return
        result.update(_answer(body) if status == 200 else {"outcome": "http_error"})


def _answer(body: bytes) -> dict[str, str]:
    """``{"outcome": "llm", "text": ...}`` from a chat-completions body, or the failure outcome."""
    try:
        text = json.loads(body.decode("utf-8"))["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError, UnicodeDecodeError):
        return {"outcome": "malformed"}
    if not isinstance(text, str):
        return {"outcome": "malformed"}
    text = text.strip()
    return {"outcome": "llm", "text": text} if text else {"outcome": "empty"}
