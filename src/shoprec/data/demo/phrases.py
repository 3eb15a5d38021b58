"""Sentences and bundles of the demo shop: review templates and complementary category sets."""

from __future__ import annotations

REVIEWS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "en": (
        (
            "Disappointed, the {noun} broke after a week.",
            "Poor {noun}, not as pictured.",
            "The {noun} arrived damaged and I sent it back.",
        ),
        (
            "Okay {noun} but nothing special.",
            "Decent {noun}, a bit smaller than expected.",
            "Average {noun}, does the job.",
        ),
        (
            "Great {noun}, exactly as described.",
            "Love this {noun}, would buy again.",
            "Excellent quality for the price.",
            "Fast delivery and great {noun}.",
        ),
    ),
    "zh": (
        ("很失望，{noun}用了一周就坏了。", "质量差，{noun}和图片不符。", "{noun}到货时已损坏，已退货。"),
        ("{noun}还可以，没有特别之处。", "{noun}不错，比预期小一点。", "质量一般，{noun}够用。"),
        (
            "{noun}很好，和描述一致。",
            "非常喜欢这款{noun}，会回购。",
            "性价比很高，质量很好。",
            "物流很快，{noun}很完美。",
        ),
    ),
}
"""Review sentences per language: (negative 1-2 stars, neutral 3, positive 4-5)."""

COMPLEMENTS: tuple[tuple[str, ...], ...] = (
    ("Digital Cameras", "Memory Cards", "Camera Bags", "Batteries"),
    ("Tea Sets", "Candles", "Mugs"),
    ("Cookware", "Cookbooks", "Coffee"),
    ("Yoga Mats", "Water Bottles", "T-Shirts", "Socks"),
    ("Running Shoes", "Socks", "Water Bottles", "Headphones"),
    ("Tents", "Travel Guides", "Solar Lights", "Water Bottles"),
    ("Remote Control Cars", "Batteries", "Chargers"),
    ("Headphones", "Chargers", "Batteries"),
    ("Picture Books", "Stuffed Animals", "Puzzles"),
    ("Board Games", "Candles", "Mugs"),
    ("Seeds", "Flower Pots", "Garden Tools", "Watering Cans"),
    ("Solar Lights", "Flower Pots", "Garden Tools"),
    ("Dresses", "Handbags", "Sunglasses", "Perfume"),
    ("Sunscreen", "Sunglasses", "Travel Guides"),
    ("Face Cream", "Perfume", "Lipstick", "Candles"),
    ("Novels", "Mugs", "Coffee", "Candles"),
    ("Dumbbells", "Yoga Mats", "Water Bottles"),
    ("Building Blocks", "Picture Books", "Batteries"),
    ("Pillows", "Candles", "Novels"),
    ("Shampoo", "Face Cream", "Sunscreen"),
)
"""Leaf categories bought together. A planted complement group takes one item from each of 2-4
leaves of one set, so its items always span different leaves (and often different tops)."""
