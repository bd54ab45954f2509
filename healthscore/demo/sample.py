"""A deterministic, realistic sample CRM: the demo's data, the tests' and the benchmarks' input.

Why it exists: HubSpot cannot be reached from the machines this project is built
and demonstrated on, yet the scoring engine, the sandbox and the dashboard all
need a CRM that looks like a real customer base: hundreds of CSMs' books of
business, messy property values, activity that thins out as an account goes
sour. `generate_snapshot()` builds one in the CRM snapshot JSON of docs/snapshot.md, and
`evolve_snapshot()` moves it forward a week at a time so a demo can show trends,
drops and alerts.

Determinism is a feature, not a nicety: the same `(accounts, seed, as_of)` gives
byte-identical JSON, so a benchmark, a failing test or a screenshot can be
reproduced anywhere. Everything is drawn from one `random.Random(seed)` in a
fixed order; nothing reads the clock, the global random state, `hash()` or set
order.

How realism is produced: each company gets a latent health in [0, 1] drawn from
a three-cluster mixture (thriving, lukewarm, struggling). Every signal the
default playbook reads (seat usage, adoption, logins, tickets, NPS, meetings,
calls, the CSM's pulse, advocacy) is drawn from that health plus its own noise,
so signals agree most of the time and disagree sometimes, as they do in real
CRMs. Scored with `playbooks/default.yaml`, about half the customers come out
Healthy, a quarter Neutral and a fifth At-risk.

Messy values are on purpose, because the engine must survive them (the spec
says a value that does not parse makes a condition false, never a crash):

- empty strings (`industry`, `csm_pulse`, advocacy flags, `numberofemployees`);
- missing properties (`seats_purchased`, `csm_pulse`, `last_login_date`, NPS);
- non-numeric strings in numeric fields (`active_users: "n/a"`,
  `annualrevenue: "1,200,000"`, `seats_purchased: "1,250"`);
- dates as ISO 8601 date, ISO 8601 date-time (with milliseconds) or epoch
  milliseconds (`last_login_date`, `renewal_date`, `notes_last_contacted`);
- values in a different case (`csm_pulse: "Green"`), past meetings still
  marked `SCHEDULED`, tickets with and without `hs_timestamp`.

Ids are numeric strings as HubSpot's are: owners from "1001", companies from
"101", and each other object type in its own range (contacts from 1000000001,
meetings from 2000000001, ...), so an id alone tells what it is when debugging.
"""

from __future__ import annotations

import bisect
import gc
import math
import random
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from healthscore.core.text import slug
from healthscore.core.values import as_timestamp

__all__ = [
    "DEFAULT_AS_OF",
    "EVENT_TYPES",
    "apply_changes",
    "evolve_snapshot",
    "generate_snapshot",
]

#: The default as-of instant: fixed (not "now") so the output is reproducible.
DEFAULT_AS_OF = datetime(2026, 11, 1, tzinfo=UTC)

#: Object types other than companies, in the order they appear in a snapshot.
EVENT_TYPES = ("meetings", "calls", "emails", "notes", "tasks", "tickets", "deals")

_DAY = 86_400

# First id of each object type: distinct ranges make an id self-describing.
_ID_BASE = {
    "contacts": 1_000_000_001,
    "meetings": 2_000_000_001,
    "calls": 3_000_000_001,
    "emails": 4_000_000_001,
    "notes": 5_000_000_001,
    "tasks": 6_000_000_001,
    "tickets": 7_000_000_001,
    "deals": 8_000_000_001,
}

# ---------------------------------------------------------------------------
# Word lists. Unicode and characters that need escaping (&, <, ') are here on
# purpose: Slack, Jira and HTML outputs must escape CRM text.
# ---------------------------------------------------------------------------

# fmt: off
_FIRST_NAMES = (
    "Ana", "Liam", "Olivia", "Noah", "Emma", "Mateo", "Sofía", "Lucas", "Mia", "Ethan", "Chloé",
    "José", "Zoë", "Łukasz", "Søren", "Mårten", "Jürgen", "Ngozi", "Aiko", "Wei", "Priya", "Arjun",
    "Fatima", "Omar", "Hannah", "Jonas", "Elif", "Mehmet", "Isabella", "Giulia", "Marco", "Camille",
    "Théo", "Ingrid", "Bjørn", "Yuki", "Hiroshi", "Mei", "Chen", "Amara", "Kwame", "Sarah", "David",
    "Laura", "Daniel", "Nora", "Felix", "Clara", "Diego", "Valentina", "Rafael", "Ava", "James",
    "Grace", "Samuel", "Leila", "Tomás", "Anaïs",
)
_LAST_NAMES = (
    "Ruiz", "Smith", "Johnson", "García", "Müller", "Schmidt", "Rossi", "Dupont", "Martin",
    "Nakamura", "Tanaka", "Kowalski", "Nowak", "Öztürk", "Yılmaz", "Çelik", "Ferreira", "Silva",
    "O'Brien", "O'Neill", "Håkansson", "Lindqvist", "Dvořák", "Nguyễn", "Zhang", "Wang", "Patel",
    "Sharma", "Okafor", "Mensah", "Brown", "Wilson", "Taylor", "Anderson", "Thomas", "Moore",
    "Jackson", "White", "Harris", "Clark", "Lewis", "Walker", "Hall", "Young", "King", "Wright",
    "López", "Hernández", "González", "Pérez", "Sánchez", "Núñez", "Björk", "Jensen", "Hansen",
    "Novak", "Horvat", "Kim", "Park", "Lee",
)
_ADJECTIVES = (
    "Blue", "Northern", "Bright", "Silver", "Summit", "Quantum", "Green", "Iron", "Rapid", "Golden",
    "Crystal", "Pioneer", "Atlas", "Vertex", "Harbor", "Cedar", "Maple", "Polar", "Solar", "Lunar",
    "Nimbus", "Crimson", "Evergreen", "Granite", "Coastal", "Prairie", "Urban", "Alpine", "Redwood",
    "Open", "Clear", "Swift", "Bold", "True", "Prime", "Apex", "Nova", "Orbit", "Signal", "Lumen",
    "Falcon", "Willow", "Copper", "Cobalt", "Oak",
)
_NOUNS = (
    "Analytics", "Logistics", "Systems", "Dynamics", "Labs", "Networks", "Foods", "Health",
    "Robotics", "Software", "Energy", "Media", "Partners", "Capital", "Studios", "Works", "Freight",
    "Pharma", "Retail", "Insurance", "Games", "Motors", "Textiles", "Farms", "Security", "Cloud",
    "Data", "Design", "Learning", "Bio", "Payments", "Mobility", "Devices", "Consulting", "Foundry",
    "Outfitters", "Clinics", "Hospitality", "Solar",
)
_SUFFIXES = (
    "Inc.", "LLC", "Ltd", "GmbH", "S.A.", "Co.", "Group", "AG", "BV", "Oy", "AB", "SAS", "Pty Ltd",
    "KK", "S.r.l.", "", "", "", "",
)
# fmt: on
# Rare, hand-picked names that exercise escaping and unicode handling downstream.
_ODD_NAMES = (
    "Brot & Butter GmbH",
    "Café Crème SARL",
    "Ångström Optics AB",
    "<Bracket> Labs",
    "Tom's Tools & Dies",
    "Bits <&> Bytes Ltd",
    "株式会社サンプル商事",
    "Straße & Söhne KG",
    "Ølbryggeriet AS",
    "Zürich Réassurance AG",
    '"Quoted" Widgets Inc.',
    "Rocket 🚀 Logistics",
    "Ωmega Systems",
    "Łódź Data Sp. z o.o.",
    "*bold* _launch_ Co.",
    "São Paulo Análises Ltda",
)
_TLDS = (".com", ".com", ".com", ".io", ".co", ".net", ".de", ".fr", ".co.uk", ".ai", ".es")

# HubSpot's internal values for the `industry` enumeration.
_INDUSTRIES = (
    "COMPUTER_SOFTWARE",
    "INFORMATION_TECHNOLOGY_AND_SERVICES",
    "FINANCIAL_SERVICES",
    "HOSPITAL_HEALTH_CARE",
    "RETAIL",
    "MARKETING_AND_ADVERTISING",
    "LOGISTICS_AND_SUPPLY_CHAIN",
    "EDUCATION_MANAGEMENT",
    "REAL_ESTATE",
    "TELECOMMUNICATIONS",
    "INSURANCE",
    "FOOD_BEVERAGES",
    "CONSUMER_GOODS",
    "NONPROFIT_ORGANIZATION_MANAGEMENT",
    "MECHANICAL_OR_INDUSTRIAL_ENGINEERING",
)
_JOB_TITLES = (
    "CEO",
    "CTO",
    "COO",
    "VP Operations",
    "VP Sales",
    "Head of Marketing",
    "Marketing Manager",
    "Operations Manager",
    "IT Director",
    "Product Manager",
    "Customer Success Lead",
    "Sales Manager",
    "Data Analyst",
    "Office Manager",
    "Finance Director",
    "Engineer",
    "Procurement Lead",
    "HR Business Partner",
    "Project Manager",
    "Founder",
)
_MEETING_TITLES = (
    "Quarterly business review",
    "Onboarding check-in",
    "Renewal discussion",
    "Executive business review",
    "Admin training session",
    "Roadmap preview",
    "Kick-off",
    "Escalation review",
    "Adoption workshop",
    "Success plan review",
)
_TICKET_SUBJECTS = (
    "Cannot log in",
    "SSO login fails for some users",
    "Export to CSV times out",
    "Invoice shows the wrong amount",
    "Feature request: bulk edit",
    "Dashboard loads slowly",
    "API returns 500 on /v2/orders",
    "How do I add a new admin?",
    "Data sync stopped overnight",
    "Report totals don't match",
    "Integration with Salesforce broken",
    "Billing: change of payment method",
    "Mobile app crashes on start",
    "Permission error on <shared> folder",
)
_TICKET_CATEGORIES = ("PRODUCT_ISSUE", "BILLING_ISSUE", "FEATURE_REQUEST", "GENERAL_INQUIRY")
_NOTE_BODIES = (
    "<p>QBR went well; champion wants to roll out to the EU team.</p>",
    "<p>Customer asked about SSO &amp; SCIM pricing.</p>",
    "<p>Budget freeze until Q1 — renewal at risk?</p>",
    "<p>New VP of Ops; need to re-establish the relationship.</p>",
    "<p>Adoption dropped after the reorg. Follow up in two weeks.</p>",
    "<p>Très contents du support, veulent un cas client.</p>",
    "<p>Champion left the company. Find a new sponsor.</p>",
    "<p>Asked for a training session for 20 new users.</p>",
    "<p>Complained about the price increase.</p>",
    "<p>Happy with the product; open to a G2 review.</p>",
)
_EMAIL_SUBJECTS = (
    "Re: renewal quote",
    "Your onboarding plan",
    "Follow-up from our call",
    "Re: support ticket",
    "Invitation: quarterly business review",
    "Re: invoice",
    "New features this month",
    "Quick question",
)
_TASK_SUBJECTS = (
    "Prepare QBR deck",
    "Send renewal quote",
    "Follow up on support escalation",
    "Check in with champion",
    "Schedule admin training",
    "Review usage report",
)

# HubSpot's default call dispositions are GUIDs; these are the portal defaults.
CALL_CONNECTED = "f240bbac-87c9-4f6e-bf70-924b57d47db7"
_CALL_NOT_CONNECTED = (
    "73a0d17f-1163-4015-bdd5-ec830791da20",  # No answer
    "b2cf5968-551e-4856-9783-52b3da59a7d0",  # Left voicemail
    "9d9162e7-6cf3-4944-bf63-4dff82258764",  # Busy
    "a4c4c377-d246-4b32-a13b-75a56a4cd0ff",  # Left live message
    "17b47fee-58de-441e-a44c-c6300d46f273",  # Wrong number
)

# Default ticket pipeline "0": 1 New, 2 Waiting on contact, 3 Waiting on us, 4 Closed.
TICKET_CLOSED_STAGE = "4"

_PLAN_PRICE = {"starter": 25, "professional": 60, "enterprise": 120}

# Latent health mixture: (weight, mean, standard deviation) per cluster.
_HEALTH_MIXTURE = ((0.62, 0.92, 0.05), (0.22, 0.68, 0.07), (0.16, 0.33, 0.12))


def _ascii(text: str) -> str:
    """Lower-case ASCII for emails and domains ("Łukasz" -> "lukasz", "O'Brien" -> "obrien")."""
    return slug(text, "")


_FIRST_ASCII = {n: _ascii(n) for n in _FIRST_NAMES}
_LAST_ASCII = {n: _ascii(n) for n in _LAST_NAMES}


class _Clock:
    """Fast timestamp strings relative to one as-of instant.

    `datetime.isoformat()` for two million events costs seconds; dates are cached
    per day and times per minute instead, which keeps 100k accounts well under a
    minute.
    """

    def __init__(self, as_of: datetime) -> None:
        if as_of.tzinfo is None:
            as_of = as_of.replace(tzinfo=UTC)
        self.as_of = as_of.astimezone(UTC)
        self.now = int(self.as_of.timestamp())
        self._dates: dict[int, str] = {}
        self._epoch = datetime(1970, 1, 1, tzinfo=UTC)
        self._hm = [f"{h:02d}:{m:02d}" for h in range(24) for m in range(60)]

    def date(self, t: int) -> str:
        """`YYYY-MM-DD` of epoch second t."""
        day = t // _DAY
        text = self._dates.get(day)
        if text is None:
            text = (self._epoch + timedelta(days=day)).strftime("%Y-%m-%d")
            self._dates[day] = text
        return text

    def iso(self, t: int) -> str:
        """ISO 8601 with seconds and `Z`, as in docs/snapshot.md."""
        return f"{self.date(t)}T{self._hm[(t % _DAY) // 60]}:{t % 60:02d}Z"

    def iso_ms(self, t: int, millis: int) -> str:
        """ISO 8601 with milliseconds, as HubSpot's v3 API writes `createdate`."""
        return f"{self.date(t)}T{self._hm[(t % _DAY) // 60]}:{t % 60:02d}.{millis:03d}Z"

    @staticmethod
    def epoch_ms(t: int) -> str:
        return str(t * 1000)

    def midnight(self, days_from_now: int) -> int:
        """Epoch second of midnight UTC, `days_from_now` days from the as-of date."""
        return (self.now // _DAY + days_from_now) * _DAY

    def work_time(self, days_ago: float, rand: float) -> int:
        """A working-hours time (08:00-17:45 UTC, quarter hours) about `days_ago` days back.

        Never after as-of: a past activity must count as past.
        """
        t = self.midnight(-int(days_ago)) + 8 * 3600 + int(rand * 40) * 900
        if t > self.now:
            t -= _DAY
        return t


def _poisson(rand: random.Random, lam: float) -> int:
    """Knuth's Poisson sampler; lambdas here are small, so it is cheap."""
    if lam <= 0:
        return 0
    limit = math.exp(-lam)
    k = 0
    p = rand.random()
    while p > limit:
        k += 1
        p *= rand.random()
    return k


def _clamp(x: float, lo: float = 0.0, hi: float = 1.0) -> float:
    return lo if x < lo else hi if x > hi else x


def _pick(rand: random.Random, seq: Sequence[str]) -> str:
    return seq[int(rand.random() * len(seq))]


class _Ids:
    """Per-type sequential id counters, so ids depend only on generation order."""

    def __init__(self, first: dict[str, int] | None = None) -> None:
        self._next = dict(first or _ID_BASE)

    def take(self, object_type: str) -> str:
        value = self._next[object_type]
        self._next[object_type] = value + 1
        return str(value)


def _owners(rng: random.Random, count: int) -> list[dict[str, Any]]:
    owners: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for i in range(count):
        first = _pick(rng, _FIRST_NAMES)
        last = _pick(rng, _LAST_NAMES)
        local = f"{_FIRST_ASCII[first]}.{_LAST_ASCII[last]}"
        n = seen.get(local, 0) + 1
        seen[local] = n
        if n > 1:
            local = f"{local}{n}"
        owners.append(
            {
                "id": str(1001 + i),
                "email": f"{local}@example.com",
                "firstName": first,
                "lastName": last,
            }
        )
    return owners


def _company_name(rng: random.Random) -> tuple[str, str]:
    """A company name and the ASCII stem of its domain."""
    r = rng.random()
    if r < 0.015:
        name = _pick(rng, _ODD_NAMES)
        stem = _ascii(name) or "company"
        return name, stem
    adj = _pick(rng, _ADJECTIVES)
    noun = _pick(rng, _NOUNS)
    if r < 0.55:
        suffix = _pick(rng, _SUFFIXES)
        name = f"{adj} {noun} {suffix}".rstrip()
        return name, _ascii(adj + noun)
    last = _pick(rng, _LAST_NAMES)
    if r < 0.75:
        return f"{last} {noun}", _ascii(last + noun)
    if r < 0.87:
        other = _pick(rng, _LAST_NAMES)
        return f"{last} & {other}", _ascii(last + "and" + other)
    if r < 0.95:
        return f"{adj}{noun.lower()}", _ascii(adj + noun)
    return f"{last}'s {noun}", _ascii(last + noun)


def _health(rng: random.Random) -> float:
    r = rng.random()
    acc = 0.0
    for weight, mean, sd in _HEALTH_MIXTURE:
        acc += weight
        if r < acc:
            return _clamp(rng.gauss(mean, sd), 0.02, 0.99)
    weight, mean, sd = _HEALTH_MIXTURE[-1]
    return _clamp(rng.gauss(mean, sd), 0.02, 0.99)


_LIFECYCLE = ("customer", "opportunity", "lead", "salesqualifiedlead")
_LIFECYCLE_CUM = (0.88, 0.95, 0.985, 1.0)


def generate_snapshot(
    accounts: int, seed: int = 7, as_of: datetime | None = None
) -> dict[str, Any]:
    """A CRM snapshot (docs/snapshot.md) with `accounts` companies and their activity.

    Same `(accounts, seed, as_of)` gives byte-identical `json.dumps` output. Event
    times are relative to `as_of` (default `DEFAULT_AS_OF`): mostly in the past
    year, a few in the future (scheduled meetings, open tasks, renewals).
    """
    if accounts < 0:
        raise ValueError("accounts must be >= 0")
    rng = random.Random(seed)
    clock = _Clock(as_of or DEFAULT_AS_OF)
    ids = _Ids()
    owner_count = max(4, round(accounts / 60))
    owners = _owners(rng, owner_count)
    out: dict[str, list[dict[str, Any]]] = {
        "companies": [],
        "contacts": [],
        **{t: [] for t in EVENT_TYPES},
    }
    domains: dict[str, int] = {}
    # Millions of small dicts trigger the cyclic GC over and over for nothing (they
    # hold no cycles); pausing it makes 100k accounts about a third faster.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(accounts):
            _account(rng, clock, ids, out, owners, domains, str(101 + i))
    finally:
        if gc_was_enabled:
            gc.enable()
    return {"owners": owners, **out}


def _account(
    rng: random.Random,
    clock: _Clock,
    ids: _Ids,
    out: dict[str, list[dict[str, Any]]],
    owners: list[dict[str, Any]],
    domains: dict[str, int],
    company_id: str,
) -> None:
    """Append one company and everything associated with it to `out`."""
    rand = rng.random
    gauss = rng.gauss
    now = clock.now
    h = _health(rng)

    stage = _LIFECYCLE[bisect.bisect_right(_LIFECYCLE_CUM, rand())]
    is_customer = stage == "customer"

    name, stem = _company_name(rng)
    tld = _pick(rng, _TLDS)
    key = stem + tld
    n = domains.get(key, 0) + 1
    domains[key] = n
    domain = key if n == 1 else f"{stem}{n}{tld}"

    employees = max(3, int(math.exp(gauss(4.2, 1.3))))
    plan = "starter" if employees < 50 else "professional" if employees < 1000 else "enterprise"
    if rand() < 0.15:
        plan = _pick(rng, ("starter", "professional", "enterprise"))
    seats = max(3, int(employees * (0.08 + 0.5 * rand())))
    if seats > 5000:
        seats = 5000 - int(rand() * 2000)
    created_days = 30 + int(rand() * 2000)
    created = clock.midnight(-created_days) + int(rand() * _DAY)

    owner_id = owners[int(rand() * len(owners))]["id"]
    props: dict[str, str] = {"name": name, "domain": domain}
    r = rand()
    props["industry"] = "" if r < 0.05 else _pick(rng, _INDUSTRIES)
    if rand() >= 0.015:
        props["hubspot_owner_id"] = owner_id
    props["lifecyclestage"] = stage
    revenue = employees * (60_000 + int(rand() * 140_000))
    r = rand()
    if r < 0.02:
        props["annualrevenue"] = f"{revenue:,}"  # messy: thousands separators
    elif r < 0.06:
        props["annualrevenue"] = ""
    else:
        props["annualrevenue"] = str(revenue)
    props["numberofemployees"] = "" if rand() < 0.02 else str(employees)
    props["createdate"] = clock.iso_ms(created, int(rand() * 1000))
    props["plan_tier"] = plan

    # ---- product usage: the strongest, least noisy signal --------------------
    hu = _clamp(h + gauss(0, 0.10))
    utilisation = _clamp(gauss(0.05 + 1.0 * hu, 0.08), 0.0, 1.15)
    active = int(seats * utilisation)
    adoption = int(_clamp(gauss(8 + 80 * hu, 9), 0, 100))
    login_days = rng.expovariate(1 / (0.8 + 50 * (1 - hu) ** 2.2))

    if is_customer or rand() < 0.3:
        r = rand()
        if r < 0.01:
            pass  # messy: seats never filled in
        elif r < 0.02:
            props["seats_purchased"] = f"{seats + 1000:,}"  # messy: "1,250"
        else:
            props["seats_purchased"] = str(seats)
        r = rand()
        props["active_users"] = "n/a" if r < 0.01 else str(active)
        props["product_adoption_pct"] = str(adoption)
        r = rand()
        if r >= 0.01:
            t = now - int(login_days * _DAY) - int(rand() * 3600)
            r = rand()
            if r < 0.65:
                props["last_login_date"] = clock.date(t)
            elif r < 0.85:
                props["last_login_date"] = clock.epoch_ms(t // _DAY * _DAY)
            else:
                props["last_login_date"] = clock.iso_ms(t, int(rand() * 1000))
        mrr = seats * _PLAN_PRICE[plan]
        props["mrr"] = str(mrr) if rand() < 0.9 else f"{mrr}.00"
        renewal_in = int(rand() * 365) - 10  # a few lapsed a few days ago
        renewal = clock.midnight(renewal_in)
        props["renewal_date"] = clock.date(renewal) if rand() < 0.8 else clock.epoch_ms(renewal)
    else:
        mrr = 0
        renewal_in = 0

    # ---- CSM pulse: the CSM's gut feeling, noisier than usage -----------------
    hp = h + gauss(0, 0.15)
    pulse = "green" if hp > 0.63 else "yellow" if hp > 0.42 else "red"
    r = rand()
    if is_customer:
        if r < 0.03:
            props["csm_pulse"] = ""
        elif r < 0.05:
            pass  # never set
        elif r < 0.07:
            props["csm_pulse"] = pulse.capitalize()
        else:
            props["csm_pulse"] = pulse

    # ---- advocacy: rare, and almost only among happy customers ----------------
    if is_customer:
        h2 = h * h
        for prop, p in (
            ("case_study_published", 0.02 + 0.40 * h2),
            ("g2_review_left", 0.04 + 0.55 * h2),
            ("reference_customer", 0.02 + 0.45 * h2),
        ):
            r = rand()
            if r < 0.03:
                props[prop] = ""
            elif r < 0.06:
                continue
            else:
                props[prop] = "true" if rand() < p else "false"

    he = _clamp(h + gauss(0, 0.15)) if is_customer else 0.15 * rand()

    # ---- contacts, with NPS answers -------------------------------------------
    n_contacts = 1 + _poisson(rng, 0.6 + min(employees, 2000) ** 0.3 * 0.35)
    contact_ids: list[str] = []
    contacts = out["contacts"]
    for _ in range(n_contacts):
        cid = ids.take("contacts")
        contact_ids.append(cid)
        first = _pick(rng, _FIRST_NAMES)
        last = _pick(rng, _LAST_NAMES)
        cp: dict[str, str] = {
            "email": f"{_FIRST_ASCII[first]}.{_LAST_ASCII[last]}@{domain}",
            "firstname": first,
            "lastname": last,
            "jobtitle": "" if rand() < 0.08 else _pick(rng, _JOB_TITLES),
            "createdate": clock.iso_ms(created + int(rand() * 30 * _DAY), int(rand() * 1000)),
        }
        if is_customer and rand() < 0.7:
            score = round(gauss(3.0 + 7.6 * _clamp(h + gauss(0, 0.12)), 1.4))
            score = 0 if score < 0 else 10 if score > 10 else score
            if rand() < 0.01:
                cp["nps_score"] = ""  # messy: answered the survey, skipped the question
            else:
                cp["nps_score"] = str(score)
                cp["nps_category"] = (
                    "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"
                )
        contacts.append({"id": cid, "properties": cp, "associations": {"companies": [company_id]}})

    def assoc() -> dict[str, list[str]]:
        # Events belong to the company and, most of the time, to one of its contacts.
        if rand() < 0.7:
            return {"companies": [company_id], "contacts": [_pick(rng, contact_ids)]}
        return {"companies": [company_id]}

    last_contacted = 0

    # ---- meetings ----------------------------------------------------------------
    meetings = out["meetings"]
    recent = _poisson(rng, 0.2 + 4.5 * he)
    older = _poisson(rng, 0.3 + 1.4 * he)
    p_completed = 0.45 + 0.5 * he
    for k in range(recent + older):
        days = rand() * 90 if k < recent else 90 + rand() * 275
        t = clock.work_time(days, rand())
        r = rand()
        if r < p_completed:
            outcome = "COMPLETED"
            last_contacted = max(last_contacted, t)
        elif r < p_completed + 0.03:
            outcome = "SCHEDULED"  # messy: nobody logged the outcome
        else:
            outcome = _pick(rng, ("NO_SHOW", "CANCELED", "RESCHEDULED", "NO_SHOW"))
        meetings.append(_meeting(rng, clock, ids, t, outcome, owner_id, assoc()))
    if rand() < 0.15 + 0.5 * he:
        t = clock.work_time(-1 - rand() * 30, rand())
        meetings.append(_meeting(rng, clock, ids, t, "SCHEDULED", owner_id, assoc()))

    # ---- calls --------------------------------------------------------------------
    calls = out["calls"]
    recent = _poisson(rng, 0.15 + 3.5 * he)
    older = _poisson(rng, 0.3 + 1.2 * he)
    p_connected = 0.45 + 0.45 * he
    for k in range(recent + older):
        days = rand() * 60 if k < recent else 60 + rand() * 305
        t = clock.work_time(days, rand())
        connected = rand() < p_connected
        if connected:
            last_contacted = max(last_contacted, t)
        calls.append(_call(rng, clock, ids, t, connected, name, owner_id, assoc()))

    # ---- emails -------------------------------------------------------------------
    emails = out["emails"]
    for _ in range(_poisson(rng, 0.6 + 2.6 * he)):
        t = now - int(rand() * 365 * _DAY) - 60
        r = rand()
        direction = "EMAIL" if r < 0.58 else "INCOMING_EMAIL" if r < 0.98 else "FORWARDED_EMAIL"
        last_contacted = max(last_contacted, t)
        emails.append(
            {
                "id": ids.take("emails"),
                "properties": {
                    "hs_timestamp": clock.iso(t),
                    "hs_email_direction": direction,
                    "hs_email_subject": _pick(rng, _EMAIL_SUBJECTS),
                    "hs_email_status": "SENT",
                },
                "associations": assoc(),
            }
        )

    # ---- notes --------------------------------------------------------------------
    notes = out["notes"]
    for _ in range(_poisson(rng, 0.3 + 1.2 * he)):
        t = now - int(rand() * 365 * _DAY) - 60
        notes.append(
            {
                "id": ids.take("notes"),
                "properties": {
                    "hs_timestamp": clock.iso(t),
                    "hs_note_body": _pick(rng, _NOTE_BODIES),
                    "hubspot_owner_id": owner_id,
                },
                "associations": assoc(),
            }
        )

    # ---- tasks (due dates past and future) -----------------------------------------
    tasks = out["tasks"]
    for _ in range(_poisson(rng, 0.9 if is_customer else 0.3)):
        days = rand() * 200 - 30
        t = clock.work_time(days, rand())
        done = t < now and rand() < 0.75
        tasks.append(
            {
                "id": ids.take("tasks"),
                "properties": {
                    "hs_timestamp": clock.iso(t),
                    "hs_task_subject": _pick(rng, _TASK_SUBJECTS),
                    "hs_task_status": "COMPLETED"
                    if done
                    else _pick(rng, ("NOT_STARTED", "IN_PROGRESS", "WAITING")),
                    "hs_task_priority": _pick(rng, ("LOW", "MEDIUM", "HIGH", "NONE")),
                    "hs_task_type": _pick(rng, ("TODO", "CALL", "EMAIL")),
                    "hubspot_owner_id": owner_id,
                },
                "associations": assoc(),
            }
        )

    # ---- tickets: struggling accounts file more, more urgent, and leave them open ---
    tickets = out["tickets"]
    hs = _clamp(h + gauss(0, 0.12)) if is_customer else 0.9
    bad = 1 - hs
    recent = _poisson(rng, 0.1 + 2.6 * bad**1.6)
    older = _poisson(rng, 0.4 + 2.0 * bad)
    for k in range(recent + older):
        days = rand() * 90 if k < recent else 90 + rand() * 275
        t = now - int(days * _DAY) - 60 - int(rand() * 3600)
        p_open = (0.08 + 0.6 * bad) * (1.0 if days < 30 else 0.55 if days < 90 else 0.08)
        tickets.append(_ticket(rng, clock, ids, t, _priority(rng, bad), rand() < p_open, assoc()))

    # ---- deals: the original sale, the renewal, sometimes an expansion -------------
    deals = out["deals"]
    if is_customer or stage == "opportunity":
        won = stage == "customer"
        amount = max(mrr, seats * _PLAN_PRICE[plan]) * 12
        deals.append(
            _deal(
                rng,
                clock,
                ids,
                f"{name} - New business",
                "closedwon" if won else _pick(rng, ("qualifiedtobuy", "presentationscheduled")),
                amount,
                created + 20 * _DAY if won else now + int(rand() * 60) * _DAY,
                created,
                "newbusiness",
                owner_id,
                assoc(),
            )
        )
    if is_customer:
        renewal_stage = (
            "contractsent"
            if renewal_in < 45
            else "decisionmakerboughtin"
            if h > 0.6
            else "appointmentscheduled"
        )
        deals.append(
            _deal(
                rng,
                clock,
                ids,
                f"{name} - Renewal",
                renewal_stage,
                mrr * 12,
                clock.midnight(renewal_in),
                now - int((30 + rand() * 60) * _DAY),
                "existingbusiness",
                owner_id,
                assoc(),
            )
        )
        if rand() < 0.25 * h:
            deals.append(
                _deal(
                    rng,
                    clock,
                    ids,
                    f"{name} - Expansion",
                    _pick(rng, ("closedwon", "closedlost", "qualifiedtobuy")),
                    int(mrr * 12 * (0.1 + 0.4 * rand())),
                    now - int(rand() * 200) * _DAY,
                    now - int((200 + rand() * 100) * _DAY),
                    "existingbusiness",
                    owner_id,
                    assoc(),
                )
            )

    # ---- derived company dates --------------------------------------------------------
    if last_contacted:
        props["notes_last_contacted"] = (
            clock.iso_ms(last_contacted, 0) if rand() < 0.85 else clock.epoch_ms(last_contacted)
        )
    props["hs_lastmodifieddate"] = clock.iso_ms(
        now - int(rand() * 30 * _DAY) - 60, int(rand() * 1000)
    )
    out["companies"].append({"id": company_id, "properties": props})


def _meeting(
    rng: random.Random,
    clock: _Clock,
    ids: _Ids,
    t: int,
    outcome: str,
    owner_id: str,
    associations: dict[str, list[str]],
) -> dict[str, Any]:
    length = (30, 30, 45, 60)[int(rng.random() * 4)] * 60
    start = clock.iso(t)  # one string object for both properties: less memory at 100k
    return {
        "id": ids.take("meetings"),
        "properties": {
            "hs_timestamp": start,
            "hs_meeting_title": _pick(rng, _MEETING_TITLES),
            "hs_meeting_outcome": outcome,
            "hs_meeting_start_time": start,
            "hs_meeting_end_time": clock.iso(t + length),
            "hubspot_owner_id": owner_id,
        },
        "associations": associations,
    }


def _deal(
    rng: random.Random,
    clock: _Clock,
    ids: _Ids,
    name: str,
    stage: str,
    amount: int,
    close: int,
    created: int,
    deal_type: str,
    owner_id: str,
    associations: dict[str, list[str]],
) -> dict[str, Any]:
    return {
        "id": ids.take("deals"),
        "properties": {
            "dealname": name,
            "pipeline": "default",
            "dealstage": stage,
            "amount": str(amount),
            "closedate": clock.iso_ms(close, 0),
            "createdate": clock.iso_ms(created, int(rng.random() * 1000)),
            "dealtype": deal_type,
            "hubspot_owner_id": owner_id,
        },
        "associations": associations,
    }


def _call(
    rng: random.Random,
    clock: _Clock,
    ids: _Ids,
    t: int,
    connected: bool,
    company_name: str,
    owner_id: str,
    associations: dict[str, list[str]],
) -> dict[str, Any]:
    rand = rng.random
    if connected:
        disposition = CALL_CONNECTED
        duration = 60_000 + int(rand() * 1_800_000)
        status = "COMPLETED"
    else:
        disposition = _pick(rng, _CALL_NOT_CONNECTED)
        duration = int(rand() * 30_000)
        status = "NO_ANSWER" if rand() < 0.7 else "BUSY"
    return {
        "id": ids.take("calls"),
        "properties": {
            "hs_timestamp": clock.iso(t),
            "hs_call_title": "Call with " + company_name,
            "hs_call_direction": "OUTBOUND" if rand() < 0.8 else "INBOUND",
            "hs_call_disposition": disposition,
            "hs_call_duration": str(duration),
            "hs_call_status": status,
            "hubspot_owner_id": owner_id,
        },
        "associations": associations,
    }


def _priority(rng: random.Random, bad: float) -> str:
    """Ticket priority: the unhealthier the account (`bad` near 1), the more urgent."""
    r = rng.random()
    urgent_p = 0.06 + 0.45 * bad**1.5
    if r < urgent_p * 0.4:
        return "URGENT"
    if r < urgent_p:
        return "HIGH"
    return "MEDIUM" if rng.random() < 0.5 else "LOW"


def _ticket(
    rng: random.Random,
    clock: _Clock,
    ids: _Ids,
    t: int,
    priority: str,
    still_open: bool,
    associations: dict[str, list[str]],
) -> dict[str, Any]:
    """A support ticket created at t; closed ones carry `closed_date` and `time_to_close`.

    Only some tickets have `hs_timestamp` (as in real portals), so the engine's
    fallback to `createdate` is exercised.
    """
    rand = rng.random
    props: dict[str, str] = {
        "subject": _pick(rng, _TICKET_SUBJECTS),
        "hs_pipeline": "0",
        "hs_ticket_priority": priority,
        "hs_ticket_category": _pick(rng, _TICKET_CATEGORIES),
        "createdate": clock.iso_ms(t, int(rand() * 1000)),
    }
    if rand() < 0.3:
        props["hs_timestamp"] = clock.iso(t)
    if still_open:
        props["hs_pipeline_stage"] = _pick(rng, ("1", "2", "3"))
    else:
        ttc = int((0.1 + rng.expovariate(0.2)) * _DAY)
        closed = max(t + 60, min(t + ttc, clock.now - 60))
        props["hs_pipeline_stage"] = TICKET_CLOSED_STAGE
        props["closed_date"] = clock.iso(closed)
        props["time_to_close"] = str((closed - t) * 1000)
    return {"id": ids.take("tickets"), "properties": props, "associations": associations}


# ---------------------------------------------------------------------------
# Weekly drift for the demo
# ---------------------------------------------------------------------------

#: Share of customers on each trajectory; the rest stay stable.
DECLINE_SHARE = 0.12
RECOVER_SHARE = 0.30
#: How many weekly steps a decline or a recovery lasts once started.
EPISODE_WEEKS = 3


def evolve_snapshot(
    snapshot: dict[str, Any], weeks: int, seed: int, as_of: datetime
) -> dict[str, dict[str, Any]]:
    """Simulated drift over the week that ends at `as_of`: what changed and what is new.

    Why: the demo runs several weekly scorings in a row; without drift every run
    gives the same scores and no trend, drop or alert ever shows.

    `weeks` is the step number (1 for the first week after the original
    snapshot); each customer follows a trajectory fixed by `(seed, company id)`:

    - declining (about 12 %): for `EPISODE_WEEKS` weeks from a start week of 1-4,
      active users and adoption fall, the CSM pulse turns yellow then red,
      high/urgent tickets arrive, meetings are missed, logins stop and, in the
      second week, a contact answers the NPS survey as a detractor;
    - recovering (about 30 % of the accounts that currently look weak): usage and
      adoption climb, the pulse improves a notch a week, open tickets are closed,
      meetings happen and logins resume;
    - stable (the rest): small usage jitter, and new meetings, calls, logins and
      tickets at the account's usual rate, so scores hold steady as the as-of
      time moves forward.

    Returns `{object type: {record id: {property: new value}}}` for changed
    records (only changed properties), plus `"_new": {object type: [record, ...]}`
    for new events, timestamped within the 7 days before `as_of`, with ids after
    the snapshot's largest. Apply both to the snapshot before the next step.
    Deterministic: same snapshot, `weeks`, `seed` and `as_of`, same result,
    whatever the order of the records.
    """
    clock = _Clock(as_of)
    changes: dict[str, dict[str, Any]] = {"companies": {}, "contacts": {}, "tickets": {}}
    new: dict[str, list[dict[str, Any]]] = {"meetings": [], "calls": [], "tickets": []}

    contacts_of: dict[str, list[dict[str, Any]]] = {}
    for contact in snapshot.get("contacts", ()):
        for company_id in contact.get("associations", {}).get("companies", ()):
            contacts_of.setdefault(company_id, []).append(contact)
    open_tickets_of: dict[str, list[dict[str, Any]]] = {}
    for ticket in snapshot.get("tickets", ()):
        if ticket.get("properties", {}).get("hs_pipeline_stage") != TICKET_CLOSED_STAGE:
            for company_id in ticket.get("associations", {}).get("companies", ()):
                open_tickets_of.setdefault(company_id, []).append(ticket)
    first: dict[str, int] = {}
    for object_type in ("meetings", "calls", "tickets"):
        numeric = [int(r["id"]) for r in snapshot.get(object_type, ()) if str(r["id"]).isdigit()]
        first[object_type] = max(numeric, default=_ID_BASE[object_type] - 1) + 1
    ids = _Ids(first)

    for company in snapshot.get("companies", ()):
        props = company.get("properties", {})
        if str(props.get("lifecyclestage", "")).strip().lower() != "customer":
            continue
        company_id = str(company["id"])
        step = _Step(clock, seed, weeks, company_id, props, contacts_of.get(company_id, []))
        step.run(ids, open_tickets_of.get(company_id, []))
        if step.changed:
            step.changed["hs_lastmodifieddate"] = clock.iso_ms(
                clock.now - int(step.rng.random() * 6 * 3600) - 60, int(step.rng.random() * 1000)
            )
            changes["companies"][company_id] = step.changed
        changes["contacts"].update(step.contact_changes)
        changes["tickets"].update(step.ticket_changes)
        for object_type, records in step.new.items():
            new[object_type].extend(records)

    result: dict[str, dict[str, Any]] = {k: v for k, v in changes.items() if v}
    result["_new"] = {k: v for k, v in new.items() if v}
    return result


def apply_changes(snapshot: dict[str, Any], changes: dict[str, dict[str, Any]]) -> None:
    """Apply `evolve_snapshot()`'s result to `snapshot` in place (the demo's weekly step).

    Property changes of records that no longer exist are ignored; new records are
    appended in order, so the result stays deterministic.
    """
    for object_type, by_id in changes.items():
        if object_type == "_new":
            continue
        index = {str(r["id"]): r for r in snapshot.get(object_type, ())}
        for record_id, values in by_id.items():
            record = index.get(record_id)
            if record is not None:
                record.setdefault("properties", {}).update(values)
    for object_type, records in changes.get("_new", {}).items():
        snapshot.setdefault(object_type, []).extend(records)


def _number(value: Any) -> float | None:
    """A CRM number or None: the generator's own messy values ("n/a", "1,250") included."""
    if value is None:
        return None
    try:
        return float(str(value).replace(",", "").strip())
    except ValueError:
        return None


def _epoch_seconds(value: Any) -> int | None:
    """Epoch seconds of an ISO 8601 or epoch-milliseconds CRM date, None if neither."""
    stamp = as_timestamp(value)
    return None if stamp is None else math.floor(stamp)


def _unit(text: str) -> float:
    """A stable number in [0, 1) from text: order-independent, unlike a shared Random."""
    return zlib.crc32(text.encode()) / 2**32


class _Step:
    """One company's week: decide its trajectory, then produce its changes and events."""

    def __init__(
        self,
        clock: _Clock,
        seed: int,
        weeks: int,
        company_id: str,
        props: dict[str, Any],
        contacts: list[dict[str, Any]],
    ) -> None:
        self.clock = clock
        self.company_id = company_id
        self.props = props
        self.contacts = contacts
        self.rng = random.Random(zlib.crc32(f"{seed}:{weeks}:{company_id}".encode()))
        self.changed: dict[str, str] = {}
        self.contact_changes: dict[str, dict[str, str]] = {}
        self.ticket_changes: dict[str, dict[str, str]] = {}
        self.new: dict[str, list[dict[str, Any]]] = {"meetings": [], "calls": [], "tickets": []}

        seats = _number(props.get("seats_purchased"))
        active = _number(props.get("active_users"))
        self.seats = seats
        self.active = active
        usage = active / seats if seats and active is not None else 0.6
        pulse = str(props.get("csm_pulse") or "").strip().lower()
        pulse_h = {"green": 0.9, "yellow": 0.65, "red": 0.35}.get(pulse, 0.6)
        self.pulse = pulse
        self.health = _clamp((pulse_h + min(usage, 1.0)) / 2)

        kind = _unit(f"{seed}:trajectory:{company_id}")
        start = 1 + int(_unit(f"{seed}:start:{company_id}") * 4)
        self.episode_week = weeks - start  # 0 = first week of its episode
        in_episode = 0 <= self.episode_week < EPISODE_WEEKS
        weak = pulse in ("red", "yellow") or usage < 0.5
        if kind < DECLINE_SHARE and in_episode:
            self.trajectory = "decline"
        elif kind < DECLINE_SHARE + RECOVER_SHARE and in_episode and weak:
            self.trajectory = "recover"
        else:
            self.trajectory = "stable"

    def run(self, ids: _Ids, open_tickets: list[dict[str, Any]]) -> None:
        if self.trajectory == "decline":
            self._decline(ids)
        elif self.trajectory == "recover":
            self._recover(ids, open_tickets)
        else:
            self._stable(ids)

    # -- helpers ------------------------------------------------------------

    def _set(self, prop: str, value: str) -> None:
        if self.props.get(prop) != value:
            self.changed[prop] = value

    def _assoc(self) -> dict[str, list[str]]:
        if self.contacts and self.rng.random() < 0.7:
            contact = self.contacts[int(self.rng.random() * len(self.contacts))]
            return {"companies": [self.company_id], "contacts": [str(contact["id"])]}
        return {"companies": [self.company_id]}

    def _when(self) -> int:
        """A working-hours time in the 7 days before as-of."""
        return self.clock.work_time(self.rng.random() * 7, self.rng.random())

    def _meeting(self, ids: _Ids, outcome: str) -> None:
        owner = str(self.props.get("hubspot_owner_id") or "")
        record = _meeting(self.rng, self.clock, ids, self._when(), outcome, owner, self._assoc())
        self.new["meetings"].append(record)

    def _call(self, ids: _Ids, connected: bool) -> None:
        owner = str(self.props.get("hubspot_owner_id") or "")
        name = str(self.props.get("name") or "")
        record = _call(
            self.rng, self.clock, ids, self._when(), connected, name, owner, self._assoc()
        )
        self.new["calls"].append(record)

    def _ticket(self, ids: _Ids, priority: str, still_open: bool) -> None:
        t = self.clock.now - int(self.rng.random() * 7 * _DAY) - 60
        record = _ticket(self.rng, self.clock, ids, t, priority, still_open, self._assoc())
        self.new["tickets"].append(record)

    def _usage(self, factor: float) -> None:
        if self.active is None or self.seats is None:
            return
        target = max(0, min(int(self.seats * 1.1), round(self.active * factor)))
        self._set("active_users", str(target))

    def _adoption(self, delta: float) -> None:
        adoption = _number(self.props.get("product_adoption_pct"))
        if adoption is not None:
            self._set("product_adoption_pct", str(int(_clamp(adoption + delta, 0, 100))))

    def _login(self) -> None:
        days_ago = 1 + int(self.rng.random() * 3)
        self._set("last_login_date", self.clock.date(self.clock.now - days_ago * _DAY))

    # -- trajectories -------------------------------------------------------

    def _decline(self, ids: _Ids) -> None:
        rand = self.rng.random
        self._usage(0.65 + 0.15 * rand())
        self._adoption(-6 - 8 * rand())
        self._set("csm_pulse", "yellow" if self.pulse == "green" else "red")
        for _ in range(1 + int(rand() * 2)):
            self._ticket(ids, "URGENT" if rand() < 0.5 else "HIGH", still_open=True)
        if rand() < 0.6:
            self._meeting(ids, "NO_SHOW" if rand() < 0.6 else "CANCELED")
        if self.episode_week == 1 and self.contacts:
            contact = self.contacts[int(rand() * len(self.contacts))]
            score = int(rand() * 5) + 1
            self.contact_changes[str(contact["id"])] = {
                "nps_score": str(score),
                "nps_category": "detractor",
            }

    def _recover(self, ids: _Ids, open_tickets: list[dict[str, Any]]) -> None:
        rand = self.rng.random
        self._usage(1.15 + 0.15 * rand())
        if self.active is not None and self.seats and self.active < 0.3 * self.seats:
            self._set("active_users", str(int(self.seats * (0.45 + 0.1 * rand()))))
        self._adoption(5 + 6 * rand())
        self._set("csm_pulse", "yellow" if self.pulse == "red" else "green")
        self._login()
        self._meeting(ids, "COMPLETED")
        if rand() < 0.6:
            self._call(ids, connected=True)
        for ticket in open_tickets:
            created = _epoch_seconds(ticket.get("properties", {}).get("createdate"))
            self.ticket_changes[str(ticket["id"])] = {
                "hs_pipeline_stage": TICKET_CLOSED_STAGE,
                "closed_date": self.clock.iso(self._when()),
            }
            if created is not None:
                self.ticket_changes[str(ticket["id"])]["time_to_close"] = str(
                    max(0, (self.clock.now - created) * 1000)
                )

    def _stable(self, ids: _Ids) -> None:
        rand = self.rng.random
        h = self.health
        if rand() < 0.3:
            self._usage(0.97 + 0.06 * rand())
        if rand() < 0.3 + 0.65 * h:
            self._login()
        # Weekly rates matching the generator's 90/60-day rates for this health.
        for _ in range(_poisson(self.rng, (0.2 + 4.5 * h) * 7 / 90)):
            completed = rand() < 0.45 + 0.5 * h
            self._meeting(ids, "COMPLETED" if completed else "NO_SHOW")
        for _ in range(_poisson(self.rng, (0.15 + 3.5 * h) * 7 / 60)):
            self._call(ids, connected=rand() < 0.45 + 0.45 * h)
        bad = 1 - h
        for _ in range(_poisson(self.rng, (0.1 + 2.6 * bad**1.6) * 7 / 90)):
            self._ticket(ids, _priority(self.rng, bad), still_open=rand() < 0.08 + 0.6 * bad)
