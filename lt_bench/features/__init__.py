"""Feature extraction and the HDF5 cache (format v2; version 1 caches are read too)."""

from .cache import (FORMAT, FORMAT_VERSION, IDENTITY_KEYS, READ_VERSIONS, AugViews, FeatureCache,
                    check_same_identity, classnames_hash, partial_path)
from .writing import root_attrs, write_cache, write_header

__all__ = ["FORMAT", "FORMAT_VERSION", "IDENTITY_KEYS", "READ_VERSIONS", "AugViews", "FeatureCache",
           "check_same_identity", "classnames_hash", "partial_path", "root_attrs", "write_cache", "write_header"]
