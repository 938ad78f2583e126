"""The wire contract: pydantic models following the CAMARA schemas (location-retrieval v0.5,
location-verification v3.0, population-density-data v0.3, CAMARA_common) and the project's own resources."""

from __future__ import annotations

import datetime as dt
from ipaddress import IPv4Address, IPv6Address
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

PHONE = r"^\+[1-9][0-9]{4,14}$"
XCORRELATOR = r"^[a-zA-Z0-9-_:;.\/<>{}]{0,256}$"


class Point(BaseModel):
    latitude: float = Field(ge=-90, le=90, description="Latitude component of a location")
    longitude: float = Field(ge=-180, le=180, description="Longitude component of location")


class Circle(BaseModel):
    areaType: Literal["CIRCLE"]
    center: Point
    radius: float = Field(ge=1, description="Distance from the center in meters")


class Polygon(BaseModel):
    areaType: Literal["POLYGON"]
    boundary: list[Point] = Field(min_length=3, max_length=15)


Area = Annotated[Circle | Polygon, Field(discriminator="areaType")]


class DeviceIpv4Addr(BaseModel):
    publicAddress: IPv4Address
    privateAddress: IPv4Address | None = None
    publicPort: int | None = Field(default=None, ge=0, le=65535)

    @model_validator(mode="after")
    def _one_more(self):
        if self.privateAddress is None and self.publicPort is None:
            raise ValueError("ipv4Address needs privateAddress or publicPort besides publicAddress")
        return self


class Device(BaseModel):
    """CAMARA Device: at least one identifier. This server resolves ``phoneNumber`` only."""
    phoneNumber: str | None = Field(default=None, pattern=PHONE)
    networkAccessIdentifier: str | None = None
    ipv4Address: DeviceIpv4Addr | None = None
    ipv6Address: IPv6Address | None = None

    @model_validator(mode="after")
    def _at_least_one(self):
        if not any(v is not None for v in (self.phoneNumber, self.networkAccessIdentifier, self.ipv4Address,
                                           self.ipv6Address)):
            raise ValueError("device needs at least one identifier")
        return self


class RetrievalLocationRequest(BaseModel):
    device: Device | None = None
    maxAge: int | None = Field(default=None, ge=0, description="Seconds; absent: any age, 0: a fresh location")
    maxSurface: int | None = Field(default=None, ge=1, description="Square meters")


class CircleOut(BaseModel):
    areaType: Literal["CIRCLE"] = "CIRCLE"
    center: Point
    radius: float = Field(ge=1)


class PolygonOut(BaseModel):
    areaType: Literal["POLYGON"] = "POLYGON"
    boundary: list[Point] = Field(min_length=3, max_length=15)


class Location(BaseModel):
    lastLocationTime: AwareDatetime
    area: CircleOut | PolygonOut


class VerifyLocationRequest(BaseModel):
    device: Device | None = None
    area: Area
    maxAge: int | None = Field(default=None, ge=0)


class VerifyLocationResponse(BaseModel):
    verificationResult: Literal["TRUE", "FALSE", "PARTIAL"]
    lastLocationTime: AwareDatetime
    matchRate: int | None = Field(default=None, ge=1, le=99)


class DensityPolygon(BaseModel):
    areaType: Literal["POLYGON"]
    boundary: list[Point] = Field(min_length=3, max_length=15)


class SinkCredential(BaseModel):
    model_config = ConfigDict(extra="allow")
    credentialType: Literal["PLAIN", "ACCESSTOKEN", "REFRESHTOKEN"]


class PopulationDensityRequest(BaseModel):
    area: DensityPolygon
    startTime: AwareDatetime
    endTime: AwareDatetime
    precision: int = Field(default=7, ge=1, le=12, description="Geohash length of the response cells")
    sink: str | None = Field(default=None, pattern=r"^https:\/\/.+$")
    sinkCredential: SinkCredential | None = None


class CellPopulationDensityData(BaseModel):
    geohash: str
    dataType: Literal["NO_DATA", "LOW_DENSITY", "DENSITY_ESTIMATION"]
    maxPplDensity: int | None = None
    minPplDensity: int | None = None
    pplDensity: int | None = None


class TimedPopulationDensityData(BaseModel):
    startTime: AwareDatetime
    endTime: AwareDatetime
    cellPopulationDensityData: list[CellPopulationDensityData] = Field(min_length=1)


class PopulationDensityResponse(BaseModel):
    timedPopulationDensityData: list[TimedPopulationDensityData]
    status: Literal["SUPPORTED_AREA", "PART_OF_AREA_NOT_SUPPORTED", "AREA_NOT_SUPPORTED", "OPERATION_NOT_COMPLETED"]
    statusInfo: str | None = None


# -- the platform's own resources ---------------------------------------------------------------------

class Token(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    scope: str


class NpsFigure(BaseModel):
    dimension: str
    segment: str
    subscribers: int
    nps: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_promoter: float | None = None
    p_detractor: float | None = None
    level: str | None = None


class NpsList(BaseModel):
    asOf: dt.date | None
    minGroupSize: int
    items: list[NpsFigure]
    suppressed: int = Field(description="segments left out: fewer subscribers than the minimum group size")


class DayExperience(BaseModel):
    day: dt.date
    sessions_total: int | None = None
    cei: float | None = None
    cei_web: float | None = None
    cei_video: float | None = None
    cei_voice: float | None = None
    cei_gaming: float | None = None
    cei_social: float | None = None
    cei_file_transfer: float | None = None


class SubscriberExperience(BaseModel):
    subscriberId: str = Field(description="pseudonymous id")
    asOf: dt.date | None = None
    npsClass: str | None = Field(default=None, description="predicted class: promoter, passive or detractor")
    pPromoter: float | None = None
    pPassive: float | None = None
    pDetractor: float | None = None
    expectedScore: float | None = None
    riskFlag: bool | None = None
    topNetworkDriver: str | None = None
    networkDrivers: str | None = None
    grid: str | None = None
    days: list[DayExperience]


class ServiceUse(BaseModel):
    service: str
    sessions: int
    volumeMb: float
    days: int


class UserPreferences(BaseModel):
    preferredServices: list[ServiceUse]
    dataUsageMbPerDay: float | None = None
    deviceCapability: str
    deviceVendor: str
    plan: str


class PreferencesRequest(BaseModel):
    device: Device | None = None


class SvcExperience(BaseModel):
    mos: float = Field(ge=1, le=5)
    upperRange: float = Field(ge=1, le=5)
    lowerRange: float = Field(ge=1, le=5)


class NetworkArea(BaseModel):
    h3Cells: list[str]


class ServiceExperienceInfo(BaseModel):
    """After TS 29.520 ServiceExperienceInfo (NWDAF Nnwdaf_AnalyticsInfo, event SERVICE_EXPERIENCE)."""
    appId: str
    srvExpcType: Literal["VOICE", "VIDEO", "OTHER"]
    svcExprc: SvcExperience
    svcExprcVariance: float
    ratio: int = Field(ge=0, le=100, description="percentage of UEs whose MOS lies in [lowerRange, upperRange]")
    ueCount: int
    networkArea: NetworkArea


class ServiceExperienceResponse(BaseModel):
    event: Literal["SERVICE_EXPERIENCE"] = "SERVICE_EXPERIENCE"
    start: dt.date
    end: dt.date
    minGroupSize: int
    serviceExperienceInfos: list[ServiceExperienceInfo]


class Episode(BaseModel):
    model_config = ConfigDict(extra="allow")
    episode_id: str
    kind: str | None = None
    start_time: AwareDatetime | None = None
    end_time: AwareDatetime | None = None
    cause: str | None = None
    confidence: float | None = None


class EpisodeList(BaseModel):
    minGroupSize: int
    items: list[dict]


class InsightTable(BaseModel):
    name: str
    rows: int
    columns: list[str]


class InsightRows(BaseModel):
    name: str
    minGroupSize: int
    suppressed: int
    rows: list[dict]


class InsightDocument(BaseModel):
    name: str
    minGroupSize: int
    suppressed: int = Field(description="objects left out: a subscriber count under the minimum group size")
    document: Any
