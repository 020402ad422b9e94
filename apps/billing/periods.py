"""Months in an organization's time zone."""

from datetime import date, datetime, time, timedelta

from apps.tenancy.models import Organization


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(period: date) -> date:
    return (period.replace(day=28) + timedelta(days=4)).replace(day=1)


def period_bounds(*, organization: Organization, period: date) -> tuple[datetime, datetime]:
    """[start, end) of a month in the organization's time zone, as absolute times."""
    tz = organization.tz
    return (
        datetime.combine(period, time.min, tzinfo=tz),
        datetime.combine(next_month(period), time.min, tzinfo=tz),
    )
