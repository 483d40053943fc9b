"""Alarm delivery beyond the webhooks: e-mail (SMTP with STARTTLS), MQTT, contacts per subject,
silences. docs/delivery.md is the operator's view.

* ``contacts``  which contacts a subject has per level, parsed and checked (pure)
* ``planning``  deliveries of an alarm transition, the outbox with its record of what was sent,
                retry outcomes, silences (pure: unit and property tests)
* ``email``     the message of a delivery (pure) and one SMTP attempt (aiosmtplib)
* ``mqtt``      one MQTT publish (aiomqtt)

``streams/agents/notifier.py`` wires them to the ``alerts`` and ``alerts.silences`` topics.
"""
