"""Feature extraction and the HDF5 cache (format v1)."""

from .cache import (FORMAT, FORMAT_VERSION, IDENTITY_KEYS, FeatureCache, check_same_identity,
                    classnames_hash, partial_path, root_attrs, write_cache, write_header)

__all__ = ["FORMAT", "FORMAT_VERSION", "IDENTITY_KEYS", "FeatureCache", "check_same_identity",
           "classnames_hash", "partial_path", "root_attrs", "write_cache", "write_header"]
