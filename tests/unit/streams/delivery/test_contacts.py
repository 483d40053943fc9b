"""Contacts: parsing per channel, what records may show of them, levels per subject, settings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.delivery.contacts import (
    ContactInvalid,
    all_contacts,
    check_subject_contacts,
    levels_for,
    max_levels,
    parse_contact,
)
from streams.settings import SettingsInvalid, load_settings


def test_each_scheme_names_its_channel() -> None:
    assert parse_contact("https://pager.example/hook?token=T0k").channel == "webhook"
    mail = parse_contact("mailto:aufsicht.bad-sued@stadt.example")
    assert (mail.channel, mail.address) == ("email", "aufsicht.bad-sued@stadt.example")
    siren = parse_contact("mqtt:bad-sued/halle/sirene")
    assert (siren.channel, siren.address) == ("mqtt", "bad-sued/halle/sirene")


def test_targets_show_no_credential_and_no_mailbox() -> None:
    assert parse_contact("https://u:pw@pager.example/hook/S3cretS3cretS3cret?token=T0k").target == "https://pager.example"
    assert parse_contact("mailto:maria.muster@stadt.example").target == "mailto:*@stadt.example"
    assert parse_contact("mqtt:bad-sued/sirene").target == "mqtt:bad-sued/sirene"
    # the id tells two contacts apart without showing either
    assert parse_contact("mailto:a@x.example").target_id != parse_contact("mailto:b@x.example").target_id


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("mailto:a@x.example,b@y.example", "one plain e-mail address"),
        ("mailto:a@x.example\r\nBcc: spy@evil.example", "one plain e-mail address"),
        ("mailto:Maria <m@x.example>", "one plain e-mail address"),
        ("mailto:", "one plain e-mail address"),
        ("mqtt:pools/+/siren", "wildcards"),
        ("mqtt:pools/#", "wildcards"),
        ("mqtt:", "must not be empty"),
        ("mqtt:$SYS/broker", "belong to the broker"),
        ("mqtt:a\x00b", "control character"),
        ("ftp://files.example/x", "a contact is https://"),
        ("duty@x.example", "a contact is https://"),
        ("http://pager.example/hook", "only https://"),
        ("https://169.254.169.254/latest", "metadata"),
    ],
)
def test_bad_contacts_are_refused_with_a_reason(raw: str, why: str) -> None:
    with pytest.raises(ContactInvalid, match="(?s)" + why.replace("+", r"\+")):
        parse_contact(raw)


def test_a_subject_has_its_own_levels_else_the_star_entry_else_the_default() -> None:
    own = [["mailto:a@bad-sued.example"]]
    star = [["mqtt:alle/sirene"]]
    default = [["https://pager.example"]]
    assert levels_for("bad-sued", {"bad-sued": own, "*": star}, default) == own
    assert levels_for("bad-nord", {"bad-sued": own, "*": star}, default) == star
    assert levels_for("bad-nord", {"bad-sued": own}, default) == default


def test_all_contacts_and_max_levels() -> None:
    subject = {"P1": [["mailto:a@x.example"], ["mailto:b@x.example"], ["mqtt:p1/siren"]]}
    default = [["https://pager.example"]]
    assert set(all_contacts(subject, default)) == {"mailto:a@x.example", "mailto:b@x.example", "mqtt:p1/siren", "https://pager.example"}
    assert max_levels(subject, default) == 3 and max_levels({}, []) == 1


def test_channels_need_their_server() -> None:
    contacts = {"P1": [["mailto:a@x.example"]]}
    assert "LEITSTAND_SMTP_HOST" in (check_subject_contacts(contacts, (), smtp_ready=False, mqtt_ready=True) or "")
    assert check_subject_contacts(contacts, (), smtp_ready=True, mqtt_ready=False) is None
    assert "LEITSTAND_MQTT_HOST" in (check_subject_contacts({"P1": [["mqtt:x"]]}, (), smtp_ready=True, mqtt_ready=False) or "")
    assert "no contact levels" in (check_subject_contacts({"P1": []}, (), True, True) or "")
    assert "level 1 has no contact" in (check_subject_contacts({"P1": [["mqtt:x"], []]}, (), True, True) or "")


def test_settings_refuse_unusable_contacts_in_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    monkeypatch.setenv("LEITSTAND_ALARM_SUBJECT_CONTACTS", '{"P1": [["mailto:aufsicht@bad-sued.example"]]}')
    with pytest.raises(SettingsInvalid) as err:
        load_settings()
    assert str(err.value) == (
        "invalid setting alarm_subject_contacts (LEITSTAND_ALARM_SUBJECT_CONTACTS): subject 'P1' level 0: "
        "e-mail contacts need LEITSTAND_SMTP_HOST and LEITSTAND_SMTP_FROM"
    )
    monkeypatch.setenv("LEITSTAND_SMTP_HOST", "smtp.stadt.example")
    monkeypatch.setenv("LEITSTAND_SMTP_FROM", "leitstand@stadt.example")
    s = load_settings()
    assert s.alarm_subject_contacts == {"P1": [["mailto:aufsicht@bad-sued.example"]]}
    monkeypatch.setenv("LEITSTAND_ALARM_SUBJECT_CONTACTS", '{"P1": [["mqtt:bad/+/x"]]}')
    with pytest.raises(SettingsInvalid, match="wildcards"):
        load_settings()
    monkeypatch.setenv("LEITSTAND_SMTP_FROM", "Leitstand <leitstand@stadt.example>")
    with pytest.raises(SettingsInvalid, match=r"smtp_from \(LEITSTAND_SMTP_FROM\): .*one plain e-mail address"):
        load_settings()


def test_masked_settings_hide_webhook_credentials_of_subject_contacts(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.chdir(tmp_path)
    s = load_settings(
        mqtt_host="127.0.0.1", alarm_subject_contacts={"P1": [["https://pager.example/hook?token=T0kenT0ken", "mqtt:p1/siren"]]}
    )
    shown = repr(s.masked()["alarm_subject_contacts"])
    assert "T0kenT0ken" not in shown and "mqtt:p1/siren" in shown


_LOCAL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-+", min_size=1, max_size=30)
_LABEL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=20)


@given(_LOCAL, st.lists(_LABEL, min_size=1, max_size=3))
def test_an_e_mail_target_never_shows_the_mailbox(local: str, labels: list[str]) -> None:
    address = f"{local}@{'.'.join(labels)}"
    contact = parse_contact("mailto:" + address)
    assert contact.target == "mailto:*@" + ".".join(labels)
    assert contact.address == address


@given(st.text(max_size=60))
def test_any_string_is_a_contact_or_one_clear_refusal(raw: str) -> None:
    try:
        contact = parse_contact(raw)
    except ContactInvalid as exc:
        assert "\n" not in str(exc).strip("\n") or "\n" in raw  # one line unless the input had one
    else:
        assert contact.channel in ("webhook", "email", "mqtt")
