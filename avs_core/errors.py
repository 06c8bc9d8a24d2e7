"""Exception types raised by avs_core: callers catch these, never bare library errors."""


class AVSError(Exception):
    """Base class for every error avs_core raises on purpose."""


class AssetError(AVSError):
    """A model or data file is missing, unreadable or fails its checksum."""


class InputError(AVSError):
    """An image, audio buffer, video or file given by the caller is unusable."""


class ConfigError(AVSError):
    """A configuration value is missing or invalid."""
