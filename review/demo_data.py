"""The demo: a support-ticket triage queue, its people, and generated tickets.

Pure data and pure functions, no database: `flask seed demo` (review/cli.py) feeds these
through the services. Tickets are built from templates with a seeded random generator, so
every run produces the same tickets. About one ticket in five also mentions a second issue
(a refund request that complains about a crash, phishing that talks about passwords), so a
model has real ambiguity to learn around.

The demo history is told as a story in three eras (`ERAS`), over the four weeks before
the demo starts:

1. keyword: the team triaged with a legacy keyword rules engine (`keyword_guess`); its
   guesses arrived with each ticket and reviewers approved or overrode them
   (`reviewer_decision`). Those decisions train the local model, local-v1.
2. shadow: local-v1 recommends, but a policy that reviews everything (`SHADOW_POLICY`) is
   in force, so every one of its recommendations gets a person's label: the evidence a
   threshold needs before anything is auto-approved.
3. policy: the demo policy (`DEMO_POLICY`) is in force: confident items are auto-approved,
   5% of those are audited blind, the rest are reviewed.

Then the fresh tickets arrive, waiting for the worker.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

DEMO_PASSWORD = "demo-password"
DEMO_SEED = 20261126
FRESH_COUNT = 60
FIRST_TICKET_NUMBER = 10001


@dataclass(frozen=True)
class Era:
    """A stretch of the demo's past: `count` tickets arriving from `first_day` days ago to
    `last_day` days ago (both included)."""

    name: str
    count: int
    first_day: int
    last_day: int


# About 300 tickets a day once the workbench is in use. The shadow era is long enough for
# a 99% target on every label: a 95% Wilson lower bound reaches 99% only with some 380
# right answers above a threshold, and once automation starts each audited item weighs
# 1 / audit rate, which shrinks the effective sample size (review/domain/estimates.py).
# The go-live week gives the audit enough items for its interval to close in on the
# policy's estimate.
ERAS: tuple[Era, ...] = (
    Era("keyword", 300, 28, 22),
    Era("shadow", 4200, 21, 8),
    Era("policy", 2000, 7, 1),
)
HISTORY_COUNT = sum(era.count for era in ERAS)
HISTORY_DAYS = ERAS[0].first_day


@dataclass(frozen=True)
class DemoUser:
    email: str
    role: str
    display_name: str


DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("reviewer@demo.local", "reviewer", "Riley Reviewer"),
    DemoUser("reviewer2@demo.local", "reviewer", "Sam Second"),
    DemoUser("policy@demo.local", "policy_owner", "Pat Policy"),
    DemoUser("ml@demo.local", "ml", "Morgan ML"),
    DemoUser("admin@demo.local", "admin", "Avery Admin"),
)
REVIEWER_EMAILS = ("reviewer@demo.local", "reviewer2@demo.local")
# Riley works full time on the queue, Sam part time.
REVIEWER_WEIGHTS = (3, 2)
POLICY_OWNER_EMAIL = "policy@demo.local"

LABELS = ("refund", "bug_report", "account_access", "spam")
REASON_CODES = (
    "wrong_category",
    "primary_issue_differs",
    "legitimate_customer",
    "spam_missed",
    "needs_account_history",
)

DEMO_QUEUE: dict[str, Any] = {
    "slug": "support-triage",
    "name": "Support ticket triage",
    "labels": list(LABELS),
    "reason_codes": list(REASON_CODES),
    "recommender": {"kind": "local"},
    "instructions": (
        "Pick the team that should own this ticket.\n"
        "- refund: the customer wants money back or disputes a charge "
        "(double charges, cancelled plans still billed, returns).\n"
        "- bug_report: the product misbehaves (crashes, errors, wrong data, broken exports).\n"
        "- account_access: the customer cannot get into their account "
        "(password resets, 2FA, lockouts, SSO loops, suspicious logins).\n"
        "- spam: unsolicited sales, phishing or scams, including mail that imitates a "
        "refund or a security alert.\n"
        "When a ticket raises several issues, label the one the customer asks us to act on "
        "and use reason code primary_issue_differs if you override for that reason. "
        "Approve when the AI label is right; override with a reason code when it is not."
    ),
}

# In force while local-v1 recommends in shadow: every item still goes to a person.
SHADOW_POLICY: dict[str, Any] = {
    "default_threshold": 1.0,
    "thresholds": {},
    "audit_rate": 0.0,
    "note": (
        "local-v1 recommends in shadow: every ticket is still reviewed, so each of its "
        "recommendations gets a person's label. Thresholds come once those labels show "
        "how far its confidence can be trusted."
    ),
}

DEMO_POLICY: dict[str, Any] = {
    "default_threshold": 0.94,
    "thresholds": {"spam": 0.9, "refund": 0.97},
    # 20% of would-be auto-approvals go to review, blind, so the policy pages can estimate
    # the precision of what nobody otherwise looks at. A go-live rate: each audited item
    # stands for 1 / rate auto-approved ones, and the Kish effective sample size behind the
    # intervals shrinks fast with heavy weights (at 5%, a dozen audits of a label would
    # undo most of the shadow era's evidence for it).
    "audit_rate": 0.2,
    "note": (
        "Go-live after two weeks of local-v1 in shadow: auto-approve only confident "
        "triage. A misrouted spam ticket costs little, so 0.90; refunds move money, so "
        "0.97; everything else 0.94. Audit 20% while the first auto-approvals build up."
    ),
}


# Sentences that make a ticket what it is, per label. Placeholders are filled per ticket.
# Labels deliberately share words ("error", "charged", "account", "order"): a refund can
# start with a checkout error and a bug can live on the billing page.
CORE_SENTENCES: dict[str, tuple[str, ...]] = {
    "refund": (
        "I was charged twice for order {order} on {date}. Please refund the duplicate "
        "payment of {amount}.",
        "I cancelled my {plan} subscription on {date} but was still billed {amount}.",
        "The {product} arrived damaged and I don't want a replacement, just my money back.",
        "Your pricing page said the annual plan costs less than what my invoice shows.",
        "I sent the {product} back two weeks ago and the refund still hasn't appeared on "
        "my statement.",
        "We were invoiced for 40 seats but only have 12 users on the account.",
        "Checkout showed an error, so I paid again, and now I see two charges of {amount}.",
        "The upgrade didn't give us the features you advertised, so we want the {amount} reversed.",
        "My card was charged {amount} after the free trial even though I never used the app.",
        "Order {order} never arrived and tracking hasn't moved since {date}.",
    ),
    "bug_report": (
        "When I click Export on the reports page the app shows a blank screen and nothing "
        "downloads.",
        "Since the latest update the mobile app crashes every time I open the {feature} tab.",
        "The dashboard still shows yesterday's numbers after I refresh; the sync seems stuck.",
        "Uploading a CSV larger than a few MB fails with 'Error 500'.",
        "Notifications arrive twice and the badge count never clears.",
        "Search returns nothing for orders I can see in the list, for example {order}.",
        "The {feature} page shows totals that don't add up to the rows underneath.",
        "The Billing page shows my invoices in the wrong currency.",
        "Dates in the {feature} view are off by one day for everyone in my team.",
        "The order confirmation email shows an empty cart although the order went through.",
    ),
    "account_access": (
        "I can't log in because the password reset email never arrives.",
        "My two-factor codes are rejected since I moved to a new phone.",
        "My account was locked after too many attempts and the unlock link has expired.",
        "I changed my email address and now I can't sign in with either address.",
        "I see a session from {city} that I don't recognise and I can no longer get in.",
        "Signing in through our company SSO sends me back to the login page in a loop.",
        "Our admin left the company and nobody else can get into the team account.",
        "The app says my account doesn't exist, but I placed order {order} with it on {date}.",
        "I was invited to the {feature} workspace but the invite link says it has expired.",
    ),
    "spam": (
        "Boost your website's search ranking in 30 days! Reply today for a free audit.",
        "Congratulations, you have been selected for a {amount} gift card. Click the link "
        "to claim it before midnight.",
        "We sell bulk followers and five-star reviews for your store at wholesale prices.",
        "Dear partner, we are a leading manufacturer of LED lighting. Please see our "
        "attached catalogue and price list.",
        "Your account will be suspended! Verify your password within 24 hours at "
        "secure-login-check.example to keep access.",
        "URGENT: a refund of {amount} is pending. Confirm your bank details to receive it.",
        "I am a freelance developer and can rebuild your app for half the price. "
        "Let's schedule a call.",
        "Invoice {order} attached. Open the document to view the payment due.",
    ),
}

# A second issue mentioned in passing: it makes a ticket ambiguous without changing its owner.
ASIDE_SENTENCES: dict[str, tuple[str, ...]] = {
    "refund": (
        "I'd also like to be refunded for the days the service was unusable.",
        "If this can't be fixed I will want my money back.",
    ),
    "bug_report": (
        "The app also crashed twice while I was writing this.",
        "Your cancellation page threw an error too, which is why I'm writing in.",
    ),
    "account_access": (
        "I had to reset my password to even get in and write this.",
        "I was locked out for a day before I could sign in again.",
    ),
    "spam": (),
}

# What the customer asks for: present in some mixed tickets, so the owner is only sometimes
# stated outright.
ASKS: dict[str, str] = {
    "refund": "Mostly I just want my money back.",
    "bug_report": "What I need is for this to be fixed.",
    "account_access": "Please just get me back into my account first.",
}

# Details that fit any ticket; they carry words a model may wrongly lean on.
DETAIL_SENTENCES = (
    "We're on the {plan} plan.",
    "I've been a customer for years.",
    "I already tried another browser.",
    "My order number is {order}.",
    "This started on {date}.",
    "I wrote about this last week and got no answer.",
    "It affects my whole team.",
    "I'm using the iPhone app.",
    "This is really frustrating.",
)

# Tickets too short to be sure about: reviewers label them from the customer's history,
# so the text alone cannot say.
VAGUE_SENTENCES = (
    "Please call me back, it's urgent.",
    "Nothing works since this morning.",
    "I need help with my account as soon as possible.",
    "Still waiting for an answer to my last message.",
    "Something is wrong with my order.",
)

SUBJECTS: dict[str, tuple[str, ...]] = {
    "refund": (
        "Refund request for order {order}",
        "Charged twice",
        "Cancel and refund my subscription",
        "Billing problem",
        "Where is my refund?",
        "Question about my order",
    ),
    "bug_report": (
        "Export not working",
        "App keeps crashing",
        "Dashboard numbers are wrong",
        "Error on upload",
        "Something is broken",
        "Problem with the {feature} page",
    ),
    "account_access": (
        "Can't log in",
        "Locked out of my account",
        "2FA not accepting codes",
        "Password reset not arriving",
        "Account problem",
        "Urgent: no access",
    ),
    "spam": (
        "Partnership opportunity",
        "You have been selected!",
        "Action required: account verification",
        "Grow your business today",
        "Refund notification",
        "Invoice {order}",
    ),
}
VAGUE_SUBJECTS = ("Help", "Urgent", "Problem", "Follow-up", "Support request")

OPENERS = ("Hi,", "Hello support team,", "Hi there,", "Good morning,", "")
CLOSERS = ("Thanks,", "Thanks in advance.", "Please help as soon as you can.", "Regards,", "")
FIRST_NAMES = ("Alex", "Jordan", "Priya", "Chen", "Maria", "Tom", "Aisha", "Lukas", "Noor", "Sofia")
LAST_INITIALS = "ABCDEFGHJKLMNPRSTW"
PRODUCTS = ("wireless headset", "standing desk", "coffee grinder", "backpack", "smart plug")
FEATURES = ("Reports", "Inbox", "Billing", "Analytics", "Team settings")
PLANS = ("Starter", "Pro", "Business")
CITIES = ("Lagos", "Lisbon", "Jakarta", "Toronto", "Warsaw", "Osaka")
TIERS = ("free", "pro", "enterprise")
CHANNELS = ("email", "chat", "web_form", "phone_transcript")
LABEL_WEIGHTS = {"refund": 30, "bug_report": 30, "account_access": 25, "spam": 15}
# How a customer ticket is written: one clear issue; one issue and a passing mention of
# another; two issues at once; or too little to tell.
SHAPE_WEIGHTS = {"clear": 62, "aside": 18, "mixed": 12, "vague": 8}
TIER_PRIORITY = {"free": 0, "pro": 1, "enterprise": 2}


@dataclass(frozen=True)
class DemoTicket:
    """A generated ticket and the label a careful reviewer gives it."""

    external_id: str
    payload: dict[str, Any]
    priority: int
    true_label: str
    shape: str  # a key of SHAPE_WEIGHTS

    @property
    def ambiguous(self) -> bool:
        return self.shape != "clear"


def _fill(template: str, rng: random.Random, order: str) -> str:
    return template.format(
        order=order,
        date=f"{rng.randint(1, 28)} {rng.choice(('March', 'April', 'May', 'June'))}",
        amount=f"${rng.randint(9, 480)}.{rng.choice(('00', '99', '50'))}",
        plan=rng.choice(PLANS),
        product=rng.choice(PRODUCTS),
        feature=rng.choice(FEATURES),
        city=rng.choice(CITIES),
    )


def _issue_sentences(label: str, shape: str, rng: random.Random) -> list[str]:
    """The templates saying what the ticket is about, for a customer ticket of this shape."""
    if shape == "vague":
        return [rng.choice(VAGUE_SENTENCES)]
    sentences = rng.sample(CORE_SENTENCES[label], k=rng.choice((1, 1, 2)))
    other = rng.choice([o for o in LABELS if o not in (label, "spam")])
    if shape == "aside":
        sentences.insert(rng.randint(0, len(sentences)), rng.choice(ASIDE_SENTENCES[other]))
    elif shape == "mixed":
        sentences = [sentences[0], rng.choice(CORE_SENTENCES[other])]
        rng.shuffle(sentences)
        if rng.random() < 0.5:
            sentences.append(ASKS[label])
    if rng.random() < 0.6:
        sentences.insert(rng.randint(0, len(sentences)), rng.choice(DETAIL_SENTENCES))
    return sentences


def _customer_body(label: str, shape: str, rng: random.Random, order: str, name: str) -> str:
    sentences = [_fill(t, rng, order) for t in _issue_sentences(label, shape, rng)]
    opener, closer = rng.choice(OPENERS), rng.choice(CLOSERS)
    text = " ".join(s for s in (opener, *sentences, closer) if s)
    return f"{text} {name}" if closer.endswith(",") else text


def generate_ticket(rng: random.Random, number: int) -> DemoTicket:
    """One ticket, numbered TCK-<number>, drawn from `rng`."""
    label = rng.choices(list(LABEL_WEIGHTS), weights=list(LABEL_WEIGHTS.values()))[0]
    shape = rng.choices(list(SHAPE_WEIGHTS), weights=list(SHAPE_WEIGHTS.values()))[0]
    order = f"#{rng.randint(100000, 999999)}"
    name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_INITIALS)}."
    if label == "spam":
        body = _fill(rng.choice(CORE_SENTENCES["spam"]), rng, order)
        subject, shape = rng.choice(SUBJECTS["spam"]), "clear"
    else:
        body = _customer_body(label, shape, rng, order, name)
        subject = rng.choice(VAGUE_SUBJECTS if shape == "vague" else SUBJECTS[label])
    # Spam comes from strangers: no account, so no tier and no priority.
    tier = rng.choices(TIERS, weights=(5, 4, 1))[0] if label != "spam" else None
    payload = {
        "subject": _fill(subject, rng, order),
        "body": body,
        "customer_name": name,
        "customer_tier": tier,
        "channel": rng.choice(("email", "web_form")) if label == "spam" else rng.choice(CHANNELS),
        "order_value": round(rng.uniform(8, 600), 2) if label == "refund" else None,
        "currency": "USD",
        "account_age_days": rng.randint(0, 2000) if tier else None,
    }
    priority = TIER_PRIORITY[tier] if tier else 0
    return DemoTicket(f"TCK-{number}", payload, priority, label, shape)


def generate_tickets(count: int, first_number: int, seed: int = DEMO_SEED) -> list[DemoTicket]:
    """`count` tickets numbered from `first_number`; the same arguments give the same tickets."""
    rng = random.Random(f"{seed}:{first_number}")
    return [generate_ticket(rng, first_number + i) for i in range(count)]


def history_tickets() -> list[DemoTicket]:
    """The tickets decided (by people or the policy) before the demo starts, oldest first."""
    return generate_tickets(HISTORY_COUNT, FIRST_TICKET_NUMBER)


def era_tickets() -> list[tuple[Era, list[DemoTicket]]]:
    """The history tickets, split into the eras they arrived in."""
    tickets, start, eras = history_tickets(), 0, []
    for era in ERAS:
        eras.append((era, tickets[start : start + era.count]))
        start += era.count
    return eras


def era_start(era: Era, now: datetime) -> datetime:
    """Midnight (UTC) of the era's first day: when its policy and model took over."""
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=era.first_day)


def arrivals(era: Era, now: datetime, rng: random.Random) -> list[datetime]:
    """When each of the era's tickets arrived, oldest first: spread evenly over its days,
    in office hours (8:00 to 18:00 UTC)."""
    days = era.first_day - era.last_day + 1
    start = era_start(era, now)
    times = [
        start + timedelta(days=index * days // era.count, hours=rng.uniform(8, 18))
        for index in range(era.count)
    ]
    return sorted(times)


def decision_time(arrived: datetime, now: datetime, rng: random.Random) -> datetime:
    """When a person decided a ticket that arrived then: five minutes to four hours later."""
    return min(arrived + timedelta(minutes=rng.uniform(5, 240)), now)


def seconds_on_item(ticket: DemoTicket, overridden: bool, rng: random.Random) -> float:
    """How long a reviewer had the ticket open: longer for an ambiguous ticket, and longer
    again to pick a label and a reason code for an override."""
    seconds = rng.lognormvariate(3.0, 0.45)  # median 20 s
    if ticket.ambiguous:
        seconds *= 1.6
    if overridden:
        seconds += rng.uniform(8, 30)
    return round(seconds, 1)


def fresh_tickets() -> list[DemoTicket]:
    """The tickets waiting for the worker when the demo starts."""
    return generate_tickets(FRESH_COUNT, FIRST_TICKET_NUMBER + HISTORY_COUNT)


KEYWORDS: dict[str, tuple[str, ...]] = {
    "refund": ("refund", "charged", "money back", "invoice", "billed", "credit", "payment"),
    "bug_report": ("crash", "error", "blank", "broken", "stuck", "fails", "wrong", "not working"),
    "account_access": ("log in", "login", "password", "locked", "sign in", "two-factor", "2fa"),
    "spam": ("click", "free", "congratulations", "followers", "catalogue", "wholesale", "urgent"),
}
KEYWORD_MODEL = "keyword-rules-v1"


def keyword_guess(payload: dict[str, Any]) -> tuple[str, float, str]:
    """The legacy rules engine: (label, confidence, rationale) from keyword counts.

    It is deliberately naive, as such engines are: it counts words, so phishing that
    mentions passwords looks like an access problem and a complaint that mentions a crash
    looks like a bug.
    """
    text = f"{payload['subject']} {payload['body']}".lower()
    hits = {label: [w for w in words if w in text] for label, words in KEYWORDS.items()}
    ranked = sorted(LABELS, key=lambda label: -len(hits[label]))
    best, runner_up = ranked[0], ranked[1]
    top, second = len(hits[best]), len(hits[runner_up])
    if top == 0:
        return "bug_report", 0.3, "no keyword matched; defaulted to bug_report"
    confidence = min(0.97, 0.5 + 0.12 * top - 0.1 * second)
    return best, round(max(confidence, 0.35), 3), f"matched: {', '.join(hits[best])}"


OVERRIDE_COMMENTS: dict[str, tuple[str, ...]] = {
    "wrong_category": (
        "Not what the customer is asking about.",
        "Read the whole ticket: this belongs to another team.",
    ),
    "primary_issue_differs": (
        "Mentions a second issue, but the ask is {label}.",
        "The other problem is context; the customer wants {label}.",
    ),
    "legitimate_customer": (
        "Real customer with an order on file, not spam.",
        "Genuine request; the keywords fooled the rules.",
    ),
    "spam_missed": (
        "Phishing: asks for credentials or bank details.",
        "Unsolicited mail imitating a real request.",
    ),
    "needs_account_history": (
        "Ticket says little; the customer's previous messages are about {label}.",
        "Checked the account history: this is {label}.",
    ),
}


def override_reason(ticket: DemoTicket, ai_label: str) -> str:
    """The reason code a reviewer gives when overriding `ai_label` on this ticket."""
    if ticket.true_label == "spam":
        return "spam_missed"
    if ai_label == "spam":
        return "legitimate_customer"
    if ticket.shape == "vague":
        return "needs_account_history"
    return "primary_issue_differs" if ticket.ambiguous else "wrong_category"


def reviewer_decision(ticket: DemoTicket, ai_label: str, rng: random.Random) -> dict[str, Any]:
    """The decision body a reviewer submits: approve a right label, override a wrong one."""
    if ai_label == ticket.true_label:
        return {"action": "approve"}
    reason = override_reason(ticket, ai_label)
    comment = rng.choice(OVERRIDE_COMMENTS[reason]).format(label=ticket.true_label)
    return {
        "action": "override",
        "label": ticket.true_label,
        "reason_code": reason,
        "comment": comment,
    }
