"""The one definition of usage filters, shared by the usage list, the cost summary and the dashboard."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import django_filters
from django import forms
from django.db.models.fields.json import KeyTextTransform
from django.utils.dateparse import parse_date, parse_datetime

from apps.tenancy.models import CostCenter
from apps.tenancy.selectors import cost_center_descendant_ids
from apps.usage.models import PricingStatus, UsageRecord

DEFAULT_RANGE_DAYS = 30
# Far enough for any usage; keeps date arithmetic and time-zone conversion away from the calendar's edges.
MIN_YEAR, MAX_YEAR = 1970, 9000


def parse_moment(value: str, *, tz, end: bool) -> datetime:
    """A date in the organization's time zone (an end date is inclusive) or an RFC 3339 time."""
    try:
        day = parse_date(value) if len(value) == 10 else None
    except ValueError:
        raise forms.ValidationError(f"{value!r} is not a valid date.") from None
    if day is not None:
        moment = datetime.combine(day, time.min, tzinfo=tz)
    else:
        try:
            moment = parse_datetime(value.replace("z", "Z"))
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise forms.ValidationError("Expected a date (YYYY-MM-DD) or an RFC 3339 time with offset.")
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise forms.ValidationError(f"Must be between the years {MIN_YEAR} and {MAX_YEAR}.")
    return moment + timedelta(days=1) if day is not None and end else moment


def resolve_range(*, start: str | None, end: str | None, tz, today: date | None = None) -> tuple[datetime, datetime]:
    """[start, end) in absolute time; by default the last 30 days including today."""
    today = today or datetime.now(UTC).astimezone(tz).date()
    errors = {}
    start_at = end_at = None
    try:
        end_at = (
            parse_moment(end, tz=tz, end=True)
            if end
            else datetime.combine(today + timedelta(days=1), time.min, tzinfo=tz)
        )
    except forms.ValidationError as exc:
        errors["end"] = exc.messages
    try:
        if start:
            start_at = parse_moment(start, tz=tz, end=False)
        elif end_at is not None:
            start_at = datetime.combine(
                end_at.astimezone(tz).date() - timedelta(days=DEFAULT_RANGE_DAYS), time.min, tzinfo=tz
            )
    except forms.ValidationError as exc:
        errors["start"] = exc.messages
    if not errors and start_at >= end_at:
        errors["end"] = ["Must be after start."]
    if errors:
        raise forms.ValidationError(errors)
    return start_at, end_at


@dataclass(frozen=True)
class RollupQuery:
    first_day: date
    end_day: date  # exclusive
    cost_center_ids: set[int] | None
    equals: dict[str, str]


class UsageFilter(django_filters.FilterSet):
    """Filters of usage; the organization and the member's visible cost centers come from the view."""

    start = django_filters.CharFilter(
        method="filter_noop", help_text="Date (inclusive, organization's time zone) or RFC 3339 time."
    )
    end = django_filters.CharFilter(method="filter_noop", help_text="Date (inclusive) or RFC 3339 time (exclusive).")
    cost_center = django_filters.CharFilter(method="filter_cost_center", help_text="Code; includes its children.")
    model = django_filters.CharFilter()
    provider = django_filters.CharFilter()
    user_id = django_filters.CharFilter()
    feature = django_filters.CharFilter()
    environment = django_filters.CharFilter()
    tag = django_filters.CharFilter(method="filter_tag", help_text="key:value; repeat the parameter for several.")
    pricing_status = django_filters.ChoiceFilter(choices=PricingStatus.choices)

    class Meta:
        model = UsageRecord
        fields = ()

    def __init__(self, *args, organization, visible_cost_center_ids=None, **kwargs):
        self.organization = organization
        self.visible_cost_center_ids = visible_cost_center_ids
        super().__init__(*args, **kwargs)

    @property
    def qs(self):
        if not hasattr(self, "_qs"):
            queryset = super().qs
            if self.is_valid():
                self.start_at, self.end_at = self.range
                queryset = queryset.filter(timestamp__gte=self.start_at, timestamp__lt=self.end_at)
            if self.visible_cost_center_ids is not None:
                queryset = queryset.filter(cost_center_id__in=self.visible_cost_center_ids)
            self._qs = queryset
        return self._qs

    def is_valid(self):
        valid = super().is_valid()
        if valid and any(":" not in pair for pair in self._raw_tags()):
            self.form.add_error("tag", "Use key:value, e.g. tag=team:search.")
            return False
        if valid and not hasattr(self, "range"):
            try:
                self.range = resolve_range(
                    start=self.form.cleaned_data.get("start") or None,
                    end=self.form.cleaned_data.get("end") or None,
                    tz=self.organization.tz,
                )
            except forms.ValidationError as exc:
                for name, messages in exc.message_dict.items():
                    self.form.add_error(name, messages)
                return False
        return valid and hasattr(self, "range")

    def rollup_query(self) -> "RollupQuery | None":
        """The filters in the terms of the daily rollups, or None when they need the raw records
        (tags, pricing status, or a range that does not start and end at midnight in the organization's time zone).
        """
        if not self.is_valid() or self._raw_tags() or self.form.cleaned_data.get("pricing_status"):
            return None
        tz = self.organization.tz
        start, end = self.range[0].astimezone(tz), self.range[1].astimezone(tz)
        if start.time() != time.min or end.time() != time.min:
            return None
        cost_center_ids = self.visible_cost_center_ids
        code = self.form.cleaned_data.get("cost_center")
        if code:
            root = CostCenter.objects.for_org(self.organization).filter(code=code).values_list("id", flat=True).first()
            subtree = cost_center_descendant_ids(organization=self.organization, roots=[root]) if root else set()
            cost_center_ids = subtree if cost_center_ids is None else subtree & set(cost_center_ids)
        equals = {
            name: self.form.cleaned_data[name]
            for name in ("model", "provider", "user_id", "feature", "environment")
            if self.form.cleaned_data.get(name)
        }
        return RollupQuery(first_day=start.date(), end_day=end.date(), cost_center_ids=cost_center_ids, equals=equals)

    def _raw_tags(self) -> list[str]:
        values = self.data.getlist("tag") if hasattr(self.data, "getlist") else [self.data.get("tag", "")]
        return [v for v in values if v]

    def filter_noop(self, queryset, name, value):
        return queryset

    def filter_cost_center(self, queryset, name, value):
        root = CostCenter.objects.for_org(self.organization).filter(code=value).values_list("id", flat=True).first()
        if root is None:
            return queryset.none()
        ids = cost_center_descendant_ids(organization=self.organization, roots=[root])
        return queryset.filter(cost_center_id__in=ids)

    def filter_tag(self, queryset, name, value):
        for i, (key, tag_value) in enumerate(self.tag_pairs()):
            alias = f"tag_filter_{i}"
            queryset = queryset.alias(**{alias: KeyTextTransform(key, "tags")}).filter(**{alias: tag_value})
        return queryset

    def tag_pairs(self) -> list[tuple[str, str]]:
        return [tuple(v.split(":", 1)) for v in self._raw_tags()]
