"""Order books: L2 (market by price, MBP-10) and L3 (market by order, Databento MBO), with crossed-book detection.

MBO events come from :func:`propdesk.data.loaders.load_mbo`.
"""

from propdesk.data.book.l2 import PRICE_SCALE, L2Book, from_fixed, to_fixed
from propdesk.data.book.l3 import F_SNAPSHOT, BookSample, L3Book, replay_mbo, sample_first_per_second
from propdesk.data.loaders.dbn import F_LAST

__all__ = [
    "F_LAST",
    "F_SNAPSHOT",
    "PRICE_SCALE",
    "BookSample",
    "L2Book",
    "L3Book",
    "from_fixed",
    "replay_mbo",
    "sample_first_per_second",
    "to_fixed",
]
