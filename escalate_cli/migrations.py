"""Versioned migrations: a plain list of named functions and a table of applied names.

Each migration runs in one transaction with its record, under a lock, so that two ``escalate
init`` at once, on one host or several, apply it once. Migrations never import the live
models: the schema of each version is frozen here as the SQL it was created with, per
dialect, so a database made by an older version upgrades in place with no row lost.
"""
import datetime as dt

MIGRATION_LOCK_ID = 0x45534331  # pg advisory lock key ("ESC1")

# -- frozen DDL (generated from the models of each version; never edit a released one) --

V1_SQLITE = [
    'CREATE TABLE "pod" ("id" INTEGER NOT NULL PRIMARY KEY, "name" VARCHAR(100) NOT NULL, "manager_id" INTEGER)',
    'CREATE UNIQUE INDEX "pod_name" ON "pod" ("name")',
    'CREATE INDEX "pod_manager_id" ON "pod" ("manager_id")',
    'CREATE TABLE "user" ("id" INTEGER NOT NULL PRIMARY KEY, "login" VARCHAR(100) NOT NULL, "name" VARCHAR(200) NOT NULL, "email" VARCHAR(320) NOT NULL, "phone" VARCHAR(50), "role" VARCHAR(20) NOT NULL, "title" VARCHAR(200), "pod_id" INTEGER, "active" INTEGER NOT NULL, "created_at" DATETIME NOT NULL, FOREIGN KEY ("pod_id") REFERENCES "pod" ("id") ON DELETE SET NULL)',
    'CREATE UNIQUE INDEX "user_login" ON "user" ("login")',
    'CREATE INDEX "user_pod_id" ON "user" ("pod_id")',
    'CREATE TABLE "team" ("id" INTEGER NOT NULL PRIMARY KEY, "key" VARCHAR(100) NOT NULL, "name" VARCHAR(200) NOT NULL, "email" VARCHAR(320), "active" INTEGER NOT NULL)',
    'CREATE UNIQUE INDEX "team_key" ON "team" ("key")',
    'CREATE TABLE "team_member" ("id" INTEGER NOT NULL PRIMARY KEY, "team_id" INTEGER NOT NULL, "user_id" INTEGER NOT NULL, FOREIGN KEY ("team_id") REFERENCES "team" ("id") ON DELETE CASCADE, FOREIGN KEY ("user_id") REFERENCES "user" ("id") ON DELETE CASCADE)',
    'CREATE INDEX "team_member_team_id" ON "team_member" ("team_id")',
    'CREATE INDEX "team_member_user_id" ON "team_member" ("user_id")',
    'CREATE UNIQUE INDEX "team_member_team_id_user_id" ON "team_member" ("team_id", "user_id")',
    'CREATE TABLE "account" ("id" INTEGER NOT NULL PRIMARY KEY, "name" VARCHAR(200) NOT NULL, "strategic" INTEGER NOT NULL, "annual_revenue" DECIMAL(14, 2))',
    'CREATE UNIQUE INDEX "account_name" ON "account" ("name")',
    'CREATE TABLE "contact" ("id" INTEGER NOT NULL PRIMARY KEY, "account_id" INTEGER NOT NULL, "name" VARCHAR(200) NOT NULL, "email" VARCHAR(320) NOT NULL, "phone" VARCHAR(50), "title" VARCHAR(200), "unreachable_at" DATETIME, "unreachable_reason" TEXT, FOREIGN KEY ("account_id") REFERENCES "account" ("id") ON DELETE CASCADE)',
    'CREATE INDEX "contact_account_id" ON "contact" ("account_id")',
    'CREATE UNIQUE INDEX "contact_email" ON "contact" ("email")',
    'CREATE TABLE "contract" ("id" INTEGER NOT NULL PRIMARY KEY, "code" VARCHAR(100) NOT NULL, "account_id" INTEGER NOT NULL, "candidate" VARCHAR(200) NOT NULL, "title" VARCHAR(200), "bill_rate" DECIMAL(14, 2) NOT NULL, "pay_rate" DECIMAL(14, 2) NOT NULL, "start_date" DATE NOT NULL, "end_date" DATE, FOREIGN KEY ("account_id") REFERENCES "account" ("id") ON DELETE CASCADE)',
    'CREATE UNIQUE INDEX "contract_code" ON "contract" ("code")',
    'CREATE INDEX "contract_account_id" ON "contract" ("account_id")',
    'CREATE TABLE "escalation" ("id" INTEGER NOT NULL PRIMARY KEY, "code" VARCHAR(32) NOT NULL, "day" DATE NOT NULL, "seq" INTEGER NOT NULL, "title" VARCHAR(300) NOT NULL, "category" VARCHAR(100) NOT NULL, "subcategory" VARCHAR(100), "priority" VARCHAR(10) NOT NULL, "priority_rank" INTEGER NOT NULL, "impact" VARCHAR(20) NOT NULL, "impact_reason" TEXT, "status" VARCHAR(20) NOT NULL, "substate" VARCHAR(100), "reporter_id" INTEGER NOT NULL, "pod_id" INTEGER, "owner_id" INTEGER, "account_id" INTEGER, "contact_id" INTEGER, "contract_id" INTEGER, "description" TEXT NOT NULL, "assessment" TEXT, "created_at" DATETIME NOT NULL, "claimed_at" DATETIME, "escalated_at" DATETIME, "escalated_to" VARCHAR(10), "resolved_at" DATETIME, "resolved_by_id" INTEGER, "resolution_notes" TEXT, "resolution_seconds" INTEGER, "resolved_by_ic" INTEGER NOT NULL, "approval" VARCHAR(20), "approved_by_id" INTEGER, "approved_at" DATETIME, "policy_version" VARCHAR(50) NOT NULL, "response_due" DATETIME, "resolution_due" DATETIME, "paused_seconds" INTEGER NOT NULL, "paused_wall_seconds" INTEGER NOT NULL, "hold_started_at" DATETIME, "hold_until" DATETIME, "hold_reason" TEXT, "last_action" VARCHAR(100), "last_action_at" DATETIME, "idempotency_key" VARCHAR(200), "source" VARCHAR(50) NOT NULL, "source_key" VARCHAR(200), "version" INTEGER NOT NULL, "updated_at" DATETIME NOT NULL, FOREIGN KEY ("reporter_id") REFERENCES "user" ("id") ON DELETE RESTRICT, FOREIGN KEY ("pod_id") REFERENCES "pod" ("id") ON DELETE SET NULL, FOREIGN KEY ("owner_id") REFERENCES "user" ("id") ON DELETE SET NULL, FOREIGN KEY ("account_id") REFERENCES "account" ("id") ON DELETE SET NULL, FOREIGN KEY ("contact_id") REFERENCES "contact" ("id") ON DELETE SET NULL, FOREIGN KEY ("contract_id") REFERENCES "contract" ("id") ON DELETE SET NULL, FOREIGN KEY ("resolved_by_id") REFERENCES "user" ("id") ON DELETE SET NULL, FOREIGN KEY ("approved_by_id") REFERENCES "user" ("id") ON DELETE SET NULL)',
    'CREATE UNIQUE INDEX "escalation_code" ON "escalation" ("code")',
    'CREATE INDEX "escalation_reporter_id" ON "escalation" ("reporter_id")',
    'CREATE INDEX "escalation_pod_id" ON "escalation" ("pod_id")',
    'CREATE INDEX "escalation_owner_id" ON "escalation" ("owner_id")',
    'CREATE INDEX "escalation_account_id" ON "escalation" ("account_id")',
    'CREATE INDEX "escalation_contact_id" ON "escalation" ("contact_id")',
    'CREATE INDEX "escalation_contract_id" ON "escalation" ("contract_id")',
    'CREATE INDEX "escalation_resolved_by_id" ON "escalation" ("resolved_by_id")',
    'CREATE INDEX "escalation_approved_by_id" ON "escalation" ("approved_by_id")',
    'CREATE UNIQUE INDEX "escalation_idempotency_key" ON "escalation" ("idempotency_key")',
    'CREATE UNIQUE INDEX "escalation_source_key" ON "escalation" ("source_key")',
    'CREATE UNIQUE INDEX "escalation_day_seq" ON "escalation" ("day", "seq")',
    'CREATE INDEX "escalation_pod_id_status_priority_rank_created_at" ON "escalation" ("pod_id", "status", "priority_rank", "created_at")',
    'CREATE INDEX "escalation_owner_id_status" ON "escalation" ("owner_id", "status")',
    'CREATE INDEX "escalation_reporter_id_status" ON "escalation" ("reporter_id", "status")',
    'CREATE INDEX "escalation_account_id_created_at" ON "escalation" ("account_id", "created_at")',
    'CREATE INDEX "escalation_status_priority_rank_created_at" ON "escalation" ("status", "priority_rank", "created_at")',
    'CREATE INDEX "escalation_hold_until" ON "escalation" ("hold_until")',
    'CREATE TABLE "consulted" ("id" INTEGER NOT NULL PRIMARY KEY, "escalation_id" INTEGER NOT NULL, "user_id" INTEGER NOT NULL, "added_at" DATETIME NOT NULL, FOREIGN KEY ("escalation_id") REFERENCES "escalation" ("id") ON DELETE CASCADE, FOREIGN KEY ("user_id") REFERENCES "user" ("id") ON DELETE CASCADE)',
    'CREATE INDEX "consulted_escalation_id" ON "consulted" ("escalation_id")',
    'CREATE INDEX "consulted_user_id" ON "consulted" ("user_id")',
    'CREATE UNIQUE INDEX "consulted_escalation_id_user_id" ON "consulted" ("escalation_id", "user_id")',
    'CREATE TABLE "sla_clock" ("id" INTEGER NOT NULL PRIMARY KEY, "escalation_id" INTEGER NOT NULL, "kind" VARCHAR(12) NOT NULL, "started_at" DATETIME NOT NULL, "warn_at" DATETIME, "due_at" DATETIME, "next_check_at" DATETIME, "stopped_at" DATETIME, "met" INTEGER, "warned_at" DATETIME, "breached_at" DATETIME, FOREIGN KEY ("escalation_id") REFERENCES "escalation" ("id") ON DELETE CASCADE)',
    'CREATE INDEX "sla_clock_escalation_id" ON "sla_clock" ("escalation_id")',
    'CREATE UNIQUE INDEX "sla_clock_escalation_id_kind" ON "sla_clock" ("escalation_id", "kind")',
    'CREATE INDEX "sla_clock_next_check_at" ON "sla_clock" ("next_check_at")',
    'CREATE INDEX "sla_clock_breached_at" ON "sla_clock" ("breached_at")',
    'CREATE TABLE "activity" ("id" INTEGER NOT NULL PRIMARY KEY, "escalation_id" INTEGER NOT NULL, "type" VARCHAR(30) NOT NULL, "internal" INTEGER NOT NULL, "direction" VARCHAR(10), "subject" TEXT, "body" TEXT, "actor_id" INTEGER, "occurred_at" DATETIME NOT NULL, "created_at" DATETIME NOT NULL, "meta" TEXT, FOREIGN KEY ("escalation_id") REFERENCES "escalation" ("id") ON DELETE CASCADE, FOREIGN KEY ("actor_id") REFERENCES "user" ("id") ON DELETE SET NULL)',
    'CREATE INDEX "activity_escalation_id" ON "activity" ("escalation_id")',
    'CREATE INDEX "activity_actor_id" ON "activity" ("actor_id")',
    'CREATE INDEX "activity_escalation_id_occurred_at" ON "activity" ("escalation_id", "occurred_at")',
    'CREATE TABLE "attachment" ("id" INTEGER NOT NULL PRIMARY KEY, "escalation_id" INTEGER NOT NULL, "name" VARCHAR(255) NOT NULL, "content_type" VARCHAR(200) NOT NULL, "size" INTEGER NOT NULL, "sha256" VARCHAR(64) NOT NULL, "data" BLOB NOT NULL, "uploaded_by_id" INTEGER, "created_at" DATETIME NOT NULL, FOREIGN KEY ("escalation_id") REFERENCES "escalation" ("id") ON DELETE CASCADE, FOREIGN KEY ("uploaded_by_id") REFERENCES "user" ("id") ON DELETE SET NULL)',
    'CREATE INDEX "attachment_escalation_id" ON "attachment" ("escalation_id")',
    'CREATE INDEX "attachment_uploaded_by_id" ON "attachment" ("uploaded_by_id")',
    'CREATE TABLE "notification" ("id" INTEGER NOT NULL PRIMARY KEY, "user_id" INTEGER NOT NULL, "escalation_id" INTEGER, "kind" VARCHAR(50) NOT NULL, "message" TEXT NOT NULL, "created_at" DATETIME NOT NULL, "read_at" DATETIME, "dedupe_key" VARCHAR(300), FOREIGN KEY ("user_id") REFERENCES "user" ("id") ON DELETE CASCADE, FOREIGN KEY ("escalation_id") REFERENCES "escalation" ("id") ON DELETE CASCADE)',
    'CREATE INDEX "notification_user_id" ON "notification" ("user_id")',
    'CREATE INDEX "notification_escalation_id" ON "notification" ("escalation_id")',
    'CREATE UNIQUE INDEX "notification_dedupe_key" ON "notification" ("dedupe_key")',
    'CREATE INDEX "notification_user_id_read_at_created_at" ON "notification" ("user_id", "read_at", "created_at")',
    'CREATE TABLE "event" ("id" INTEGER NOT NULL PRIMARY KEY, "name" VARCHAR(100) NOT NULL, "escalation_id" INTEGER, "actor_id" INTEGER, "payload" TEXT NOT NULL, "created_at" DATETIME NOT NULL, "dedupe_key" VARCHAR(300), FOREIGN KEY ("escalation_id") REFERENCES "escalation" ("id") ON DELETE SET NULL, FOREIGN KEY ("actor_id") REFERENCES "user" ("id") ON DELETE SET NULL)',
    'CREATE INDEX "event_escalation_id" ON "event" ("escalation_id")',
    'CREATE INDEX "event_actor_id" ON "event" ("actor_id")',
    'CREATE UNIQUE INDEX "event_dedupe_key" ON "event" ("dedupe_key")',
    'CREATE TABLE "code_counter" ("day" DATE NOT NULL PRIMARY KEY, "last" INTEGER NOT NULL)',
]

V2_SQLITE = [
    'CREATE TABLE "outbox" ("id" INTEGER NOT NULL PRIMARY KEY, "key" VARCHAR(300) NOT NULL, "channel" VARCHAR(10) NOT NULL, "escalation_id" INTEGER, "author_id" INTEGER, "recipients" TEXT NOT NULL, "subject" TEXT, "body_text" TEXT, "body_html" TEXT, "context" TEXT, "headers" TEXT, "parts" TEXT, "template" VARCHAR(100), "status" VARCHAR(12) NOT NULL, "attempts" INTEGER NOT NULL, "next_attempt_at" DATETIME, "lease_until" DATETIME, "lease_owner" VARCHAR(100), "last_error" TEXT, "message_id" VARCHAR(300), "not_before" DATETIME, "created_at" DATETIME NOT NULL, "sent_at" DATETIME, FOREIGN KEY ("escalation_id") REFERENCES "escalation" ("id") ON DELETE SET NULL, FOREIGN KEY ("author_id") REFERENCES "user" ("id") ON DELETE SET NULL)',
    'CREATE UNIQUE INDEX "outbox_key" ON "outbox" ("key")',
    'CREATE INDEX "outbox_escalation_id" ON "outbox" ("escalation_id")',
    'CREATE INDEX "outbox_author_id" ON "outbox" ("author_id")',
    'CREATE INDEX "outbox_status_next_attempt_at" ON "outbox" ("status", "next_attempt_at")',
    'CREATE TABLE "task" ("id" INTEGER NOT NULL PRIMARY KEY, "escalation_id" INTEGER, "title" VARCHAR(300) NOT NULL, "description" TEXT, "assignee_user_id" INTEGER, "assignee_team_id" INTEGER, "due_at" DATETIME, "priority" VARCHAR(10) NOT NULL, "status" VARCHAR(10) NOT NULL, "created_by_id" INTEGER, "created_at" DATETIME NOT NULL, "done_at" DATETIME, "done_by_id" INTEGER, FOREIGN KEY ("escalation_id") REFERENCES "escalation" ("id") ON DELETE CASCADE, FOREIGN KEY ("assignee_user_id") REFERENCES "user" ("id") ON DELETE SET NULL, FOREIGN KEY ("assignee_team_id") REFERENCES "team" ("id") ON DELETE SET NULL, FOREIGN KEY ("created_by_id") REFERENCES "user" ("id") ON DELETE SET NULL, FOREIGN KEY ("done_by_id") REFERENCES "user" ("id") ON DELETE SET NULL)',
    'CREATE INDEX "task_escalation_id" ON "task" ("escalation_id")',
    'CREATE INDEX "task_assignee_user_id" ON "task" ("assignee_user_id")',
    'CREATE INDEX "task_assignee_team_id" ON "task" ("assignee_team_id")',
    'CREATE INDEX "task_created_by_id" ON "task" ("created_by_id")',
    'CREATE INDEX "task_done_by_id" ON "task" ("done_by_id")',
    'CREATE INDEX "task_assignee_user_id_status_due_at" ON "task" ("assignee_user_id", "status", "due_at")',
    'CREATE INDEX "task_assignee_team_id_status_due_at" ON "task" ("assignee_team_id", "status", "due_at")',
    'CREATE INDEX "task_status_due_at" ON "task" ("status", "due_at")',
    'CREATE TABLE "meeting" ("id" INTEGER NOT NULL PRIMARY KEY, "escalation_id" INTEGER NOT NULL, "uid" VARCHAR(200) NOT NULL, "sequence" INTEGER NOT NULL, "starts_at" DATETIME NOT NULL, "duration_minutes" INTEGER NOT NULL, "type" VARCHAR(20) NOT NULL, "agenda" TEXT, "status" VARCHAR(12) NOT NULL, "organizer_id" INTEGER, "attendees" TEXT, "created_at" DATETIME NOT NULL, FOREIGN KEY ("escalation_id") REFERENCES "escalation" ("id") ON DELETE CASCADE, FOREIGN KEY ("organizer_id") REFERENCES "user" ("id") ON DELETE SET NULL)',
    'CREATE INDEX "meeting_escalation_id" ON "meeting" ("escalation_id")',
    'CREATE UNIQUE INDEX "meeting_uid" ON "meeting" ("uid")',
    'CREATE INDEX "meeting_organizer_id" ON "meeting" ("organizer_id")',
    'CREATE INDEX "meeting_status_starts_at" ON "meeting" ("status", "starts_at")',
    'CREATE TABLE "rate_approval" ("id" INTEGER NOT NULL PRIMARY KEY, "contract_id" INTEGER NOT NULL, "bill_rate" DECIMAL(14, 2) NOT NULL, "effective" DATE NOT NULL, "approved_by_id" INTEGER, "created_at" DATETIME NOT NULL, FOREIGN KEY ("contract_id") REFERENCES "contract" ("id") ON DELETE CASCADE, FOREIGN KEY ("approved_by_id") REFERENCES "user" ("id") ON DELETE SET NULL)',
    'CREATE INDEX "rate_approval_contract_id" ON "rate_approval" ("contract_id")',
    'CREATE INDEX "rate_approval_approved_by_id" ON "rate_approval" ("approved_by_id")',
    'CREATE TABLE "invoice" ("id" INTEGER NOT NULL PRIMARY KEY, "number" VARCHAR(100) NOT NULL, "contract_id" INTEGER NOT NULL, "period" VARCHAR(20) NOT NULL, "hours" DECIMAL(10, 2) NOT NULL, "bill_rate" DECIMAL(14, 2) NOT NULL, "pay_rate" DECIMAL(14, 2), "imported_at" DATETIME NOT NULL, FOREIGN KEY ("contract_id") REFERENCES "contract" ("id") ON DELETE CASCADE)',
    'CREATE UNIQUE INDEX "invoice_number" ON "invoice" ("number")',
    'CREATE INDEX "invoice_contract_id" ON "invoice" ("contract_id")',
    'CREATE TABLE "job_run" ("name" VARCHAR(50) NOT NULL PRIMARY KEY, "last_started_at" DATETIME, "last_finished_at" DATETIME, "last_success_at" DATETIME, "last_outcome" VARCHAR(20), "last_message" TEXT, "host" VARCHAR(200))',
    'CREATE TABLE "job_lock" ("name" VARCHAR(50) NOT NULL PRIMARY KEY, "holder" VARCHAR(200) NOT NULL, "expires_at" DATETIME NOT NULL)',
]

V1_POSTGRES = [
    'CREATE TABLE "pod" ("id" SERIAL NOT NULL PRIMARY KEY, "name" VARCHAR(100) NOT NULL, "manager_id" INTEGER)',
    'CREATE UNIQUE INDEX "pod_name" ON "pod" ("name")',
    'CREATE INDEX "pod_manager_id" ON "pod" ("manager_id")',
    'CREATE TABLE "user" ("id" SERIAL NOT NULL PRIMARY KEY, "login" VARCHAR(100) NOT NULL, "name" VARCHAR(200) NOT NULL, "email" VARCHAR(320) NOT NULL, "phone" VARCHAR(50), "role" VARCHAR(20) NOT NULL, "title" VARCHAR(200), "pod_id" INTEGER, "active" BOOLEAN NOT NULL, "created_at" TIMESTAMP NOT NULL, FOREIGN KEY ("pod_id") REFERENCES "pod" ("id") ON DELETE SET NULL)',
    'CREATE UNIQUE INDEX "user_login" ON "user" ("login")',
    'CREATE INDEX "user_pod_id" ON "user" ("pod_id")',
    'CREATE TABLE "team" ("id" SERIAL NOT NULL PRIMARY KEY, "key" VARCHAR(100) NOT NULL, "name" VARCHAR(200) NOT NULL, "email" VARCHAR(320), "active" BOOLEAN NOT NULL)',
    'CREATE UNIQUE INDEX "team_key" ON "team" ("key")',
    'CREATE TABLE "team_member" ("id" SERIAL NOT NULL PRIMARY KEY, "team_id" INTEGER NOT NULL, "user_id" INTEGER NOT NULL, FOREIGN KEY ("team_id") REFERENCES "team" ("id") ON DELETE CASCADE, FOREIGN KEY ("user_id") REFERENCES "user" ("id") ON DELETE CASCADE)',
    'CREATE INDEX "team_member_team_id" ON "team_member" ("team_id")',
    'CREATE INDEX "team_member_user_id" ON "team_member" ("user_id")',
    'CREATE UNIQUE INDEX "team_member_team_id_user_id" ON "team_member" ("team_id", "user_id")',
    'CREATE TABLE "account" ("id" SERIAL NOT NULL PRIMARY KEY, "name" VARCHAR(200) NOT NULL, "strategic" BOOLEAN NOT NULL, "annual_revenue" NUMERIC(14, 2))',
    'CREATE UNIQUE INDEX "account_name" ON "account" ("name")',
    'CREATE TABLE "contact" ("id" SERIAL NOT NULL PRIMARY KEY, "account_id" INTEGER NOT NULL, "name" VARCHAR(200) NOT NULL, "email" VARCHAR(320) NOT NULL, "phone" VARCHAR(50), "title" VARCHAR(200), "unreachable_at" TIMESTAMP, "unreachable_reason" TEXT, FOREIGN KEY ("account_id") REFERENCES "account" ("id") ON DELETE CASCADE)',
    'CREATE INDEX "contact_account_id" ON "contact" ("account_id")',
    'CREATE UNIQUE INDEX "contact_email" ON "contact" ("email")',
    'CREATE TABLE "contract" ("id" SERIAL NOT NULL PRIMARY KEY, "code" VARCHAR(100) NOT NULL, "account_id" INTEGER NOT NULL, "candidate" VARCHAR(200) NOT NULL, "title" VARCHAR(200), "bill_rate" NUMERIC(14, 2) NOT NULL, "pay_rate" NUMERIC(14, 2) NOT NULL, "start_date" DATE NOT NULL, "end_date" DATE, FOREIGN KEY ("account_id") REFERENCES "account" ("id") ON DELETE CASCADE)',
    'CREATE UNIQUE INDEX "contract_code" ON "contract" ("code")',
    'CREATE INDEX "contract_account_id" ON "contract" ("account_id")',
    'CREATE TABLE "escalation" ("id" SERIAL NOT NULL PRIMARY KEY, "code" VARCHAR(32) NOT NULL, "day" DATE NOT NULL, "seq" INTEGER NOT NULL, "title" VARCHAR(300) NOT NULL, "category" VARCHAR(100) NOT NULL, "subcategory" VARCHAR(100), "priority" VARCHAR(10) NOT NULL, "priority_rank" SMALLINT NOT NULL, "impact" VARCHAR(20) NOT NULL, "impact_reason" TEXT, "status" VARCHAR(20) NOT NULL, "substate" VARCHAR(100), "reporter_id" INTEGER NOT NULL, "pod_id" INTEGER, "owner_id" INTEGER, "account_id" INTEGER, "contact_id" INTEGER, "contract_id" INTEGER, "description" TEXT NOT NULL, "assessment" TEXT, "created_at" TIMESTAMP NOT NULL, "claimed_at" TIMESTAMP, "escalated_at" TIMESTAMP, "escalated_to" VARCHAR(10), "resolved_at" TIMESTAMP, "resolved_by_id" INTEGER, "resolution_notes" TEXT, "resolution_seconds" INTEGER, "resolved_by_ic" BOOLEAN NOT NULL, "approval" VARCHAR(20), "approved_by_id" INTEGER, "approved_at" TIMESTAMP, "policy_version" VARCHAR(50) NOT NULL, "response_due" TIMESTAMP, "resolution_due" TIMESTAMP, "paused_seconds" INTEGER NOT NULL, "paused_wall_seconds" INTEGER NOT NULL, "hold_started_at" TIMESTAMP, "hold_until" TIMESTAMP, "hold_reason" TEXT, "last_action" VARCHAR(100), "last_action_at" TIMESTAMP, "idempotency_key" VARCHAR(200), "source" VARCHAR(50) NOT NULL, "source_key" VARCHAR(200), "version" INTEGER NOT NULL, "updated_at" TIMESTAMP NOT NULL, FOREIGN KEY ("reporter_id") REFERENCES "user" ("id") ON DELETE RESTRICT, FOREIGN KEY ("pod_id") REFERENCES "pod" ("id") ON DELETE SET NULL, FOREIGN KEY ("owner_id") REFERENCES "user" ("id") ON DELETE SET NULL, FOREIGN KEY ("account_id") REFERENCES "account" ("id") ON DELETE SET NULL, FOREIGN KEY ("contact_id") REFERENCES "contact" ("id") ON DELETE SET NULL, FOREIGN KEY ("contract_id") REFERENCES "contract" ("id") ON DELETE SET NULL, FOREIGN KEY ("resolved_by_id") REFERENCES "user" ("id") ON DELETE SET NULL, FOREIGN KEY ("approved_by_id") REFERENCES "user" ("id") ON DELETE SET NULL)',
    'CREATE UNIQUE INDEX "escalation_code" ON "escalation" ("code")',
    'CREATE INDEX "escalation_reporter_id" ON "escalation" ("reporter_id")',
    'CREATE INDEX "escalation_pod_id" ON "escalation" ("pod_id")',
    'CREATE INDEX "escalation_owner_id" ON "escalation" ("owner_id")',
    'CREATE INDEX "escalation_account_id" ON "escalation" ("account_id")',
    'CREATE INDEX "escalation_contact_id" ON "escalation" ("contact_id")',
    'CREATE INDEX "escalation_contract_id" ON "escalation" ("contract_id")',
    'CREATE INDEX "escalation_resolved_by_id" ON "escalation" ("resolved_by_id")',
    'CREATE INDEX "escalation_approved_by_id" ON "escalation" ("approved_by_id")',
    'CREATE UNIQUE INDEX "escalation_idempotency_key" ON "escalation" ("idempotency_key")',
    'CREATE UNIQUE INDEX "escalation_source_key" ON "escalation" ("source_key")',
    'CREATE UNIQUE INDEX "escalation_day_seq" ON "escalation" ("day", "seq")',
    'CREATE INDEX "escalation_pod_id_status_priority_rank_created_at" ON "escalation" ("pod_id", "status", "priority_rank", "created_at")',
    'CREATE INDEX "escalation_owner_id_status" ON "escalation" ("owner_id", "status")',
    'CREATE INDEX "escalation_reporter_id_status" ON "escalation" ("reporter_id", "status")',
    'CREATE INDEX "escalation_account_id_created_at" ON "escalation" ("account_id", "created_at")',
    'CREATE INDEX "escalation_status_priority_rank_created_at" ON "escalation" ("status", "priority_rank", "created_at")',
    'CREATE INDEX "escalation_hold_until" ON "escalation" ("hold_until")',
    'CREATE TABLE "consulted" ("id" SERIAL NOT NULL PRIMARY KEY, "escalation_id" INTEGER NOT NULL, "user_id" INTEGER NOT NULL, "added_at" TIMESTAMP NOT NULL, FOREIGN KEY ("escalation_id") REFERENCES "escalation" ("id") ON DELETE CASCADE, FOREIGN KEY ("user_id") REFERENCES "user" ("id") ON DELETE CASCADE)',
    'CREATE INDEX "consulted_escalation_id" ON "consulted" ("escalation_id")',
    'CREATE INDEX "consulted_user_id" ON "consulted" ("user_id")',
    'CREATE UNIQUE INDEX "consulted_escalation_id_user_id" ON "consulted" ("escalation_id", "user_id")',
    'CREATE TABLE "sla_clock" ("id" SERIAL NOT NULL PRIMARY KEY, "escalation_id" INTEGER NOT NULL, "kind" VARCHAR(12) NOT NULL, "started_at" TIMESTAMP NOT NULL, "warn_at" TIMESTAMP, "due_at" TIMESTAMP, "next_check_at" TIMESTAMP, "stopped_at" TIMESTAMP, "met" BOOLEAN, "warned_at" TIMESTAMP, "breached_at" TIMESTAMP, FOREIGN KEY ("escalation_id") REFERENCES "escalation" ("id") ON DELETE CASCADE)',
    'CREATE INDEX "sla_clock_escalation_id" ON "sla_clock" ("escalation_id")',
    'CREATE UNIQUE INDEX "sla_clock_escalation_id_kind" ON "sla_clock" ("escalation_id", "kind")',
    'CREATE INDEX "sla_clock_next_check_at" ON "sla_clock" ("next_check_at")',
    'CREATE INDEX "sla_clock_breached_at" ON "sla_clock" ("breached_at")',
    'CREATE TABLE "activity" ("id" SERIAL NOT NULL PRIMARY KEY, "escalation_id" INTEGER NOT NULL, "type" VARCHAR(30) NOT NULL, "internal" BOOLEAN NOT NULL, "direction" VARCHAR(10), "subject" TEXT, "body" TEXT, "actor_id" INTEGER, "occurred_at" TIMESTAMP NOT NULL, "created_at" TIMESTAMP NOT NULL, "meta" TEXT, FOREIGN KEY ("escalation_id") REFERENCES "escalation" ("id") ON DELETE CASCADE, FOREIGN KEY ("actor_id") REFERENCES "user" ("id") ON DELETE SET NULL)',
    'CREATE INDEX "activity_escalation_id" ON "activity" ("escalation_id")',
    'CREATE INDEX "activity_actor_id" ON "activity" ("actor_id")',
    'CREATE INDEX "activity_escalation_id_occurred_at" ON "activity" ("escalation_id", "occurred_at")',
    'CREATE TABLE "attachment" ("id" SERIAL NOT NULL PRIMARY KEY, "escalation_id" INTEGER NOT NULL, "name" VARCHAR(255) NOT NULL, "content_type" VARCHAR(200) NOT NULL, "size" INTEGER NOT NULL, "sha256" VARCHAR(64) NOT NULL, "data" BYTEA NOT NULL, "uploaded_by_id" INTEGER, "created_at" TIMESTAMP NOT NULL, FOREIGN KEY ("escalation_id") REFERENCES "escalation" ("id") ON DELETE CASCADE, FOREIGN KEY ("uploaded_by_id") REFERENCES "user" ("id") ON DELETE SET NULL)',
    'CREATE INDEX "attachment_escalation_id" ON "attachment" ("escalation_id")',
    'CREATE INDEX "attachment_uploaded_by_id" ON "attachment" ("uploaded_by_id")',
    'CREATE TABLE "notification" ("id" SERIAL NOT NULL PRIMARY KEY, "user_id" INTEGER NOT NULL, "escalation_id" INTEGER, "kind" VARCHAR(50) NOT NULL, "message" TEXT NOT NULL, "created_at" TIMESTAMP NOT NULL, "read_at" TIMESTAMP, "dedupe_key" VARCHAR(300), FOREIGN KEY ("user_id") REFERENCES "user" ("id") ON DELETE CASCADE, FOREIGN KEY ("escalation_id") REFERENCES "escalation" ("id") ON DELETE CASCADE)',
    'CREATE INDEX "notification_user_id" ON "notification" ("user_id")',
    'CREATE INDEX "notification_escalation_id" ON "notification" ("escalation_id")',
    'CREATE UNIQUE INDEX "notification_dedupe_key" ON "notification" ("dedupe_key")',
    'CREATE INDEX "notification_user_id_read_at_created_at" ON "notification" ("user_id", "read_at", "created_at")',
    'CREATE TABLE "event" ("id" SERIAL NOT NULL PRIMARY KEY, "name" VARCHAR(100) NOT NULL, "escalation_id" INTEGER, "actor_id" INTEGER, "payload" TEXT NOT NULL, "created_at" TIMESTAMP NOT NULL, "dedupe_key" VARCHAR(300), FOREIGN KEY ("escalation_id") REFERENCES "escalation" ("id") ON DELETE SET NULL, FOREIGN KEY ("actor_id") REFERENCES "user" ("id") ON DELETE SET NULL)',
    'CREATE INDEX "event_escalation_id" ON "event" ("escalation_id")',
    'CREATE INDEX "event_actor_id" ON "event" ("actor_id")',
    'CREATE UNIQUE INDEX "event_dedupe_key" ON "event" ("dedupe_key")',
    'CREATE TABLE "code_counter" ("day" DATE NOT NULL PRIMARY KEY, "last" INTEGER NOT NULL)',
]

V2_POSTGRES = [
    'CREATE TABLE "outbox" ("id" SERIAL NOT NULL PRIMARY KEY, "key" VARCHAR(300) NOT NULL, "channel" VARCHAR(10) NOT NULL, "escalation_id" INTEGER, "author_id" INTEGER, "recipients" TEXT NOT NULL, "subject" TEXT, "body_text" TEXT, "body_html" TEXT, "context" TEXT, "headers" TEXT, "parts" TEXT, "template" VARCHAR(100), "status" VARCHAR(12) NOT NULL, "attempts" INTEGER NOT NULL, "next_attempt_at" TIMESTAMP, "lease_until" TIMESTAMP, "lease_owner" VARCHAR(100), "last_error" TEXT, "message_id" VARCHAR(300), "not_before" TIMESTAMP, "created_at" TIMESTAMP NOT NULL, "sent_at" TIMESTAMP, FOREIGN KEY ("escalation_id") REFERENCES "escalation" ("id") ON DELETE SET NULL, FOREIGN KEY ("author_id") REFERENCES "user" ("id") ON DELETE SET NULL)',
    'CREATE UNIQUE INDEX "outbox_key" ON "outbox" ("key")',
    'CREATE INDEX "outbox_escalation_id" ON "outbox" ("escalation_id")',
    'CREATE INDEX "outbox_author_id" ON "outbox" ("author_id")',
    'CREATE INDEX "outbox_status_next_attempt_at" ON "outbox" ("status", "next_attempt_at")',
    'CREATE TABLE "task" ("id" SERIAL NOT NULL PRIMARY KEY, "escalation_id" INTEGER, "title" VARCHAR(300) NOT NULL, "description" TEXT, "assignee_user_id" INTEGER, "assignee_team_id" INTEGER, "due_at" TIMESTAMP, "priority" VARCHAR(10) NOT NULL, "status" VARCHAR(10) NOT NULL, "created_by_id" INTEGER, "created_at" TIMESTAMP NOT NULL, "done_at" TIMESTAMP, "done_by_id" INTEGER, FOREIGN KEY ("escalation_id") REFERENCES "escalation" ("id") ON DELETE CASCADE, FOREIGN KEY ("assignee_user_id") REFERENCES "user" ("id") ON DELETE SET NULL, FOREIGN KEY ("assignee_team_id") REFERENCES "team" ("id") ON DELETE SET NULL, FOREIGN KEY ("created_by_id") REFERENCES "user" ("id") ON DELETE SET NULL, FOREIGN KEY ("done_by_id") REFERENCES "user" ("id") ON DELETE SET NULL)',
    'CREATE INDEX "task_escalation_id" ON "task" ("escalation_id")',
    'CREATE INDEX "task_assignee_user_id" ON "task" ("assignee_user_id")',
    'CREATE INDEX "task_assignee_team_id" ON "task" ("assignee_team_id")',
    'CREATE INDEX "task_created_by_id" ON "task" ("created_by_id")',
    'CREATE INDEX "task_done_by_id" ON "task" ("done_by_id")',
    'CREATE INDEX "task_assignee_user_id_status_due_at" ON "task" ("assignee_user_id", "status", "due_at")',
    'CREATE INDEX "task_assignee_team_id_status_due_at" ON "task" ("assignee_team_id", "status", "due_at")',
    'CREATE INDEX "task_status_due_at" ON "task" ("status", "due_at")',
    'CREATE TABLE "meeting" ("id" SERIAL NOT NULL PRIMARY KEY, "escalation_id" INTEGER NOT NULL, "uid" VARCHAR(200) NOT NULL, "sequence" INTEGER NOT NULL, "starts_at" TIMESTAMP NOT NULL, "duration_minutes" INTEGER NOT NULL, "type" VARCHAR(20) NOT NULL, "agenda" TEXT, "status" VARCHAR(12) NOT NULL, "organizer_id" INTEGER, "attendees" TEXT, "created_at" TIMESTAMP NOT NULL, FOREIGN KEY ("escalation_id") REFERENCES "escalation" ("id") ON DELETE CASCADE, FOREIGN KEY ("organizer_id") REFERENCES "user" ("id") ON DELETE SET NULL)',
    'CREATE INDEX "meeting_escalation_id" ON "meeting" ("escalation_id")',
    'CREATE UNIQUE INDEX "meeting_uid" ON "meeting" ("uid")',
    'CREATE INDEX "meeting_organizer_id" ON "meeting" ("organizer_id")',
    'CREATE INDEX "meeting_status_starts_at" ON "meeting" ("status", "starts_at")',
    'CREATE TABLE "rate_approval" ("id" SERIAL NOT NULL PRIMARY KEY, "contract_id" INTEGER NOT NULL, "bill_rate" NUMERIC(14, 2) NOT NULL, "effective" DATE NOT NULL, "approved_by_id" INTEGER, "created_at" TIMESTAMP NOT NULL, FOREIGN KEY ("contract_id") REFERENCES "contract" ("id") ON DELETE CASCADE, FOREIGN KEY ("approved_by_id") REFERENCES "user" ("id") ON DELETE SET NULL)',
    'CREATE INDEX "rate_approval_contract_id" ON "rate_approval" ("contract_id")',
    'CREATE INDEX "rate_approval_approved_by_id" ON "rate_approval" ("approved_by_id")',
    'CREATE TABLE "invoice" ("id" SERIAL NOT NULL PRIMARY KEY, "number" VARCHAR(100) NOT NULL, "contract_id" INTEGER NOT NULL, "period" VARCHAR(20) NOT NULL, "hours" NUMERIC(10, 2) NOT NULL, "bill_rate" NUMERIC(14, 2) NOT NULL, "pay_rate" NUMERIC(14, 2), "imported_at" TIMESTAMP NOT NULL, FOREIGN KEY ("contract_id") REFERENCES "contract" ("id") ON DELETE CASCADE)',
    'CREATE UNIQUE INDEX "invoice_number" ON "invoice" ("number")',
    'CREATE INDEX "invoice_contract_id" ON "invoice" ("contract_id")',
    'CREATE TABLE "job_run" ("name" VARCHAR(50) NOT NULL PRIMARY KEY, "last_started_at" TIMESTAMP, "last_finished_at" TIMESTAMP, "last_success_at" TIMESTAMP, "last_outcome" VARCHAR(20), "last_message" TEXT, "host" VARCHAR(200))',
    'CREATE TABLE "job_lock" ("name" VARCHAR(50) NOT NULL PRIMARY KEY, "holder" VARCHAR(200) NOT NULL, "expires_at" TIMESTAMP NOT NULL)',
]


def _run(db, statements):
    for sql in statements:
        db.execute_sql(sql)


def _dialect(db):
    return "postgres" if type(db).__name__.startswith("Postgres") else "sqlite"


V7_QUEUE_INDEXES = [
    # the queue's pages in order per (pod, status) and per status (escalate_cli/queue.py)
    'CREATE INDEX "escalation_queue_pod_response" ON "escalation" ("pod_id", "status", "priority_rank", "response_due", "created_at")',
    'CREATE INDEX "escalation_queue_pod_resolution" ON "escalation" ("pod_id", "status", "priority_rank", "resolution_due", "created_at")',
    'CREATE INDEX "escalation_queue_response" ON "escalation" ("status", "priority_rank", "response_due", "created_at")',
    'CREATE INDEX "escalation_queue_resolution" ON "escalation" ("status", "priority_rank", "resolution_due", "created_at")',
    # a manager's own escalations outside their pods, told apart in the index
    'CREATE INDEX "escalation_owner_id_status_pod_id" ON "escalation" ("owner_id", "status", "pod_id")',
    # the sweep's holds to resume (status = on_hold AND hold_until <= now): SQLite would
    # otherwise walk every escalation of that status
    'CREATE INDEX "escalation_status_hold_until" ON "escalation" ("status", "hold_until")',
]


def m0001_initial(db):
    """Users, pods, teams, CRM records, escalations, clocks, timeline, attachments, events."""
    _run(db, V1_POSTGRES if _dialect(db) == "postgres" else V1_SQLITE)


def m0002_communication_and_jobs(db):
    """Outbox, tasks, meetings, rate approvals, invoices, job heartbeats and locks."""
    _run(db, V2_POSTGRES if _dialect(db) == "postgres" else V2_SQLITE)


# Full-text search (0006). SQLite: FTS5 tables over the escalation and activity rows
# (external content: the text is stored once), kept in step by triggers that fire only when
# the text columns change, so claims and sweeps never touch the index. PostgreSQL: a stored
# generated tsvector column with a GIN index on each table, labelled title (A), category
# (B), description (C), assessment and resolution (D) so that a query can keep to some.
# Matching happens here; ranking is BM25F over the matches (escalate_cli.fulltext).
_ESC_FTS_COLS = ("title", "category", "subcategory", "description", "assessment",
                 "resolution_notes")
_ACT_FTS_COLS = ("subject", "body")


def _fts5(table, cols):
    name = f"{table}_fts"
    col_list = ", ".join(f'"{c}"' for c in cols)
    new = ", ".join(f'new."{c}"' for c in cols)
    old = ", ".join(f'old."{c}"' for c in cols)
    return [
        f'CREATE VIRTUAL TABLE "{name}" USING fts5({col_list}, content=\'{table}\', '
        f"content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
        f'CREATE TRIGGER "{name}_ai" AFTER INSERT ON "{table}" BEGIN '
        f'INSERT INTO "{name}"(rowid, {col_list}) VALUES (new."id", {new}); END',
        f'CREATE TRIGGER "{name}_ad" AFTER DELETE ON "{table}" BEGIN '
        f'INSERT INTO "{name}"("{name}", rowid, {col_list}) VALUES (\'delete\', old."id", {old}); END',
        f'CREATE TRIGGER "{name}_au" AFTER UPDATE OF {col_list} ON "{table}" BEGIN '
        f'INSERT INTO "{name}"("{name}", rowid, {col_list}) VALUES (\'delete\', old."id", {old}); '
        f'INSERT INTO "{name}"(rowid, {col_list}) VALUES (new."id", {new}); END',
        f'INSERT INTO "{name}"("{name}") VALUES (\'rebuild\')',
    ]


V6_SQLITE = _fts5("escalation", _ESC_FTS_COLS) + _fts5("activity", _ACT_FTS_COLS)

V6_POSTGRES = [
    'ALTER TABLE "escalation" ADD COLUMN "search_tsv" tsvector GENERATED ALWAYS AS ('
    "setweight(to_tsvector('english', coalesce(\"title\", '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(\"category\", '') || ' ' || coalesce(\"subcategory\", '')), 'B') || "
    "setweight(to_tsvector('english', coalesce(\"description\", '')), 'C') || "
    "setweight(to_tsvector('english', coalesce(\"assessment\", '') || ' ' || coalesce(\"resolution_notes\", '')), 'D')"
    ') STORED',
    'CREATE INDEX "escalation_search_tsv" ON "escalation" USING GIN ("search_tsv")',
    'ALTER TABLE "activity" ADD COLUMN "search_tsv" tsvector GENERATED ALWAYS AS ('
    "setweight(to_tsvector('english', coalesce(\"subject\", '')), 'A') || "
    "setweight(to_tsvector('english', coalesce(\"body\", '')), 'B')"
    ') STORED',
    'CREATE INDEX "activity_search_tsv" ON "activity" USING GIN ("search_tsv")',
]


def m0006_search(db):
    """Full-text search over escalations and activities (FTS5 / tsvector + GIN)."""
    _run(db, V6_POSTGRES if _dialect(db) == "postgres" else V6_SQLITE)


def m0003_sla_policy_snapshot(db):
    """The SLA policy each escalation was opened under, as JSON (see slapolicy.py)."""
    _run(db, ['ALTER TABLE "escalation" ADD COLUMN "sla_policy" TEXT'])


def m0007_queue_indexes(db):
    """Indexes that give the queue's first page in order without a scan (same SQL on both)."""
    _run(db, V7_QUEUE_INDEXES)


def m0009_approval_index(db):
    """IC resolutions awaiting a manager's approval (A2) are in the default queue: find them
    by index, not by reading every resolved escalation."""
    _run(db, ['CREATE INDEX "escalation_approval_status" ON "escalation" ("approval", "status")'])


MIGRATIONS = [
    ("0001_initial", m0001_initial),
    ("0002_communication_and_jobs", m0002_communication_and_jobs),
    ("0003_sla_policy_snapshot", m0003_sla_policy_snapshot),
    ("0006_search", m0006_search),
    ("0007_queue_indexes", m0007_queue_indexes),
    ("0009_approval_index", m0009_approval_index),
]


def _ensure_table(db):
    if _dialect(db) == "postgres":
        db.execute_sql('CREATE TABLE IF NOT EXISTS "schema_migrations" ('
                       '"name" VARCHAR(100) NOT NULL PRIMARY KEY, "applied_at" TIMESTAMP NOT NULL)')
    else:
        db.execute_sql('CREATE TABLE IF NOT EXISTS "schema_migrations" ('
                       '"name" VARCHAR(100) NOT NULL PRIMARY KEY, "applied_at" DATETIME NOT NULL)')


def applied(db):
    _ensure_table(db)
    return {row[0] for row in db.execute_sql('SELECT "name" FROM "schema_migrations"')}


def pending(db):
    done = applied(db)
    return [name for name, _ in MIGRATIONS if name not in done]


def migrate(db, upto=None):
    """Apply every migration not yet applied (or up to ``upto``); return their names."""
    _ensure_table(db)
    ran = []
    for name, fn in MIGRATIONS:
        with db.atomic():
            if _dialect(db) == "postgres":
                # a schema change waits for its turn, however long (not the commands' timeout)
                db.execute_sql("SET LOCAL lock_timeout = 0")
                db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))
            param = "%s" if _dialect(db) == "postgres" else "?"
            cur = db.execute_sql(f'SELECT 1 FROM "schema_migrations" WHERE "name" = {param}', (name,))
            if cur.fetchone() is None:
                fn(db)
                now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
                db.execute_sql(f'INSERT INTO "schema_migrations" ("name", "applied_at") '
                               f'VALUES ({param}, {param})', (name, now))
                ran.append(name)
        if upto is not None and name == upto:
            break
    return ran
