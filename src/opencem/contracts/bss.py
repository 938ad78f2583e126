"""BSS tables: subscribers, their contracts, tariffs, NPS surveys and their invitations, the NPS tracker, care contacts /
complaints, port-outs."""

from .base import Check, Column, Table

CARE_CATEGORIES = (
    "coverage", "data_speed", "voice_quality", "device", "billing", "price", "other",
)

SUBSCRIBERS = Table(
    name="subscribers",
    family="BSS",
    description="One row per subscriber active at the start of the data window.",
    grain="subscriber",
    key=("subscriber_id",),
    columns=(
        Column("subscriber_id", "string", "-", "Operator's subscriber identifier; pseudonymised with a keyed hash at ingest"),
        Column("plan", "string", "-", "Tariff plan (the operator's own names)"),
        Column("arpu_monthly", "float64", "EUR/month", "Average revenue per user over the last 3 months", min=0, max=10000),
        Column("tenure_months", "int32", "months", "Months since activation at the start of the window", min=0, max=600),
        Column("device_model", "string", "-", "Handset model from the IMEI TAC"),
        Column("device_tac", "string", "-", "Type Allocation Code: the first 8 digits of the handset's IMEI (GSMA)",
               nullable=True, optional=True),
        Column("device_vendor", "string", "-", "Handset vendor"),
        Column("device_capability", "string", "-", "Best RAT the handset supports (the operator's own labels, e.g. 4G, 5G)"),
        Column("home_area", "string", "-", "District of the billing address"),
        Column("age_band", "string", "years", "Age band of the contract holder (the operator's own bands)"),
        Column("consent_location", "bool", "-", "Consents to third-party device-location APIs (CAMARA)"),
        Column("consent_preferences", "bool", "-", "Consents to sharing preferences through the user-preference API"),
        Column("consent_marketing", "bool", "-", "Consents to marketing contact"),
    ),
    checks=(Check("device_tac IS NULL OR regexp_full_match(device_tac, '[0-9]{8}')", "a TAC is 8 digits",
                  ("device_tac",)),),
)

SUBSCRIBER_CONTRACTS = Table(
    name="subscriber_contracts",
    family="BSS",
    description="Each subscriber's contract: its type, when it started and when its minimum term ends.",
    grain="subscriber x contract",
    key=("subscriber_id", "start_date"),
    columns=(
        Column("subscriber_id", "string", "-", "Whose contract"),
        Column("contract_type", "string", "-", "The operator's own contract types (e.g. prepaid, postpaid_24m, business)"),
        Column("start_date", "date", "-", "First day of the contract"),
        Column("commitment_end", "date", "-", "Last day of the minimum term; empty without one (prepaid, rolling)",
               nullable=True),
    ),
    checks=(Check("commitment_end IS NULL OR commitment_end >= start_date", "commitment ends before the contract starts",
                  ("commitment_end",)),),
)

TARIFFS = Table(
    name="tariffs",
    family="BSS",
    description="Tariff history: each plan's monthly price and the period it applied (a price change is a new row).",
    grain="plan x price period",
    key=("plan", "valid_from"),
    columns=(
        Column("plan", "string", "-", "Tariff plan, as in subscribers.plan"),
        Column("monthly_price", "float64", "EUR/month", "Monthly list price of the plan", min=0, max=10000),
        Column("valid_from", "date", "-", "First day the price applied"),
        Column("valid_to", "date", "-", "Last day the price applied; empty while it still applies", nullable=True),
    ),
    checks=(Check("valid_to IS NULL OR valid_to >= valid_from", "valid_to before valid_from", ("valid_from", "valid_to")),),
)

SURVEYS = Table(
    name="surveys",
    family="survey",
    description="Answers to the NPS question 'How likely are you to recommend ...' (0-10).",
    grain="survey answer",
    key=("survey_id",),
    partition_by="survey_time",
    columns=(
        Column("survey_id", "int64", "-", "Answer identifier"),
        Column("subscriber_id", "string", "-", "Who answered"),
        Column("survey_time", "timestamp", "UTC", "When the answer was given"),
        Column("channel", "string", "-", "Survey channel (the operator's own names, e.g. sms, email, ivr, app)"),
        Column("score", "int32", "0-10", "Likelihood to recommend; 9-10 promoter, 7-8 passive, 0-6 detractor", min=0, max=10),
        Column("reason", "string", "-", "The reason the customer gave for the score, coded or verbatim (the operator's own)",
               nullable=True, optional=True),
    ),
)

SURVEY_INVITATIONS = Table(
    name="survey_invitations",
    family="survey",
    description="Who was asked the NPS question, when and how; an answered invitation names its survey answer.",
    grain="survey invitation",
    key=("invitation_id",),
    partition_by="invite_time",
    columns=(
        Column("invitation_id", "int64", "-", "Invitation identifier"),
        Column("subscriber_id", "string", "-", "Who was asked"),
        Column("invite_time", "timestamp", "UTC", "When the invitation was sent"),
        Column("channel", "string", "-", "Survey channel"),
        Column("trigger", "string", "-", "Why this customer was asked: a relationship sample or after a care contact",
               known=("relationship", "after_care")),
        Column("survey_id", "int64", "-", "The answer it led to (surveys.survey_id); empty when not answered", nullable=True),
    ),
)

NPS_TRACKER = Table(
    name="nps_tracker",
    family="survey",
    description=("A representative relationship study (market-research tracker): each wave asks a random sample of "
                 "customers and follows up until most answer, so its NPS is the base's level."),
    grain="tracker respondent",
    key=("response_id",),
    columns=(
        Column("response_id", "int64", "-", "Response identifier"),
        Column("subscriber_id", "string", "-", "Who answered"),
        Column("wave_date", "date", "-", "The wave's sampling date"),
        Column("answer_time", "timestamp", "UTC", "When the answer was given"),
        Column("score", "int32", "0-10", "Likelihood to recommend", min=0, max=10),
    ),
)

CARE_CONTACTS = Table(
    name="care_contacts",
    family="BSS",
    description="Customer-care contacts; complaints are the contacts flagged is_complaint.",
    grain="care contact",
    key=("contact_id",),
    partition_by="contact_time",
    columns=(
        Column("contact_id", "int64", "-", "Contact identifier"),
        Column("subscriber_id", "string", "-", "Who contacted care"),
        Column("contact_time", "timestamp", "UTC", "When the contact was opened"),
        Column("channel", "string", "-", "Contact channel (the operator's own names, e.g. call_centre, app, shop, chat)"),
        Column("category", "string", "-", "Category the agent recorded", known=CARE_CATEGORIES),
        Column("is_complaint", "bool", "-", "True when logged as a complaint, false for an enquiry"),
        Column("resolved", "bool", "-", "Resolved at first contact"),
    ),
)

PORTOUTS = Table(
    name="portouts",
    family="BSS",
    description="Number port-out requests (churn to another operator).",
    grain="subscriber",
    key=("subscriber_id",),
    columns=(
        Column("subscriber_id", "string", "-", "Who left"),
        Column("portout_date", "date", "-", "Date the number was ported out"),
        Column("recipient_operator", "string", "-", "Operator the number moved to"),
    ),
)

TABLES = (SUBSCRIBERS, SUBSCRIBER_CONTRACTS, TARIFFS, SURVEYS, SURVEY_INVITATIONS, NPS_TRACKER, CARE_CONTACTS, PORTOUTS)
