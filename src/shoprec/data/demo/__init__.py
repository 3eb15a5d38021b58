"""A generated demo shop whose planted structure is known (see :mod:`shoprec.data.demo.shop`).

>>> from shoprec.data.demo import generate_demo_shop
>>> shop = generate_demo_shop(seed=7)          # doctest: +SKIP
>>> dataset = shop.to_dataset()                # doctest: +SKIP
"""

from shoprec.data.demo.shop import PRESETS, DemoShop, generate_demo_shop, generate_preset

__all__ = ["PRESETS", "DemoShop", "generate_demo_shop", "generate_preset"]
