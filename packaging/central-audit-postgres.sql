-- Mosaic central audit store on PostgreSQL: schema, table and roles.
--
-- Workstations may INSERT audit entries and nothing else: no SELECT, UPDATE, DELETE or TRUNCATE,
-- and not even the received_at column (the database sets it). Auditors may only SELECT. The table
-- belongs to an owner role that nobody logs in as.
--
-- Run once, as a superuser (or a role with CREATEROLE that may create schemas in the database):
--
--   psql "host=db.example port=5432 dbname=audit user=postgres" -v ON_ERROR_STOP=1 \
--        -f central-audit-postgres.sql
--
-- Role names can be changed with -v, e.g. -v workstation_role=pcn_workstation -v auditor_role=pcn_auditor.
-- The schema cannot: Mosaic writes to mosaic_audit (DEFAULT_PG_SCHEMA in app/core/audit/central.py, not a
-- setting), so a store made under another name would only leave every entry waiting in the workstations'
-- outboxes. (-v audit_schema exists for Mosaic's own tests, which pass the same name to CentralStore.)
-- A workstation reaches a store on another machine only with sslmode=verify-full: give each workstation
-- the CA certificate that signed this server's (libpq reads ~/.postgresql/root.crt, or sslrootcert=… in
-- the URL), and a server certificate whose name is the host in the URL.
-- Then create one login per workstation (or per practice) and one per auditor, for example:
--
--   CREATE ROLE ws_surgery1 LOGIN PASSWORD '…' IN ROLE mosaic_workstation;
--   CREATE ROLE ig_lead LOGIN PASSWORD '…' IN ROLE mosaic_auditor;
--
-- and give workstations the URL postgresql+psycopg://ws_surgery1@db.example/audit (the password in
-- the OS keyring or environment, never in the URL file), and auditors `mosaic audit list --central`.
--
-- Why INSERT alone is enough: workstations send INSERT … ON CONFLICT DO NOTHING with NO conflict
-- target. That needs no SELECT privilege, and the primary key (entry_id) is the table's only unique
-- constraint, so a retried delivery is a no-op. Naming the target, ON CONFLICT (entry_id), would need
-- SELECT on entry_id (PostgreSQL checks it: "permission denied for table audit_entry"), so don't;
-- and keep this table free of other unique constraints, or a clash there would be silently ignored.
-- tests/core/test_audit_central.py applies this file and checks every one of these claims.
--
-- The columns mirror the local journal (app/core/audit/chain.py): JSON columns hold the exact text
-- that was hashed, so each row's hash can be recomputed here. Keep in step with app/core/audit/central.py.

\if :{?audit_schema}
\else
\set audit_schema mosaic_audit
\endif
\if :{?owner_role}
\else
\set owner_role mosaic_audit_owner
\endif
\if :{?workstation_role}
\else
\set workstation_role mosaic_workstation
\endif
\if :{?auditor_role}
\else
\set auditor_role mosaic_auditor
\endif

BEGIN;

CREATE ROLE :"owner_role" NOLOGIN;
CREATE ROLE :"workstation_role" NOLOGIN;
CREATE ROLE :"auditor_role" NOLOGIN;

CREATE SCHEMA :"audit_schema" AUTHORIZATION :"owner_role";
REVOKE ALL ON SCHEMA :"audit_schema" FROM PUBLIC;
GRANT USAGE ON SCHEMA :"audit_schema" TO :"workstation_role", :"auditor_role";

SET ROLE :"owner_role";

CREATE TABLE :"audit_schema".audit_entry (
    entry_id           text        PRIMARY KEY,
    seq                bigint      NOT NULL,
    recorded_at        timestamptz NOT NULL,
    user_login         text        NOT NULL,
    user_display_name  text        NOT NULL,
    user_role          text,
    user_ids           text        NOT NULL,
    workstation        text        NOT NULL,
    practice_id        text,
    practice_ods       text,
    patient_local_id   text,
    patient_nhs_number text,
    action             text        NOT NULL,
    sections           text        NOT NULL,
    purpose            text,
    outcome            text        NOT NULL,
    outcome_detail     text,
    app_version        text        NOT NULL,
    details            text        NOT NULL,
    prev_hash          text        NOT NULL,
    hash               text        NOT NULL,
    received_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_entry_user ON :"audit_schema".audit_entry (user_login, recorded_at);
CREATE INDEX audit_entry_patient ON :"audit_schema".audit_entry (patient_nhs_number, recorded_at);
CREATE INDEX audit_entry_practice ON :"audit_schema".audit_entry (practice_id, recorded_at);
CREATE INDEX audit_entry_recorded ON :"audit_schema".audit_entry (recorded_at);

REVOKE ALL ON TABLE :"audit_schema".audit_entry FROM PUBLIC;
GRANT INSERT (entry_id, seq, recorded_at, user_login, user_display_name, user_role, user_ids, workstation,
              practice_id, practice_ods, patient_local_id, patient_nhs_number, action, sections, purpose,
              outcome, outcome_detail, app_version, details, prev_hash, hash)
    ON TABLE :"audit_schema".audit_entry TO :"workstation_role";
GRANT SELECT ON TABLE :"audit_schema".audit_entry TO :"auditor_role";

-- Signed checkpoints of each workstation journal, sent with its entries (app/core/audit/central.py):
-- "journal <journal_id> held <entry_count> entries, the newest hashing to <head_hash>", HMAC'd with the
-- journal's key (which never leaves the workstation's keyring). Insert-only for workstations, like the
-- entries, so `mosaic audit verify --central` (an auditor's login) can hold the local journal to them.
-- Upgrading a store made by Mosaic 0.1: run this CREATE TABLE, the REVOKE and the two GRANTs on their own.
CREATE TABLE :"audit_schema".audit_checkpoint (
    journal_id   text        NOT NULL,
    entry_count  bigint      NOT NULL,
    head_hash    text        NOT NULL,
    keyed_from   bigint      NOT NULL,
    mac          text        NOT NULL,
    workstation  text        NOT NULL,
    user_login   text        NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (journal_id, entry_count)
);
REVOKE ALL ON TABLE :"audit_schema".audit_checkpoint FROM PUBLIC;
GRANT INSERT (journal_id, entry_count, head_hash, keyed_from, mac, workstation, user_login)
    ON TABLE :"audit_schema".audit_checkpoint TO :"workstation_role";
GRANT SELECT ON TABLE :"audit_schema".audit_checkpoint TO :"auditor_role";

RESET ROLE;

COMMIT;
