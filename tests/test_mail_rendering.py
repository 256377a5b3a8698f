"""Mail that looks right: the client apology and the digests, as a real SMTP server received
them, rendered by a real browser engine (headless Chromium) at desktop and phone widths and
judged from the PNG: laid out text, not a blank page, nothing running off a phone's screen,
the digest's SLA badges in their colours. And their plain-text parts read well on their own.

The mails are the same whatever the store, so this runs on SQLite only (Chromium costs
about a second a picture).
"""
import re

import pytest

from jobs_helpers import at
from pngcheck import screenshot

CODE = "ESC-2024-11-28-001"
RED, AMBER, BLUE, GREEN = "#cf222e", "#9a6700", "#0969da", "#1a7f37"


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite:///{tmp_path}/escalate.db"


def ok(result):
    assert result.exit_code == 0, result.stderr
    return result.stdout


@pytest.fixture
def mails(run, demo, smtp):
    """The use case's morning, a breach, a hold, and Monday's digests: what arrived."""
    sarah = "sarah.martinez"
    ok(run("claim", CODE, user=sarah, now=at("2024-11-29 08:02")))
    ok(run("email", CODE, "--template", "client-apology", "--var", "billed_rate=120",
           "--var", "hours=160", "--var", "credit=500", "--var", "call_time=9:00 AM",
           user=sarah, now=at("2024-11-29 08:15")))
    ok(run("task", CODE, "--title", "Issue corrected invoice for Google - Sarah Chen placement",
           "--assign", "finance", "--due", "today 17:00", "--priority", "high",
           user=sarah, now=at("2024-11-29 08:20")))
    no_show = ok(run("create", "--title", "Candidate no-show on day one", "--category",
                     "Candidate Issue", "--subcategory", "Ghosting", "--priority", "high",
                     "--account", "Google Inc.", "--description", "No answer by phone or email.",
                     user="john.smith", now=at("2024-11-29 10:00"))).strip()
    badge = ok(run("create", "--title", "Badge access for new contractor", "--category",
                   "System/Process Failure", "--priority", "low", "--description", "d",
                   user="john.smith", now=at("2024-11-29 10:30"))).strip()
    ok(run("claim", badge, user=sarah, now=at("2024-11-29 11:00")))
    ok(run("hold", badge, "--reason", "Waiting for facilities", user=sarah,
           now=at("2024-11-29 11:05")))
    ok(run("jobs", "sla-sweep", now=at("2024-11-29 14:05")))
    ok(run("jobs", "digest", now=at("2024-12-02 07:00")))
    ok(run("jobs", "deliver", now=at("2024-12-02 07:01")))
    got = {}
    for m in smtp.messages:
        if m.subject == "Re: Invoice Issue - Sarah Chen Contract":
            got["apology"] = m
        elif "Daily digest" in m.subject and "sarah.martinez@intime.com" in m.rcpt_tos:
            got["digest"] = m
        elif "olivia.park@intime.com" in m.rcpt_tos and "digest" in m.subject.lower():
            got["leadership"] = m
    assert set(got) == {"apology", "digest", "leadership"}, [m.subject for m in smtp.messages]
    got["codes"] = (no_show, badge)
    return got


def _picture(tmp_path, name, html, width, height=1600):
    page = tmp_path / f"{name}.html"
    page.write_text(html, encoding="utf-8")
    return screenshot(page, tmp_path / f"{name}-{width}.png", width, height,
                      tmp_path / "chromium-profile")


def _laid_out(image, width, min_lines):
    """Text on a page: some ink but not a flood, many separate lines, many shades (anti-
    aliased glyphs, not a solid block), all of it inside the window."""
    assert image.width == width
    assert 0.005 < image.ink_share() < 0.25, image.ink_share()
    assert image.text_lines() >= min_lines, image.text_lines()
    assert image.distinct_colours() > 40
    first, last = image.ink_columns()
    assert first >= 8 and last <= width - 8, (first, last)      # nothing off the screen


def _reads_well(text):
    assert text.strip()
    assert not re.search(r"<[a-z/!]|&[a-z]+;|&#\d+;|\{\{|\{%|\}\}", text), text
    assert "\n\n\n" not in text                                # no holes in the page
    lines = text.splitlines()
    assert all(line == line.rstrip() or line == "-- " for line in lines)
    assert not any(line.startswith(("- -", "--", " -")) and line != "-- " for line in lines)


def test_client_apology_looks_right(mails, tmp_path):
    m = mails["apology"]
    html, text = m.text("text/html"), m.text("text/plain")
    assert 'http' not in re.sub(r'https?://[^"]*intime\.com[^"]*', "", html)   # no remote content
    desktop = _picture(tmp_path, "apology", html, 800)
    _laid_out(desktop, 800, min_lines=18)
    phone = _picture(tmp_path, "apology", html, 375)
    _laid_out(phone, 375, min_lines=24)
    assert phone.text_lines() > desktop.text_lines()          # the text re-flows on a phone
    _reads_well(text)
    assert text.startswith("Hi Jane,\n\nThank you for bringing the invoice discrepancy")
    assert "1. Corrected invoice issued today showing $110/hr (as agreed)\n" \
           "2. Total: $17,600 (160 hours × $110) instead of $19,200\n" \
           "3. As an apology, we'll credit your December invoice $500\n" in text
    assert text.rstrip().endswith("Best regards,\nSarah Martinez\nManager - Recruiting Pod A\n"
                                  "InTime")


def test_digest_looks_right_with_its_sla_badges(mails, tmp_path):
    m = mails["digest"]
    html, text = m.text("text/html"), m.text("text/plain")
    no_show, badge = mails["codes"]
    desktop = _picture(tmp_path, "digest", html, 800)
    _laid_out(desktop, 800, min_lines=20)
    # the badge row at the top: 1 breached (red), 0 at risk (grey: no amber), 1 on hold
    # (blue), 1 on track (green); the stacked bar under it in the same colours
    badges = desktop.top(200)
    assert badges.count(RED) > 300 and badges.count(BLUE) > 300 and badges.count(GREEN) > 300
    assert badges.count(AMBER, tolerance=12) == 0
    phone = _picture(tmp_path, "digest", html, 375)
    _laid_out(phone, 375, min_lines=24)
    _reads_well(text)
    assert "SLA at a glance (3 open): 1 breached · 0 at risk · 1 on hold · 1 on track\n" in text
    assert f"BREACHED (1)\n- {no_show} [high] Candidate no-show on day one\n" in text
    assert "OVERDUE TASKS (1)\n- Issue corrected invoice for Google - Sarah Chen placement\n" \
           "  Finance Team; due Nov 29, 2024 5:00 PM, overdue by 2d 14h; " + CODE in text


def test_leadership_digest_looks_right(mails, tmp_path):
    m = mails["leadership"]
    html, text = m.text("text/html"), m.text("text/plain")
    image = _picture(tmp_path, "leadership", html, 800)
    _laid_out(image, 800, min_lines=14)
    assert image.count(RED) > 300 and image.count(GREEN) > 150
    _reads_well(text)
    assert "SLA at a glance (3 open company-wide): 1 breached · 0 at risk · 1 on hold · " \
           "1 on track\n" in text
