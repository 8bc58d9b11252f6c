"""Errors the CLI turns into a one-line reason and a non-zero exit code."""


class LoyaltyError(Exception):
    """Base class for user-facing errors (bad input, missing data, unusable configuration)."""


class ContractError(LoyaltyError):
    """Input tables do not satisfy the data contract."""


class ConfigError(LoyaltyError):
    """A configuration file is invalid; the message names the key."""


class MissingDataError(LoyaltyError):
    """A capability needs a table or column the data set does not have."""
