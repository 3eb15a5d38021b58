"""Lengths of time in seconds, the unit of every timestamp in shoprec.

This module sits below every layer (it imports nothing), so data, text, models, pipeline, eval
and the service all take the same constant from here.

>>> 7 * DAY
604800
"""

DAY = 86_400
"""Seconds in a day."""
