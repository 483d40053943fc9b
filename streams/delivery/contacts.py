"""Contacts: who is told about an alarm, per subject and level, on which channel (pure).

A contact is one string, its scheme naming the channel:

* ``https://pager.example/hook`` (``http://`` only for allowed hosts): a signed webhook
* ``mailto:duty@bad-sued.example``: an e-mail through the configured SMTP server
* ``mqtt:leitstand/pool/P1/siren``: a message on that topic of the configured MQTT broker

``LEITSTAND_ALARM_SUBJECT_CONTACTS`` maps a subject id (a pool, an intersection) to its levels
(level 0 = the person on duty, 1 = their deputy, ...); the key ``*`` is the default for subjects
not listed, and without it they fall back to ``LEITSTAND_ALARM_CONTACT_LEVELS`` (webhooks, as
before). So this pool's duty address is not that pool's.

Records and logs name a contact by ``target`` (no credential, no personal address: the scheme
and host of a URL, the domain of an e-mail address, the topic of MQTT) and ``target_id`` (a
short hash of the configured string); the string itself is looked up in the settings when a
delivery is sent.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from .. import webhooks

Channel = Literal["webhook", "email", "mqtt"]
CHANNELS: tuple[Channel, ...] = ("webhook", "email", "mqtt")
DEFAULT_SUBJECT = "*"
Levels = Sequence[Sequence[str]]

# one plain address: no display name, no list, nothing that could add a header (CR/LF) or a
# second recipient (comma, semicolon); the domain a host name
_EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
MAX_MQTT_TOPIC_BYTES = 65535


class ContactInvalid(ValueError):
    """A contact string that cannot be used; the message says why in one line."""


@dataclass(frozen=True)
class Contact:
    """One configured contact: its channel, where it goes, and how records name it."""

    channel: Channel
    address: str  # the URL, the e-mail address, the MQTT topic
    raw: str  # as configured: what the delivery id and target id are made of

    @property
    def target_id(self) -> str:
        return webhooks.target_id(self.raw)

    @property
    def target(self) -> str:
        """How records and logs show it: no URL path or query, no mailbox name."""
        if self.channel == "webhook":
            return webhooks.origin(self.address)
        if self.channel == "email":
            return "mailto:*@" + self.address.rpartition("@")[2]
        return "mqtt:" + self.address


def email_address_problem(address: str) -> str | None:
    """Why ``address`` is not one plain e-mail address, or None."""
    if not _EMAIL.fullmatch(address) or len(address) > 254:
        return f"{address[:80]!r} is not one plain e-mail address (local@domain, no name, no list)"
    return None


def mqtt_topic_problem(topic: str) -> str | None:
    """Why ``topic`` cannot be published to, or None (MQTT 3.1.1/5: no wildcards, no NUL,
    not empty; ``$`` topics belong to the broker)."""
    if not topic:
        return "an MQTT topic must not be empty"
    if "+" in topic or "#" in topic:
        return f"MQTT topic {topic!r}: wildcards (+, #) are for subscribing, not publishing"
    if "\x00" in topic or any(ord(c) < 32 for c in topic):
        return f"MQTT topic {topic!r} contains a control character"
    if topic.startswith("$"):
        return f"MQTT topic {topic!r}: topics starting with $ belong to the broker"
    if len(topic.encode()) > MAX_MQTT_TOPIC_BYTES:
        return "MQTT topic longer than 65535 bytes"
    return None


def parse_contact(raw: str, allowed_hosts: Collection[str] = ()) -> Contact:
    """The contact a configured string denotes, or ``ContactInvalid`` saying why not."""
    text = raw.strip()
    scheme = text.partition(":")[0].lower()
    if scheme in ("https", "http"):
        try:
            webhooks.check_url(text, allowed_hosts)
        except webhooks.TargetRefused as exc:
            raise ContactInvalid(f"webhook {exc}") from None
        return Contact("webhook", text, raw)
    if scheme == "mailto":
        address = text[len("mailto:") :]
        problem = email_address_problem(address)
        if problem:
            raise ContactInvalid(problem)
        return Contact("email", address, raw)
    if scheme == "mqtt":
        topic = text[len("mqtt:") :]
        problem = mqtt_topic_problem(topic)
        if problem:
            raise ContactInvalid(problem)
        return Contact("mqtt", topic, raw)
    shown = webhooks.origin(text) if "//" in text else text[:40]
    raise ContactInvalid(f"{shown!r}: a contact is https://... (webhook), mailto:... (e-mail) or mqtt:<topic>")


def levels_for(subject_id: str, subject_contacts: Mapping[str, Levels], default_levels: Levels) -> Levels:
    """The contact levels of one subject: its own, else the ``*`` entry, else the default."""
    if subject_id in subject_contacts:
        return subject_contacts[subject_id]
    return subject_contacts.get(DEFAULT_SUBJECT, default_levels)


def all_contacts(subject_contacts: Mapping[str, Levels], default_levels: Levels) -> Iterator[str]:
    """Every configured contact string (to look a target id up when a delivery is sent)."""
    for level in default_levels:
        yield from level
    for levels in subject_contacts.values():
        for level in levels:
            yield from level


def max_levels(subject_contacts: Mapping[str, Levels], default_levels: Levels) -> int:
    """The most levels any subject has (at least 1): how far escalation can go."""
    return max([1, len(default_levels), *(len(levels) for levels in subject_contacts.values())])


def check_subject_contacts(
    subject_contacts: Mapping[str, Levels], allowed_hosts: Collection[str], smtp_ready: bool, mqtt_ready: bool
) -> str | None:
    """The first problem of a subject-contacts setting, in one line, or None.

    ``smtp_ready`` / ``mqtt_ready``: whether the server an e-mail / MQTT contact needs is set.
    """
    for subject, levels in subject_contacts.items():
        if not levels:
            return f"subject {subject!r} has no contact levels (leave it out to use the default)"
        for n, level in enumerate(levels):
            if not level:
                return f"subject {subject!r} level {n} has no contact"
            for raw in level:
                try:
                    contact = parse_contact(raw, allowed_hosts)
                except ContactInvalid as exc:
                    return f"subject {subject!r} level {n}: {exc}"
                if contact.channel == "email" and not smtp_ready:
                    return f"subject {subject!r} level {n}: e-mail contacts need LEITSTAND_SMTP_HOST and LEITSTAND_SMTP_FROM"
                if contact.channel == "mqtt" and not mqtt_ready:
                    return f"subject {subject!r} level {n}: MQTT contacts need LEITSTAND_MQTT_HOST"
    return None
