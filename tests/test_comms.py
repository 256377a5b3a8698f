"""Steps 6-10 and 12 of UC-MGR-002 through the real command, against a real SMTP server,
on both stores: the client email, tasks, calls, messages, SMS, and what the server got."""
import json

import icalendar

CODE = "ESC-2024-11-28-001"
SARAH, JOHN, MARIA = "sarah.martinez", "john.smith", "maria.lopez"
JANE = "jane@google.com"
CLAIMED = "2024-11-29T08:02:00-05:00"
EMAILED = "2024-11-29T08:15:00-05:00"
APOLOGY = ["--template", "client-apology", "--var", "billed_rate=120", "--var", "hours=160",
           "--var", "credit=500", "--var", "call_time=9:00 AM"]
ROOT = "<escalation.esc-2024-11-28-001.1@intime.com>"


def claimed(run):
    r = run("claim", CODE, user=SARAH, now=CLAIMED)
    assert r.exit_code == 0, r.stderr


def events(run, name):
    out = run("events", "--name", name, user="admin").stdout
    return [json.loads(line)["payload"] for line in out.splitlines()]


def inbox(run, user, now=None):
    r = run("inbox", "--format", "json", user=user, now=now)
    return [n["message"] for n in json.loads(r.stdout)]


def timeline(run, user=SARAH):
    return json.loads(run("timeline", CODE, "--format", "json", user=user).stdout)


def outbox_rows(run, *flags):
    r = run("outbox", *flags, "--format", "json", user="admin")
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def sql(run, query, *params):
    from escalate_cli.db import make_database
    db = make_database(run.env["ESCALATE_DB"])
    db.connect()
    try:
        return db.execute_sql(query.replace("?", db.param), params).fetchall()
    finally:
        db.close()


# -- step 6: email the client ---------------------------------------------------------------

def test_step6_client_apology_sent_threaded_and_logged(run, demo, smtp):
    claimed(run)
    r = run("email", CODE, *APOLOGY, user=SARAH, now=EMAILED)
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith("Email sent successfully ✓ (to Jane Doe <jane@google.com>, "
                               "cc John Smith <john.smith@intime.com>; outbox #")
    assert len(smtp.messages) == 1
    got = smtp.messages[0]
    msg = got.message
    # recipients: To the contact, CC the reporter, BCC the sender (envelope only)
    assert sorted(got.rcpt_tos) == ["jane@google.com", "john.smith@intime.com",
                                    "sarah.martinez@intime.com"]
    assert msg["To"] == "Jane Doe <jane@google.com>"
    assert msg["Cc"] == "John Smith <john.smith@intime.com>"
    assert msg["Bcc"] is None
    assert "sarah.martinez" not in (msg["To"] + msg["Cc"])
    assert msg["Reply-To"] == "Sarah Martinez <sarah.martinez@intime.com>"
    assert msg["From"] == '"Sarah Martinez (InTime)" <escalations@intime.com>'
    assert got.subject == "Re: Invoice Issue - Sarah Chen Contract"
    assert msg["Date"] == "Fri, 29 Nov 2024 08:15:00 -0500"
    # threading: its own Message-ID, replying to the escalation's root
    assert msg["Message-ID"].startswith("<escalate.") and msg["Message-ID"].endswith("@intime.com>")
    assert msg["In-Reply-To"] == ROOT and msg["References"] == ROOT
    # both alternatives
    assert msg.get_content_type() == "multipart/alternative"
    text, html = got.text("text/plain"), got.text("text/html")
    for line in ("Hi Jane,",
                 "the rate increase to $120/hr was an error on our part.",
                 "mistakenly applied to Sarah's ongoing contract.",
                 "1. Corrected invoice issued today showing $110/hr (as agreed)",
                 "2. Total: $17,600 (160 hours × $110) instead of $19,200",
                 "3. As an apology, we'll credit your December invoice $500",
                 "4. This mistake will not happen again on any of your contracts",
                 "I'll call you at 9:00 AM to discuss and ensure we're aligned.",
                 "Best regards,\nSarah Martinez\nManager - Recruiting Pod A\nInTime"):
        assert line in text, line
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "<li>Corrected invoice issued today showing $110/hr (as agreed)</li>" in html
    assert "max-width:600px" in html
    # logged: the email activity, last_action, events, the reporter told
    email_acts = [a for a in timeline(run) if a["type"] == "email" and a["direction"] == "outbound"
                  and a["actor"] == SARAH]
    assert len(email_acts) == 1
    assert email_acts[0]["subject"] == "Re: Invoice Issue - Sarah Chen Contract"
    assert email_acts[0]["body"] == text.replace("\r\n", "\n")
    assert email_acts[0]["occurred_at"] == "2024-11-29T08:15:00-05:00"
    shown = json.loads(run("show", CODE, "--format", "json", user=SARAH, now=EMAILED).stdout)
    assert shown["last_action"] == "email_sent"
    assert shown["last_action_at"] == "2024-11-29T08:15:00-05:00"
    [sent] = events(run, "activity.email_sent")
    assert sent["to"] == JANE and sent["escalation_id"] == CODE
    assert sent["subject"] == "Re: Invoice Issue - Sarah Chen Contract"
    assert sent["body"].startswith("Hi Jane,")
    [action] = events(run, "escalation.action_taken")
    assert action["action_type"] == "email_sent" and action["escalation_id"] == CODE
    assert action["action_details"]["to"] == JANE
    assert "Manager sent email to client" in inbox(run, JOHN)


def test_every_email_about_one_escalation_threads_together(run, demo, smtp):
    claimed(run)
    assert run("email", CODE, *APOLOGY, user=SARAH, now=EMAILED).exit_code == 0
    r = run("jobs", "deliver", now=EMAILED)          # the queued notifications
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "" and r.stderr == ""          # quiet on success
    subjects = sorted(m.subject for m in smtp.messages)
    assert subjects == ["ESC-2024-11-28-001: Sarah Martinez has taken ownership",
                        "Re: Invoice Issue - Sarah Chen Contract",
                        "[URGENT] Escalation: Client complaint - Google Inc."]
    ids = {m.message["Message-ID"] for m in smtp.messages}
    assert len(ids) == 3
    assert {m.message["References"] for m in smtp.messages} == {ROOT}
    assert {m.message["In-Reply-To"] for m in smtp.messages} == {ROOT}
    new = [m for m in smtp.messages if m.subject.startswith("[URGENT]")][0]
    assert new.rcpt_tos == ["sarah.martinez@intime.com"]
    assert new.message["Auto-Submitted"] == "auto-generated"
    assert "New escalation from John Smith: Client complaint." in new.text()
    assert new.text("text/html") is not None


def test_email_edit_then_draft_then_send(run, demo, smtp, tmp_path):
    claimed(run)
    editor = tmp_path / "edit.sh"
    editor.write_text("#!/bin/sh\nsed -i -e 's/Best regards,/Warm regards <team>,/' "
                      "-e 's/^Subject: .*/Subject: Your November invoice/' \"$1\"\n")
    editor.chmod(0o755)
    r = run("email", CODE, *APOLOGY, "--edit", "--draft", user=SARAH, now=EMAILED,
            env={"EDITOR": str(editor)})
    assert r.exit_code == 0, r.stderr
    draft_id = int(r.stdout.split("#")[1].split()[0])
    assert r.stdout == f"Draft #{draft_id} saved: escalate email send {draft_id}\n"
    assert smtp.messages == []
    assert events(run, "activity.email_sent") == []
    drafts = outbox_rows(run, "--drafts")
    assert drafts == []                                # drafts are their author's only
    r = run("outbox", "--drafts", "--format", "json", user=SARAH)
    assert [d["id"] for d in json.loads(r.stdout)] == [draft_id]
    r = run("email", "send", str(draft_id), user=SARAH, now="2024-11-29T08:20:00-05:00")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith("Email sent successfully ✓")
    [got] = smtp.messages
    assert got.subject == "Your November invoice"
    assert "Warm regards <team>," in got.text()
    html = got.text("text/html")
    assert "Warm regards &lt;team&gt;," in html and "<team>" not in html   # escaped
    r = run("email", "send", str(draft_id), user=SARAH)
    assert r.exit_code == 1
    assert r.stderr == f"Error: Outbox message #{draft_id} is not a draft (it is sent)\n"


def test_email_attachments_with_their_types(run, demo, smtp, tmp_path):
    claimed(run)
    pdf = tmp_path / "corrected-invoice-nov-2024.pdf"
    pdf.write_bytes(b"%PDF-1.4\n% corrected invoice\n")
    r = run("email", CODE, "-t", "client-followup", "--attach", str(pdf),
            "--attach", "contract-aug-2024-google.pdf", user=SARAH, now=EMAILED)
    assert r.exit_code == 0, r.stderr
    [got] = smtp.messages
    assert got.message.get_content_type() == "multipart/mixed"
    files = {p.get_filename(): p for p in got.message.iter_attachments()}
    assert set(files) == {"corrected-invoice-nov-2024.pdf", "contract-aug-2024-google.pdf"}
    assert files["corrected-invoice-nov-2024.pdf"].get_content_type() == "application/pdf"
    assert files["corrected-invoice-nov-2024.pdf"].get_content() == pdf.read_bytes()
    assert files["contract-aug-2024-google.pdf"].get_content().startswith(b"%PDF-1.4")
    assert "Just confirming you received the corrected invoice." in got.text()


def test_invalid_client_email_address_changes_nothing(run, demo, smtp, snap):
    claimed(run)
    before = snap()
    for bad in ("not-an-email", "jane@", "jane@google.com\r\nBcc: evil@example.com"):
        r = run("email", CODE, *APOLOGY, "--to", bad, user=SARAH, now=EMAILED)
        assert r.exit_code == 1
        assert r.stderr == "Error: Invalid client email address\n"
    assert snap() == before
    assert smtp.messages == []


def test_header_injection_is_refused(run, demo, smtp, snap):
    claimed(run)
    before = snap()
    r = run("email", CODE, *APOLOGY, "--subject", "Invoice\r\nBcc: evil@example.com",
            user=SARAH, now=EMAILED)
    assert (r.exit_code, r.stderr) == (1, "Error: Invalid subject: line breaks are not allowed "
                                          "in email headers\n")
    # a variable that ends up in the template's subject
    r = run("email", CODE, *APOLOGY, "--var", "candidate=Sarah\nBcc: evil@example.com",
            user=SARAH, now=EMAILED)
    assert (r.exit_code, r.stderr) == (1, "Error: Invalid subject: line breaks are not allowed "
                                          "in email headers\n")
    r = run("email", CODE, *APOLOGY, "--cc", "ok@example.com\nBcc: evil@example.com",
            user=SARAH, now=EMAILED)
    assert r.exit_code == 1
    assert r.stderr == "Error: Invalid email address 'ok@example.com\\nBcc: evil@example.com'\n"
    r = run("task", CODE, "--title", "Invoice\r\nBcc: evil@example.com", "--assign", "finance",
            "--due", "today 17:00", user=SARAH, now=EMAILED)
    assert (r.exit_code, r.stderr) == (1, "Error: Invalid task title: line breaks are not "
                                          "allowed in email headers\n")
    assert snap() == before
    assert smtp.messages == []


def test_an_internal_notice_is_not_a_client_email(run, demo, smtp, snap):
    claimed(run)
    before = snap()
    r = run("email", CODE, "--template", "task-assigned", user=SARAH, now=EMAILED)
    assert r.exit_code == 1
    assert r.stderr == ("Error: Template 'task-assigned' is an internal notice, not a client "
                        "email: choose one of client-apology, client-followup\n")
    assert snap() == before and smtp.messages == []


def test_template_with_a_missing_variable(run, demo, smtp, snap, config_file, tmp_path, db_url):
    from escalate_cli.db import make_database
    db = make_database(db_url)       # no invoice on file: the billed rate and hours are unknown
    db.connect()
    db.execute_sql('DELETE FROM "invoice"')
    db.close()
    claimed(run)
    before = snap()
    r = run("email", CODE, "--template", "client-apology", user=SARAH, now=EMAILED)
    assert r.exit_code == 1
    assert r.stderr == ("Error: Template client-apology needs a value for 'billed_rate' "
                        "(pass --var billed_rate=...)\n")
    r = run("email", CODE, "--template", "client-apology", "--var", "billed_rate=120",
            user=SARAH, now=EMAILED)
    assert r.stderr == "Error: Template client-apology needs a value for 'hours' (pass --var hours=...)\n"
    r = run("email", CODE, "--template", "no-such-template", user=SARAH, now=EMAILED)
    assert r.exit_code == 1
    assert r.stderr.startswith("Error: Unknown template 'no-such-template': no no-such-template")
    assert snap() == before
    # an organisation's folder overrides the packaged templates, with the same strictness
    folder = tmp_path / "org-templates"
    folder.mkdir()
    (folder / "client-apology.subject.j2").write_text("Our apologies, {{ first_name }}\n")
    (folder / "client-apology.txt.j2").write_text("Dear {{ first_name }}, {{ loyalty_discount }}\n")
    (folder / "new-escalation.txt.j2").write_text("{{ undefined_in_notification }}\n")
    with open(config_file, "a") as fh:
        fh.write(f'[templates]\nfolder = "{folder}"\n')
    r = run("email", CODE, "--template", "client-apology", user=SARAH, now=EMAILED)
    assert r.stderr == ("Error: Template client-apology needs a value for 'loyalty_discount' "
                        "(pass --var loyalty_discount=...)\n")
    r = run("email", CODE, "--template", "client-apology", "--var", "loyalty_discount=5% off",
            user=SARAH, now=EMAILED)
    assert r.exit_code == 0, r.stderr
    [got] = smtp.messages
    assert got.subject == "Our apologies, Jane"
    assert got.text() == "Dear Jane, 5% off\n"
    assert "Dear Jane, 5% off" in got.text("text/html")     # the layout wraps the text
    # a queued notification whose template needs a missing variable: dead, with the reason
    r = run("jobs", "deliver", now=EMAILED)
    assert r.exit_code == 1
    dead = [row for row in outbox_rows(run, "--failed") if row["channel"] == "email"]
    assert [row["last_error"] for row in dead] == [
        "Template new-escalation needs a value for 'undefined_in_notification' "
        "(pass --var undefined_in_notification=...)"]


def test_only_managers_email_the_client(run, demo, smtp):
    r = run("email", CODE, *APOLOGY, user=JOHN, now=EMAILED)
    assert (r.exit_code, r.stderr) == (1, "Error: Only a manager of this pod or a leader can "
                                          "email the client\n")
    r = run("email", "ESC-2024-01-01-999", *APOLOGY, user=SARAH, now=EMAILED)
    assert (r.exit_code, r.stderr) == (3, "Error: Escalation not found or you don't have access\n")


# -- delivery failures ----------------------------------------------------------------------

def test_smtp_down_then_back_nothing_lost_delivered_once(run, demo, smtp):
    claimed(run)
    assert run("jobs", "deliver", now=CLAIMED).exit_code == 0     # what was already queued
    assert len(smtp.messages) == 2
    smtp.stop()
    r = run("email", CODE, *APOLOGY, user=SARAH, now=EMAILED)
    assert (r.exit_code, r.stderr) == (1, "Error: Failed to send email. Please try again.\n")
    # "Please try again" does not queue a second copy
    r = run("email", CODE, *APOLOGY, user=SARAH, now="2024-11-29T08:16:00-05:00")
    assert (r.exit_code, r.stderr) == (1, "Error: Failed to send email. Please try again.\n")
    [row] = [x for x in outbox_rows(run, "--failed") if x["subject"].startswith("Re: Invoice")]
    assert row["status"] == "failed" and row["attempts"] == 2
    assert row["last_error"].startswith(f"SMTP server 127.0.0.1:{smtp.port} unavailable: ")
    assert row["next_attempt_at"] == "2024-11-29T08:18:00-05:00"      # 60s, then 120s
    assert events(run, "activity.email_sent") == []
    assert not [a for a in timeline(run) if a["type"] == "email" and a["actor"] == SARAH]
    # not due yet: nothing tried
    r = run("jobs", "deliver", now="2024-11-29T08:17:00-05:00")
    assert (r.exit_code, r.stderr) == (0, "")
    # due, still down: a clear line, exit 1, still queued
    r = run("jobs", "deliver", now="2024-11-29T08:19:00-05:00")
    assert r.exit_code == 1
    assert "ERROR: deliver failed: sent 0, failed " in r.stderr and r.stderr.count("\n") == 1
    assert "unavailable" in r.stderr
    smtp.start()
    r = run("jobs", "deliver", now="2024-11-29T09:00:00-05:00")
    assert r.exit_code == 0, r.stderr
    r = run("jobs", "deliver", now="2024-11-29T10:00:00-05:00")
    assert r.exit_code == 0, r.stderr
    apologies = [m for m in smtp.messages if m.subject == "Re: Invoice Issue - Sarah Chen Contract"]
    assert len(apologies) == 1
    assert len(smtp.messages) == 3          # + the two queued notifications, once each
    assert len(events(run, "activity.email_sent")) == 1
    assert inbox(run, JOHN).count("Manager sent email to client") == 1
    assert outbox_rows(run) == []
    assert [x for x in outbox_rows(run, "--failed") if x["channel"] == "email"] == []


def test_outbox_retry_forces_an_attempt(run, demo, smtp):
    claimed(run)
    smtp.stop()
    run("email", CODE, *APOLOGY, user=SARAH, now=EMAILED)
    [row] = [x for x in outbox_rows(run, "--failed") if x["subject"].startswith("Re: Invoice")]
    r = run("outbox", "retry", row["id"], user=SARAH, now=EMAILED)
    assert r.exit_code == 1
    assert r.stderr.startswith("Error: Failed to send email. Please try again. (SMTP server")
    smtp.start()
    r = run("outbox", "retry", row["id"], user=SARAH, now=EMAILED)
    assert (r.exit_code, r.stdout) == (0, f"Outbox #{row['id']}: sent ✓\n")
    r = run("outbox", "retry", row["id"], user=SARAH, now=EMAILED)
    assert r.exit_code == 1
    assert r.stderr == f"Error: Outbox message #{row['id']} was already sent (Nov 29, 2024 8:15 AM)\n"
    r = run("outbox", "retry", "9999", user=SARAH)
    assert (r.exit_code, r.stderr) == (3, "Error: Outbox message #9999 not found or you don't "
                                          "have access\n")
    assert len([m for m in smtp.messages if m.subject.startswith("Re: Invoice")]) == 1


def test_refused_recipient_recorded_on_contact_and_escalation(run, demo, smtp):
    claimed(run)
    smtp.refuse(JANE)
    r = run("email", CODE, *APOLOGY, user=SARAH, now=EMAILED)
    assert r.exit_code == 1
    assert r.stderr == ("Error: Unable to reach client. Please try alternate contact. Other "
                        "contacts at Google Inc.: Tom Lee <tom.lee@google.com> "
                        "(Procurement Lead, +16505550102)\n")
    [(when, reason)] = sql(run, "SELECT unreachable_at, unreachable_reason FROM contact WHERE email = ?", JANE)
    assert when is not None and reason.startswith("550 5.1.1 <jane@google.com>")
    failed = [a for a in timeline(run) if a["type"] == "delivery_failed"]
    assert len(failed) == 1 and failed[0]["subject"] == "Unable to reach client"
    assert "Tom Lee <tom.lee@google.com>" in failed[0]["body"]
    [bounce] = events(run, "activity.email_bounced")
    assert bounce["to"] == JANE and bounce["code"] == 550 and bounce["contact_id"] == JANE
    assert events(run, "activity.email_sent") == []
    assert any(m.startswith("Unable to reach client. Please try alternate contact.")
               for m in inbox(run, SARAH))
    [row] = [x for x in outbox_rows(run, "--failed") if x["subject"].startswith("Re: Invoice")]
    assert row["status"] == "dead"
    # the alternate contact
    r = run("email", CODE, *APOLOGY, "--to", "tom.lee@google.com", "--var", "first_name=Tom",
            user=SARAH, now="2024-11-29T08:20:00-05:00")
    assert r.exit_code == 0, r.stderr
    assert smtp.to("tom.lee@google.com")[0].message["To"] == "Tom Lee <tom.lee@google.com>"
    assert smtp.to("tom.lee@google.com")[0].text().startswith("Hi Tom,")
    [sent] = events(run, "activity.email_sent")
    assert sent["to"] == "tom.lee@google.com"


def test_a_client_refused_for_now_is_retried_and_nobody_gets_it_twice(run, demo, smtp):
    """Greylisting (450 on RCPT) is not a bounce: the client is not marked unreachable, the
    message stays queued, and the retry goes to the client alone (the reporter, CC, and the
    sender, BCC, had it already)."""
    def copies(address):
        return len([m for m in smtp.to(address) if m.subject.startswith("Re: Invoice")])

    claimed(run)
    smtp.refuse(JANE, "450 4.2.0 <{a}>: Recipient address rejected: Greylisted, try later")
    r = run("email", CODE, *APOLOGY, user=SARAH, now=EMAILED)
    assert (r.exit_code, r.stderr) == (1, "Error: Failed to send email. Please try again.\n")
    assert smtp.to(JANE) == []
    assert copies("john.smith@intime.com") == 1
    assert copies("sarah.martinez@intime.com") == 1
    [(when,)] = sql(run, "SELECT unreachable_at FROM contact WHERE email = ?", JANE)
    assert when is None
    assert events(run, "activity.email_bounced") == []
    [row] = [x for x in outbox_rows(run, "--failed") if x["subject"].startswith("Re: Invoice")]
    assert row["status"] == "failed" and "refused for now" in row["last_error"]
    assert events(run, "activity.email_sent") == []

    smtp.handler.refuse.clear()
    r = run("jobs", "deliver", user="admin", now="2024-11-29T08:30:00-05:00")
    assert r.exit_code == 0, r.stderr
    [got] = smtp.to(JANE)
    assert got.rcpt_tos == [JANE]                      # the client alone
    assert got.message["Cc"] and "john.smith@intime.com" in got.message["Cc"]   # headers kept
    assert copies("john.smith@intime.com") == 1  # not twice
    assert copies("sarah.martinez@intime.com") == 1
    [sent] = events(run, "activity.email_sent")
    assert sent["to"] == JANE
    r = run("jobs", "deliver", user="admin", now="2024-11-29T09:30:00-05:00")
    assert r.exit_code == 0 and copies(JANE) == 1


def test_a_retry_after_a_bounce_never_resends_to_those_who_had_it(run, demo, smtp):
    def copies(address):
        return len([m for m in smtp.to(address) if m.subject.startswith("Re: Invoice")])

    claimed(run)
    smtp.refuse(JANE)
    r = run("email", CODE, *APOLOGY, user=SARAH, now=EMAILED)
    assert r.exit_code == 1 and "Unable to reach client" in r.stderr
    [row] = [x for x in outbox_rows(run, "--failed") if x["subject"].startswith("Re: Invoice")]
    assert row["status"] == "dead"
    r = run("outbox", "retry", row["id"], user=SARAH, now="2024-11-29T08:20:00-05:00")
    [again] = [x for x in outbox_rows(run, "--all") if x["id"] == row["id"]]
    assert again["status"] == "dead"             # the client never had it: not "sent"
    assert copies("john.smith@intime.com") == 1
    assert copies("sarah.martinez@intime.com") == 1
    # the client's mailbox is fixed: a retry by hand reaches the client, and only the client
    smtp.handler.refuse.clear()
    r = run("outbox", "retry", row["id"], user=SARAH, now="2024-11-29T08:25:00-05:00")
    assert r.exit_code == 0, r.stderr
    assert copies(JANE) == 1 and smtp.to(JANE)[0].rcpt_tos == [JANE]
    assert copies("john.smith@intime.com") == 1 and copies("sarah.martinez@intime.com") == 1


# -- step 7 and 12: tasks -------------------------------------------------------------------

def test_step7_task_for_finance_and_step12_done(run, demo, smtp):
    claimed(run)
    description = ("Please issue a corrected invoice for Google Inc.:\n\nOriginal (INCORRECT):\n"
                   "- Bill Rate: $120/hr\n\nURGENT: Client expects corrected invoice today.")
    r = run("task", CODE, "--title", "Issue corrected invoice for Google - Sarah Chen placement",
            "--assign", "Finance Team", "--due", "today 17:00", "--priority", "high",
            "--description", "-", input=description, user=SARAH, now="2024-11-29T08:20:00-05:00")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "Task created and assigned to Finance ✓ (#1, due Nov 29, 2024 5:00 PM EST)\n"
    [got] = smtp.to("finance@intime.com")
    assert got.rcpt_tos == ["finance@intime.com"]
    assert got.subject == ("[HIGH] Task: Issue corrected invoice for Google - Sarah Chen "
                           "placement (due Nov 29, 2024 5:00 PM EST)")
    assert "URGENT: Client expects corrected invoice today." in got.text()
    assert got.message["References"] == ROOT
    [created] = events(run, "task.created")
    assert created["task_title"] == "Issue corrected invoice for Google - Sarah Chen placement"
    assert created["assigned_to"] == "finance" and created["escalation_id"] == CODE
    assert created["due_date"] == "2024-11-29T22:00:00+00:00"
    assert any(a["type"] == "task" for a in timeline(run))
    assert any(m.startswith("Sarah Martinez assigned a task to Finance Team: Issue corrected")
               for m in inbox(run, MARIA))
    mine = json.loads(run("task", "list", "--mine", "--format", "json", user=MARIA).stdout)
    assert [t["id"] for t in mine] == [1] and mine[0]["assignee"] == "finance"
    team = json.loads(run("task", "list", "--team", "finance", "--format", "json", user=SARAH).stdout)
    assert [t["title"] for t in team] == ["Issue corrected invoice for Google - Sarah Chen placement"]
    late = run("task", "list", "--overdue", "--format", "json", user=MARIA, now="2024-11-29T17:30:00-05:00")
    assert [t["overdue"] for t in json.loads(late.stdout)] == [True]
    assert json.loads(run("task", "list", "--overdue", "--format", "json", user=MARIA,
                          now="2024-11-29T16:00:00-05:00").stdout) == []
    # step 12: Finance completes it; the owner is told
    r = run("task", "done", "1", "--note", "Corrected invoice sent to Google", user=MARIA,
            now="2024-11-29T16:30:00-05:00")
    assert (r.exit_code, r.stdout) == (0, "Task completed: Corrected invoice sent to Google (#1)\n")
    assert "Task completed: Corrected invoice sent to Google" in inbox(run, SARAH)
    [note] = smtp.to("sarah.martinez@intime.com")
    assert note.subject == "Task completed: Corrected invoice sent to Google"
    [done] = events(run, "task.completed")
    assert done["completed_by"] == MARIA and done["task_id"] == 1
    r = run("task", "done", "1", user=MARIA)
    assert (r.exit_code, r.stderr) == (1, "Error: Task #1 is already done\n")
    assert json.loads(run("task", "list", "--mine", "--format", "json", user=MARIA).stdout) == []


def test_task_assignee_errors(run, demo, smtp, snap):
    claimed(run)
    assert run("team", "add", "legal", "--name", "Legal Team", user="admin").exit_code == 0
    before = snap()
    r = run("task", CODE, "--title", "Review", "--assign", "nobody", "--due", "today 17:00",
            user=SARAH, now=EMAILED)
    assert (r.exit_code, r.stderr) == (1, "Error: Invalid assignee\n")
    r = run("task", CODE, "--title", "Review", "--assign", "legal", "--due", "today 17:00",
            user=SARAH, now=EMAILED)
    assert (r.exit_code, r.stderr) == (1, "Error: Unable to assign task to Legal. Please contact Admin.\n")
    assert snap() == before
    smtp.refuse("finance@intime.com")
    r = run("task", CODE, "--title", "Issue corrected invoice", "--assign", "finance",
            "--due", "today 17:00", user=SARAH, now=EMAILED)
    assert (r.exit_code, r.stderr) == (1, "Error: Unable to assign task to Finance. Please "
                                          "contact Admin. (Task #1 is recorded, but "
                                          "finance@intime.com refused its email.)\n")
    # running it again does not make a second task
    again = snap()
    r = run("task", CODE, "--title", "Issue corrected invoice", "--assign", "finance",
            "--due", "today 17:00", user=SARAH, now=EMAILED)
    assert (r.exit_code, r.stderr) == (4, "Error: Task #1 \"Issue corrected invoice\" for "
                                          "Finance Team is already open\n")
    assert snap() == again
    # the user task goes to the person, by email and in-app
    r = run("task", CODE, "--title", "Call the candidate", "--assign", JOHN,
            "--due", "tomorrow 9am", user=SARAH, now=EMAILED)
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "Task created and assigned to John Smith ✓ (#2, due Nov 30, 2024 9:00 AM EST)\n"
    assert smtp.to("john.smith@intime.com")[0].subject == "Task: Call the candidate (due Nov 30, 2024 9:00 AM EST)"


# -- step 8: calls --------------------------------------------------------------------------

def _invite(received):
    part = received.part("text/calendar")
    assert part is not None
    cal = icalendar.Calendar.from_ical(part.get_content())
    [event] = cal.walk("VEVENT")
    return part, cal, event


def test_call_invite_refused_by_the_client_is_said_not_hidden(run, demo, smtp):
    claimed(run)
    smtp.refuse(JANE)
    r = run("call", "schedule", CODE, "--at", "2024-11-29 09:00", "--duration", "30",
            "--agenda", "Invoice", user=SARAH, now="2024-11-29T08:25:00-05:00")
    assert r.exit_code == 1
    assert r.stdout == ("Call scheduled for 9:00 AM ✓ (#1, Fri, Nov 29, 2024 9:00 AM EST; "
                        "invite sent to john.smith@intime.com)\n")
    assert r.stderr == ("Error: Unable to reach client. Please try alternate contact. Other "
                        "contacts at Google Inc.: Tom Lee <tom.lee@google.com> "
                        "(Procurement Lead, +16505550102)\n")
    [got] = smtp.messages
    assert got.rcpt_tos == ["john.smith@intime.com"]
    [(when,)] = sql(run, "SELECT unreachable_at FROM contact WHERE email = ?", JANE)
    assert when is not None
    # running it again does not schedule a second call nor send a second invite
    r = run("call", "schedule", CODE, "--at", "2024-11-29 09:00", "--duration", "30",
            "--agenda", "Invoice", user=SARAH, now="2024-11-29T08:26:00-05:00")
    assert (r.exit_code, r.stderr) == (4, "Error: Call #1 is already scheduled for Fri, Nov 29, "
                                          "2024 9:00 AM EST\n")
    assert len(smtp.messages) == 1


def test_step8_call_invite_reminder_reschedule_cancel(run, demo, smtp):
    claimed(run)
    agenda = "1. Apologize for invoice error\n2. Confirm corrected invoice received"
    r = run("call", "schedule", CODE, "--at", "2024-11-29 09:00", "--duration", "30",
            "--type", "phone", "--agenda", "-", input=agenda, user=SARAH,
            now="2024-11-29T08:25:00-05:00")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ("Call scheduled for 9:00 AM ✓ (#1, Fri, Nov 29, 2024 9:00 AM EST; "
                        "invite sent to jane@google.com, john.smith@intime.com)\n")
    [got] = smtp.messages
    assert sorted(got.rcpt_tos) == ["jane@google.com", "john.smith@intime.com"]
    part, cal, event = _invite(got)
    assert part.get_param("method") == "REQUEST"
    assert str(cal["METHOD"]) == "REQUEST"
    uid = str(event["UID"])
    assert event["SEQUENCE"] == 0
    start = event.decoded("DTSTART")
    assert str(start.tzinfo) == "America/New_York" and start.isoformat() == "2024-11-29T09:00:00-05:00"
    assert event["DTSTART"].params["TZID"] == "America/New_York"
    assert event.decoded("DTEND").isoformat() == "2024-11-29T09:30:00-05:00"
    assert str(event["ORGANIZER"]) == "mailto:sarah.martinez@intime.com"
    assert event["ORGANIZER"].params["CN"] == "Sarah Martinez"
    attendees = sorted(str(a) for a in event["ATTENDEE"])
    assert attendees == ["mailto:jane@google.com", "mailto:john.smith@intime.com"]
    [alarm] = event.walk("VALARM")
    assert alarm.decoded("TRIGGER").total_seconds() == -15 * 60
    assert cal.walk("VTIMEZONE")[0]["TZID"] == "America/New_York"
    assert str(event["DESCRIPTION"]) == agenda
    assert [p.get_filename() for p in got.message.iter_attachments()] == ["invite.ics"]
    assert "Apologize for invoice error" in got.text() and got.text("text/html")
    [scheduled] = events(run, "meeting.scheduled")
    assert scheduled["uid"] == uid and scheduled["starts_at"] == "2024-11-29T14:00:00+00:00"
    assert any(a["type"] == "meeting" and a["subject"] == "Call scheduled for 9:00 AM"
               for a in timeline(run))
    # the reminder: 15 minutes before, to the organizer, by email and in-app
    def reminders():
        return [m for m in smtp.messages if m.subject.startswith("Reminder")]
    assert run("jobs", "deliver", now="2024-11-29T08:40:00-05:00").exit_code == 0
    assert reminders() == []
    assert run("jobs", "deliver", now="2024-11-29T08:45:00-05:00").exit_code == 0
    [reminder] = reminders()
    assert reminder.rcpt_tos == ["sarah.martinez@intime.com"]
    assert reminder.subject == "Reminder: phone call with Jane Doe at 9:00 AM"
    assert "Reminder: call with Jane Doe at 9:00 AM (in 15 minutes)" in inbox(run, SARAH)
    # reschedule: same UID, higher SEQUENCE, new time; the old reminder is gone
    r = run("call", "reschedule", "1", "--at", "2024-11-29 10:00", user=SARAH,
            now="2024-11-29T08:50:00-05:00")
    assert (r.exit_code, r.stdout) == (0, "Call #1 moved to Fri, Nov 29, 2024 10:00 AM EST ✓\n")
    update = smtp.messages[-1]
    assert update.subject.startswith("Updated invitation: ")
    _, cal, event = _invite(update)
    assert str(event["UID"]) == uid and event["SEQUENCE"] == 1 and str(cal["METHOD"]) == "REQUEST"
    assert event.decoded("DTSTART").isoformat() == "2024-11-29T10:00:00-05:00"
    before = len(smtp.messages)
    assert run("jobs", "deliver", now="2024-11-29T09:45:00-05:00").exit_code == 0
    assert [m.subject for m in smtp.messages[before:]] == ["Reminder: phone call with Jane Doe at 10:00 AM"]
    # cancel: METHOD:CANCEL, same UID, higher SEQUENCE
    r = run("call", "cancel", "1", "--reason", "Client confirmed by email", user=SARAH,
            now="2024-11-29T09:50:00-05:00")
    assert (r.exit_code, r.stdout) == (0, "Call #1 cancelled ✓\n")
    part, cal, event = _invite(smtp.messages[-1])
    assert part.get_param("method") == "CANCEL" and str(cal["METHOD"]) == "CANCEL"
    assert str(event["UID"]) == uid and event["SEQUENCE"] == 2
    assert str(event["STATUS"]) == "CANCELLED"
    r = run("call", "cancel", "1", user=SARAH)
    assert (r.exit_code, r.stderr) == (1, "Error: Call #1 is cancelled\n")


def test_call_in_the_past_and_no_invite(run, demo, smtp, snap):
    claimed(run)
    before = snap()
    r = run("call", "schedule", CODE, "--at", "2024-11-29 07:00", user=SARAH, now=EMAILED)
    assert (r.exit_code, r.stderr) == (1, "Error: The call must be in the future\n")
    r = run("call", "schedule", CODE, "--at", "not a time at all", user=SARAH, now=EMAILED)
    assert r.exit_code == 2
    assert snap() == before
    r = run("call", "schedule", CODE, "--at", "tomorrow 9am", "--no-invite", user=SARAH, now=EMAILED)
    assert r.exit_code == 0, r.stderr
    assert r.stdout == "Call scheduled for 9:00 AM ✓ (#1, Sat, Nov 30, 2024 9:00 AM EST)\n"
    assert smtp.messages == []


# -- step 9: message the IC -----------------------------------------------------------------

def test_step9_message_reporter_with_one_on_one(run, demo, smtp):
    claimed(run)
    text = ("Hi John,\n\nI've handled the Google rate issue - here's the update:\n\n"
            "Great job escalating this quickly. You did the right thing.\n\n- Sarah")
    r = run("message", CODE, "-", "--tone", "professional", "--one-on-one", "tomorrow",
            "--topic", "Contract Management Process Review", input=text, user=SARAH,
            now="2024-11-29T08:30:00-05:00")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ("Message sent to John ✓\n1:1 task #1 created: 1:1 with John - Contract "
                        "Management Process Review (due Nov 30, 2024 8:30 AM EST)\n")
    [got] = smtp.messages
    assert got.rcpt_tos == ["john.smith@intime.com"]
    assert got.subject == "Update on ESC-2024-11-28-001: Unauthorized Rate Increase"
    assert got.text().startswith(text)
    assert got.message["Reply-To"] == "Sarah Martinez <sarah.martinez@intime.com>"
    assert any(m.startswith("Message from Sarah Martinez on ESC-2024-11-28-001: Hi John,")
               for m in inbox(run, JOHN))
    [task] = json.loads(run("task", "list", "--mine", "--format", "json", user=SARAH).stdout)
    assert task["title"] == "1:1 with John - Contract Management Process Review"
    [sent] = events(run, "activity.message_sent")
    assert sent["to"] == JOHN and sent["tone"] == "professional"
    [created] = events(run, "task.created")
    assert created["assigned_to"] == SARAH
    r = run("message", CODE, "hello", user=JOHN)
    assert r.exit_code == 1


# -- step 10: log the call ------------------------------------------------------------------

def test_step10_call_logged_and_linked(run, demo, smtp):
    claimed(run)
    run("call", "schedule", CODE, "--at", "2024-11-29 09:00", user=SARAH, now="2024-11-29T08:25:00-05:00")
    summary = "Client accepted apology. Confirmed:\n- Satisfied with Sarah Chen's performance"
    r = run("call", "log", CODE, "--duration", "15", "--outcome", "positive", "--summary", "-",
            input=summary, user=SARAH, now="2024-11-29T09:16:00-05:00")
    assert (r.exit_code, r.stdout) == (0, "Activity logged ✓\n")
    [logged] = events(run, "activity.call_logged")
    assert {k: logged[k] for k in ("contact_id", "duration", "outcome", "escalation_id")} == {
        "contact_id": JANE, "duration": 15, "outcome": "positive", "escalation_id": CODE}
    assert logged["meeting_id"] == 1
    [call] = [a for a in timeline(run) if a["type"] == "call" and a["actor"] == SARAH]
    assert call["subject"] == "Phone call with Jane Doe (15 min, positive)"
    assert call["body"] == summary
    calls = json.loads(run("call", "list", CODE, "--format", "json", user=SARAH).stdout)
    assert [c["status"] for c in calls] == ["done"]
    # the reminder of a call already logged is not sent
    assert run("jobs", "deliver", now="2024-11-29T09:20:00-05:00").exit_code == 0
    assert not [m for m in smtp.messages if m.subject.startswith("Reminder")]
    r = run("call", "log", CODE, "--duration", "15", "--outcome", "great", "--summary", "x", user=SARAH)
    assert r.exit_code == 2


# -- step 12: follow up after resolution ----------------------------------------------------

def test_step12_follow_up_email_after_resolution(run, demo, smtp):
    claimed(run)
    notes = ("Issue: client billed $120/hr instead of $110/hr. Corrected invoice issued, "
             "$500 credit, follow-up call done.")
    assert run("resolve", CODE, "--notes", notes, "--notify", "ic,coo", user=SARAH,
               now="2024-11-29T09:00:00-05:00").exit_code == 0
    r = run("email", CODE, "-t", "client-followup", user=SARAH, now="2024-12-06T10:00:00-05:00")
    assert r.exit_code == 0, r.stderr
    [got] = smtp.to(JANE)
    assert got.text().startswith("Hi Jane,\n\nJust confirming you received the corrected invoice.")
    assert got.message["References"] == ROOT


# -- SMS ------------------------------------------------------------------------------------

def test_critical_escalation_texts_the_pod_manager(run, demo, smtp, sms_gateway):
    r = run("jobs", "deliver", now="2024-11-28T23:48:00-05:00")     # the demo's own creation
    assert r.exit_code == 0, r.stderr
    r = run("create", "--title", "Candidate no-show at Google", "--category", "Candidate Issue",
            "--priority", "critical", "--account", "Google Inc.", "--description", "No-show",
            user=JOHN, now="2024-11-29T10:00:00-05:00")
    assert r.exit_code == 0, r.stderr
    # critical: the command itself delivers, before any 'jobs deliver' runs
    assert sms_gateway.received[-1]["message"] == ("URGENT: Candidate escalation from John "
                                                    "Smith. Login to handle.")
    assert [m.subject for m in smtp.to("sarah.martinez@intime.com")][-1].startswith("[URGENT]")
    r = run("create", "--title", "Minor", "--category", "Client Complaint", "--priority", "low",
            "--description", "Low priority: no SMS", user=JOHN, now="2024-11-29T10:01:00-05:00")
    assert run("jobs", "deliver", now="2024-11-29T10:02:00-05:00").exit_code == 0
    texts = [(s["to"], s["message"]) for s in sms_gateway.received]
    assert texts == [("+15550100001", "URGENT: Client escalation from John Smith. Login to handle."),
                     ("+15550100001", "URGENT: Candidate escalation from John Smith. Login to handle.")]
    assert run("jobs", "deliver", now="2024-11-29T11:00:00-05:00").exit_code == 0
    assert len(sms_gateway.received) == 2


def test_a_shell_without_the_sms_gateway_leaves_the_text_to_the_deliverer(run, demo, smtp,
                                                                          base_env):
    from smtp_server import SmsGateway
    r = run("create", "--title", "Candidate no-show at Google", "--category", "Candidate Issue",
            "--priority", "critical", "--description", "No-show", user=JOHN,
            now="2024-11-29T10:00:00-05:00")
    assert r.exit_code == 0, r.stderr
    assert any(m.subject.startswith("[URGENT]") for m in smtp.to("sarah.martinez@intime.com"))
    gateway = SmsGateway().start()          # the cron host has the gateway; the shell had not
    try:
        r = run("jobs", "deliver", now="2024-11-29T10:01:00-05:00",
                env={"ESCALATE_SMS_URL": gateway.url})
        assert r.exit_code == 0, r.stderr
        assert ("+15550100001", "URGENT: Candidate escalation from John Smith. Login to "
                                "handle.") in [(x["to"], x["message"]) for x in gateway.received]
    finally:
        gateway.stop()


def test_sms_gateway_down_is_retried(run, demo, base_env):
    base_env["ESCALATE_SMS_URL"] = "json://127.0.0.1:9/sms?:to={to}"
    base_env["ESCALATE_SMTP_PORT"] = "9"
    r = run("jobs", "deliver", now="2024-11-29T08:00:00-05:00")
    assert r.exit_code == 1
    [sms] = [x for x in outbox_rows(run, "--failed") if x["channel"] == "sms"]
    assert sms["status"] == "failed" and sms["last_error"].startswith("SMS to +15550100001 failed")
    assert "127.0.0.1:9/sms" not in sms["last_error"]


# -- internal notes never leave -------------------------------------------------------------

def test_internal_notes_never_in_any_outbound_message(run, demo, smtp, sms_gateway):
    secret = "ZZ-INTERNAL-ROOT-CAUSE-42"
    claimed(run)
    assert run("note", CODE, f"Root cause: {secret} IC used the wrong template", user=SARAH,
               now="2024-11-29T08:05:00-05:00").exit_code == 0
    steps = [
        ("email", CODE, *APOLOGY),
        ("task", CODE, "--title", "Issue corrected invoice", "--assign", "finance", "--due",
         "today 17:00", "--priority", "high"),
        ("call", "schedule", CODE, "--at", "2024-11-29 09:00"),
        ("message", CODE, "Great job escalating this quickly.", "--one-on-one", "tomorrow"),
        ("call", "log", CODE, "--duration", "15", "--outcome", "positive", "--summary", "Accepted."),
        ("task", "done", "1"),
        ("resolve", CODE, "--notify", "ic,coo,ceo", "--notes",
         "Corrected invoice issued, $500 credit, client accepted the apology on the call."),
        ("email", CODE, "-t", "client-followup"),
    ]
    for args in steps:
        r = run(*args, user=SARAH, now="2024-11-29T08:30:00-05:00")
        assert r.exit_code == 0, (args, r.stderr)
    run("jobs", "deliver", now="2024-11-29T12:00:00-05:00")
    assert len(smtp.messages) >= 8 and sms_gateway.received
    for m in smtp.messages:
        assert secret.encode() not in m.raw
        for part in m.message.walk():
            if not part.is_multipart():
                assert secret not in str(part.get_content()), m.subject
    for s in sms_gateway.received:
        assert secret not in json.dumps(s)


def test_comms_commands_have_help_with_examples():
    from click.testing import CliRunner

    from escalate_cli.cli import cli
    for path in (["email"], ["email", "new"], ["email", "send"], ["task"], ["task", "new"],
                 ["task", "list"], ["task", "done"], ["call"], ["call", "schedule"],
                 ["call", "reschedule"], ["call", "cancel"], ["call", "log"], ["call", "list"],
                 ["message"], ["outbox"], ["outbox", "retry"], ["outbox", "show"], ["jobs"],
                 ["jobs", "deliver"]):
        r = CliRunner().invoke(cli, path + ["--help"])
        assert r.exit_code == 0, path
        assert "Example" in r.output, path
