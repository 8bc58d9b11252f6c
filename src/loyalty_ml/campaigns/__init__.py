"""Campaigns: the at-risk list builder and the contact log it records into."""

from loyalty_ml.campaigns.contact_log import (
    BuiltCampaign,
    CampaignConflict,
    CampaignNotFound,
    CampaignResult,
    ContactLog,
    ContactRow,
    ContactView,
    open_contact_log,
)

__all__ = [
    "BuiltCampaign",
    "CampaignConflict",
    "CampaignNotFound",
    "CampaignResult",
    "ContactLog",
    "ContactRow",
    "ContactView",
    "open_contact_log",
]
