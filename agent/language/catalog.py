"""The services inventory (``catalog.yaml``): business processes, their expected volume
and value, and the services, applications and infrastructure each maps to."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from agent.language.fields import StrictModel, error_at

__all__ = ["BusinessProcess", "Catalog", "Volume"]

_ID = r"^[a-z0-9][a-z0-9_-]*$"
_PEAK_SHARE = 0.8  # without explicit peak_hours, a profile's peak is >= 80% of its maximum


class Volume(StrictModel):
    """Expected transactions per hour: a flat number (with a peak) or a 24-value profile."""

    per_hour: float | list[float] = Field(
        description="A flat rate, or 24 values (hour 0 to 23, catalog timezone)"
    )
    peak_per_hour: float | None = Field(default=None, ge=0, description="Rate in peak hours")
    peak_hours: list[int] = Field(default_factory=list, description="Hours 0-23")

    @field_validator("per_hour")
    @classmethod
    def _profile(cls, value: float | list[float]) -> float | list[float]:
        values = value if isinstance(value, list) else [value]
        if isinstance(value, list) and len(value) != 24:
            raise ValueError(f"a daily profile needs 24 values (hours 0-23), got {len(value)}")
        if any(v < 0 for v in values):
            raise ValueError("transactions per hour cannot be negative")
        return value

    @field_validator("peak_hours")
    @classmethod
    def _hours(cls, value: list[int]) -> list[int]:
        for hour in value:
            if not 0 <= hour <= 23:
                raise ValueError(f"hours are 0-23, got {hour}")
        return value

    @model_validator(mode="after")
    def _peak_needs_hours(self) -> Volume:
        if self.peak_per_hour is not None and not self.peak_hours:
            raise ValueError("peak_per_hour needs peak_hours")
        return self

    def is_peak(self, hour: int) -> bool:
        if self.peak_hours:
            return hour in self.peak_hours
        if isinstance(self.per_hour, list):
            top = max(self.per_hour)
            return top > 0 and self.per_hour[hour] >= _PEAK_SHARE * top
        return False

    def expected(self, hour: int) -> float:
        if isinstance(self.per_hour, list):
            return self.per_hour[hour]
        if self.peak_per_hour is not None and hour in self.peak_hours:
            return self.peak_per_hour
        return self.per_hour


class BusinessProcess(StrictModel):
    id: str = Field(pattern=_ID, max_length=63)
    name: str
    owner: str = ""
    description: str = ""
    volume: Volume | None = None
    value_per_transaction: float | None = Field(default=None, ge=0)
    currency: str = "EUR"
    runbook_url: str | None = None
    services: list[str] = Field(default_factory=list)
    applications: list[str] = Field(default_factory=list)
    infrastructure: list[str] = Field(default_factory=list)


class Catalog(StrictModel):
    timezone: str = Field(default="UTC", description="IANA zone of the volume profiles' hours")
    business_processes: list[BusinessProcess] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value

    @model_validator(mode="after")
    def _unique(self) -> Catalog:
        seen: dict[str, int] = {}
        for index, process in enumerate(self.business_processes):
            if process.id in seen:
                raise error_at(
                    f"business process ids must be unique, {process.id!r} is also "
                    f"business_processes[{seen[process.id]}]",
                    "business_processes", index, "id",
                )  # fmt: skip
            seen[process.id] = index
        return self

    def process(self, process_id: str) -> BusinessProcess | None:
        return next((p for p in self.business_processes if p.id == process_id), None)

    def local_hour(self, unix_time: float) -> int:
        return datetime.fromtimestamp(unix_time, ZoneInfo(self.timezone)).hour
