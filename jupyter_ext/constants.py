"""Constants shared by every part of lens. No imports: any module may import this one.

Dollar figures are NOT here: every price lives in the price snapshot
(``jupyter_ext/costs/data/prices.json``, or the file ``lens prices refresh`` wrote),
read through one ``jupyter_ext.costs.catalog.PriceCatalog``.
"""

# S3 storage classes an archive may use (the order is the one tables show).
STORAGE_CLASSES = (
    "STANDARD",
    "STANDARD_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
    "GLACIER",
    "DEEP_ARCHIVE",
)
# Classes whose objects must be thawed (RestoreObject) before a GET.
COLD_CLASSES = ("GLACIER", "DEEP_ARCHIVE")

# Glacier retrieval tiers: lens's names (CLI, magics, REST) -> the S3 API's names
# (also the keys of the snapshot's ``s3.<class>.restore`` tables).
RETRIEVAL_TIERS = ("bulk", "standard", "expedited")
TIER_NAMES = {"bulk": "Bulk", "standard": "Standard", "expedited": "Expedited"}
DEFAULT_TIER = "bulk"

# Ledger categories: what a charge is for.
CATEGORIES = ("servers", "dask", "jobs", "storage")
SERVERS, DASK, JOBS, STORAGE = CATEGORIES

# Archive packs: the default target size of one pack object (ArchiveEngine.pack_size).
DEFAULT_PACK_SIZE = 16 * 2**20

# Units.
MICRO = 1_000_000  # micro-dollars per dollar
GIB = 2**30  # AWS bills a "GB" of storage as 2**30 bytes
HOURS_PER_MONTH = 730  # AWS's month for per-month prices
