"""Product search: query understanding, lexical (BM25) and dense retrieval, typo tolerance, autocomplete
and their hybrid fusion with hard constraints. Sits beside :mod:`shoprec.pipeline`, below the service.

See ``docs/search.md`` for what exists and what is planned.
"""
