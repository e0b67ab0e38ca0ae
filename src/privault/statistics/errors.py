"""Why a statistics release is refused (P3.10)."""

from __future__ import annotations

from privault.errors import Forbidden, InvalidInput, NotFound


class StatisticsRefused(Forbidden):
    code = "statistics_refused"


class NotStatisticsRecipient(StatisticsRefused):
    """Only a recipient of kind statistics in the policy file receives a release."""

    code = "not_statistics_recipient"


class ReleaseDisabled(StatisticsRefused):
    code = "release_disabled"


class CategoryNotForStatistics(StatisticsRefused):
    """The release reads a category the policy's statistics purpose may not use."""

    code = "category_not_for_statistics"


class UnknownRelease(NotFound):
    code = "unknown_release"


class InvalidRelease(InvalidInput):
    code = "invalid_release"
