"""MosaicCore: the one core that the window, the CLI and exports all go through.

Every path that shows patient data goes through `search` or `open_record`, and both commit the
audit journal entry (with its outbox rows) before handing anything back: no face of the app can
show record data that was not recorded first.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from adapters.base import Adapter, AdapterError, adapter_for
from app.core import nhs_number
from app.core.audit.errors import AuditError
from app.core.audit.model import CENTRAL_DESTINATION, practice_destination
from app.core.boundary import adapter_call
from app.core.config import NotifySettings
from app.core.model import SECTION_TITLES, PatientQuery, PatientRecord, PatientSummary, Practice, Section, SectionName
from app.core.policy import (
    ALLOW_ALL,
    FLAG_BREAK_GLASS,
    FLAG_SELF_OR_FAMILY,
    Policy,
    PolicyDecision,
    PolicyError,
    Role,
)
from app.core.research import IDENTIFYING_SEARCH_REFUSED, ResearchView, practice_error
from app.core.search import PracticeResults, ResultListener, SearchOutcome, federated_search
from app.core.session_reasons import SessionReasons
from app.core.sessions import (
    HEALTH_INTERVAL_S,
    Backoff,
    PracticeState,
    PracticeStatus,
    SessionManager,
    StateListener,
    is_transient,
)


@dataclasses.dataclass(frozen=True)
class AccessSummary:
    """The signed-in user under the access policy, for the window's status bar: a copy, never live state."""

    login: str
    has_policy: bool
    role: str | None  # the policy's role name; None with no policy or no role
    study: str | None  # the research view's study, when the role is a research role
    policy_source: str | None
    user: SignedInUser | None  # from the identity provider, when there is one


if TYPE_CHECKING:  # SQLAlchemy and Alembic are imported on the core's loop thread, not the GUI's
    from datetime import date

    from app.core.all_practices import AllPractices
    from app.core.audit.journal import DestinationStatus, Journal
    from app.core.audit.model import AuditUser, JournalEntry
    from app.core.audit.outbox import OutboxSender
    from app.core.audit.recorder import AuditRecorder
    from app.core.identity import Identity, SignedInUser
    from app.core.insight_access import InsightQuery
    from app.core.notify.notices import PatientNotices
    from app.core.notify.notifier import Decision
    from app.insight.refresh import PracticeRefresh, RefreshReport, RefreshTarget

log = logging.getLogger("mosaic.core")


class PatientNotFound(LookupError):
    pass


_LOAD = object()  # MosaicCore(policy=...) default: the policy configured for this machine


class MosaicCore:
    def __init__(self, practices: list[Practice], on_state: StateListener | None = None, *,
                 journal: Journal | None = None, user: AuditUser | None = None,
                 on_outbox_status: Callable[[list[DestinationStatus]], None] | None = None,
                 central_url: str | None = None, policy: Policy | None | object = _LOAD,
                 notify: NotifySettings | None | object = _LOAD, backoff: Backoff | None = None,
                 health_interval_s: float | None = HEALTH_INTERVAL_S) -> None:
        """`journal` defaults to the per-user journal, opened on first use from the core's loop (so the
        window appears without waiting for it). Opening may raise JournalError from sign_in, search
        or open_record; the caller shows it: without a journal nothing may be shown.

        `policy` defaults to the access policy configured for this machine (the machine-wide
        `[policy] file`); a malformed one raises PolicyFileError here, and the app stops.
        None: no policy (everything allowed).

        `notify` defaults to the machine-wide [notify] settings (telling patients who opened their
        record); None or rule "never": nobody is told.

        `backoff` paces the automatic retries of a practice that dropped, and `health_interval_s` how often
        online practices are checked (sessions.py); the same schedule renews a sign-in the provider could
        not be reached for."""
        if policy is _LOAD:
            from app.core.policy import load_policy

            policy = load_policy()
        if notify is _LOAD:
            from app.core.config import load_notify_settings

            notify = load_notify_settings()
        #: the locality access policy in force (None: none configured, everything allowed)
        self.policy: Policy | None = policy  # type: ignore[assignment]
        self._known: dict[tuple[str, str], PatientSummary] = {}  # patients the practices have named
        #: reasons for access given this session, per (login, NHS number): app/core/session_reasons.py
        self.session_reasons = SessionReasons()
        self._research: tuple[str, ResearchView | None] | None = None  # (login, its research view)
        self._on_state = on_state
        self._backoff = backoff or Backoff()
        self.sessions = SessionManager(practices, on_state=self._state_changed, adapter_factory=self._make_adapter,
                                       backoff=self._backoff, health_interval_s=health_interval_s)
        self._renewal: asyncio.Task[None] | None = None  # keeps the user's sign-in renewed
        self._owns_journal = journal is None
        self._journal: Journal | None = journal
        self._user = user
        self._audit: AuditRecorder | None = None
        self._audit_lock: asyncio.Lock | None = None
        self._on_outbox_status = on_outbox_status
        self._central_url = central_url  # the locality's audit store, if IT configured one
        self._sender: OutboxSender | None = None
        #: the OpenID Connect sign-in, when [identity] is configured (set by whoever builds the core)
        self.identity: Identity | None = None
        self._org_ods: str | None = None  # the signed-in user's organisation, from the identity provider
        #: when patients are told who opened their record (None: the [notify] rule is "never")
        self.notify_settings: NotifySettings | None = notify if isinstance(notify, NotifySettings) \
            and notify.rule != "never" else None
        self._notices: PatientNotices | None = None  # made on the loop thread when first needed
        self._queueing: set[asyncio.Future[Decision | None]] = set()  # record opens being queued for the patient

    @property
    def practices(self) -> list[Practice]:
        return self.sessions.practices

    # --- the audit journal ------------------------------------------------------------------------------

    async def audit(self) -> AuditRecorder:
        """The recorder, opening the journal (in a worker thread) the first time."""
        if self._audit is None:
            self._audit_lock = self._audit_lock or asyncio.Lock()
            async with self._audit_lock:
                if self._audit is None:
                    self._audit = await asyncio.to_thread(self._open_audit)
        return self._audit

    def _open_audit(self) -> AuditRecorder:
        from app.core.audit.journal import Journal
        from app.core.audit.model import AuditUser
        from app.core.audit.recorder import AuditRecorder

        if self._journal is None:
            self._journal = Journal.open()
        return AuditRecorder(self._journal, self._user or AuditUser.from_os(), central=self._central_url is not None,
                             on_appended=self._wake_outbox, journal_form=self._journal_form)

    def _journal_form(self, entry: JournalEntry, practice: Practice) -> JournalEntry:
        """Every entry as it is committed: for a research role, without a direct identifier of a patient who
        has not consented (app/core/research.py), whichever path made it."""
        entry = self._with_policy_role(entry)
        view = self.research_view()
        from app.core.audit.model import Action

        if view is None or entry.action is Action.INSIGHT:  # an insight entry names no patient: nothing to reduce
            return entry
        return view.journal_form(entry, practice.name)

    def _with_policy_role(self, entry: JournalEntry) -> JournalEntry:
        """The role under the access policy (what the status bar says: "hub"), as details "policy_role" (None:
        no role under the policy); the entry's user role stays the professional role from sign-in ("GP")."""
        if "policy_role" in entry.details:
            return entry
        role = self.policy.role_of(self.login) if self.policy is not None else None
        return dataclasses.replace(entry, details={**entry.details, "policy_role": role.name if role else None})

    def _shown_error(self, exc: AdapterError, practice: Practice) -> AdapterError:
        """The failure as the user is told it: a research role never reads a practice's own words (they may
        quote a patient); the log keeps what kind of failure it was, without the text."""
        if self.research_view() is None:
            return exc
        log.warning("practice=%s failed (%s) in the research view; its text is withheld", practice.id, exc.kind)
        shown = AdapterError(practice_error(practice.name), exc.kind)
        shown.trace_id = exc.trace_id
        return shown

    @property
    def journal(self) -> Journal | None:
        """The journal once opened (None before the first sign-in, search or record open)."""
        return self._journal

    async def access_history(self, **filters: object) -> list[JournalEntry]:
        """Journal entries matching `filters` (as Journal.query takes them), read in a worker thread."""
        audit = await self.audit()
        entries = await asyncio.to_thread(audit.journal.query, **filters)  # type: ignore[arg-type]
        view = self.research_view()
        return entries if view is None else view.journal_entries(entries)  # the journal keeps real ids

    # --- who is signed in ---------------------------------------------------------------------------

    @property
    def user(self) -> AuditUser | None:
        """The user journal entries name (None until set; the journal then falls back to the OS login)."""
        return self._user

    def set_user(self, user: AuditUser | None) -> None:
        """From now on, audit (and the adapters' user context) names `user`."""
        before = self.login
        self._user = user
        if self.login != before:  # another person: no reason given before covers their accesses
            self.session_reasons.forget()
        if self._audit is not None:
            from app.core.audit.model import AuditUser

            self._audit.user = user or AuditUser.from_os()
        for practice in self.sessions.practices:
            adapter = self.sessions.online_adapter(practice.id)
            if adapter is not None:
                _tell_requester(adapter, user)

    def _make_adapter(self, practice: Practice, secret: str | None) -> Adapter:
        """Adapters that speak for a person (GP Connect's JWT names the practitioner) learn who it is."""
        adapter = adapter_for(practice, secret)
        _tell_requester(adapter, self._user)
        return adapter

    async def sign_in_user(self) -> SignedInUser:
        """The one sign-in: OpenID Connect in the system browser (self.identity), then every practice
        session opens at once. Raises IdentityError when sign-in fails (nothing is opened then).

        After a sign-in lapsed (see `needs_sign_in`), only the same person may carry on: what is open on
        screen is theirs. Identity.sign_in refuses someone else, and the lapsed sign-in stays as it was."""
        if self.identity is None:
            raise RuntimeError("no identity provider configured ([identity] in the machine-wide directory)")
        user = await self.identity.sign_in()
        self._org_ods = user.org_ods
        self.set_user(user.audit_user())
        self._keep_signed_in()
        await self.sign_in()
        return user

    @property
    def needs_sign_in(self) -> bool:
        """The user's sign-in ended and could not be renewed: every practice waits for a sign-in."""
        return self.identity is not None and self.identity.needs_sign_in

    async def sign_out(self) -> None:
        """Forget every token: the user's (identity) and every practice's (adapters are closed)."""
        await self._stop_renewal()
        self.session_reasons.forget()
        if self.identity is not None:
            self.identity.sign_out()
        await self.sessions.sign_out()

    # --- keeping the user's sign-in alive ------------------------------------------------------------

    def _keep_signed_in(self) -> None:
        if self._renewal is None or self._renewal.done():
            self._renewal = asyncio.ensure_future(self._renew_sign_in())

    async def _stop_renewal(self) -> None:
        task, self._renewal = self._renewal, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _renew_sign_in(self) -> None:
        """Renew the user's tokens shortly before they run out, silently, for as long as the provider allows.
        Refused (or no refresh token): every practice session closes and waits for the user to sign in
        again (by "Sign in again", or by unlocking the window), then opens again. The provider out of
        reach: tried again with backoff (the refresh token may still be good). Ends at sign-out."""
        from app.core.identity import IdentityError, RefreshRefused

        identity = self.identity
        assert identity is not None
        rng = random.Random()
        failures = 0
        while identity.user is not None:
            due = identity.renew_in()
            if due is None:  # lapsed: wait for the user, then reopen what the lapse closed
                await identity.wait_signed_in()
                if any(s.status is PracticeStatus.SIGN_IN_NEEDED for s in self.sessions.states()):
                    await self.sessions.sign_in()
                continue
            await asyncio.sleep(max(0.0, due))
            renewing = identity.user
            try:
                await identity.renew()
            except RefreshRefused as exc:
                # Only the sign-in that was refused lapses: when the user signed in again (unlocking the window)
                # while it was being renewed, the refusal (or the old tokens) concerns the old one, not this.
                if identity.signed_in and identity.user is renewing:
                    await self._sign_in_lapsed(str(exc))
            except Exception as exc:  # IdentityError: not reached; anything else must not end the renewals
                if not isinstance(exc, IdentityError):
                    log.exception("sign-in renewal crashed")
                delay = self._backoff.delay(failures, rng)
                failures += 1
                log.warning("sign-in renewal failed (%s); trying again in %.0f s", type(exc).__name__, delay)
                await asyncio.sleep(delay)
            else:
                failures = 0

    async def _sign_in_lapsed(self, reason: str) -> None:
        assert self.identity is not None
        self.identity.lapse()
        await self.sessions.require_sign_in(reason)

    # --- sessions ------------------------------------------------------------------------------------

    async def sign_in(self) -> list[PracticeState]:
        await self.start_outbox()
        states = await self.sessions.sign_in()
        if self._sender is not None:
            self._sender.retry_now()  # practices that just came online can take their waiting entries
        return states

    async def retry(self, practice_id: str) -> PracticeState:
        if self.needs_sign_in:  # nothing opens on the user's behalf until they sign in again
            return self.sessions.state(practice_id)
        await self.start_outbox()
        return await self.sessions.connect(practice_id)  # online: _state_changed hands it its waiting entries

    def _state_changed(self, state: PracticeState) -> None:
        """Practice states as the sessions report them: passed on, and a practice back online can take the
        journal entries waiting for it."""
        if state.status is PracticeStatus.ONLINE and self._sender is not None:
            self._sender.retry_now(practice_destination(state.practice))
        if self._on_state is not None:
            self._on_state(state)

    # --- the audit outbox ------------------------------------------------------------------------------

    async def start_outbox(self) -> None:
        """Start delivering journal entries upstream."""
        if self._sender is None:
            audit = await self.audit()
            from app.core.audit.outbox import OutboxSender, adapter_at_server, default_deliverers

            central = None
            if self._central_url:
                from app.core.audit.central import CentralStoreError, open_central

                try:
                    central = await asyncio.to_thread(open_central, self._central_url)
                except CentralStoreError as exc:  # entries for it wait in the outbox, never dropped
                    log.warning("central audit store unusable: %s", exc)
            # an entry goes only through a practice configured at the server it was committed for
            deliverers = default_deliverers(adapter_at_server(lambda: self.sessions.practices,
                                                              self.sessions.online_adapter), central)
            self._sender = OutboxSender(audit.journal, deliverers, on_status=self._on_outbox_status)
            self._sender.start()
        notices = self.notices()
        if notices is not None:
            await notices.start()

    def _wake_outbox(self) -> None:
        if self._sender is not None:
            self._sender.notify()

    async def flush_outbox(self, timeout_s: float = 10.0) -> None:
        """Give the sender a short chance to deliver what is due (the CLI calls this before exiting)."""
        if self._sender is None:
            return
        self._sender.notify()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            due = await asyncio.to_thread(self._sender_journal().outbox_status)
            if not any(d.waiting for d in due if self._deliverable_now(d.destination)):
                return
            await asyncio.sleep(0.05)

    def _deliverable_now(self, destination: str) -> bool:
        """Whether entries for `destination` can go now: a practice's only through a signed-in practice at the
        server they were committed for (none, for a practice no longer configured: they wait, reported by
        `mosaic audit status`)."""
        from app.core.audit import destinations

        if destination == CENTRAL_DESTINATION:
            return self._central_url is not None
        return any(self.sessions.online_adapter(p.id) is not None
                   for p in destinations.practices_for(destination, self.sessions.practices))

    def _sender_journal(self) -> Journal:
        assert self._journal is not None, "the outbox runs only once the journal is open"
        return self._journal

    # --- the access policy ----------------------------------------------------------------------------

    @property
    def login(self) -> str:
        """The login the access policy knows the user by."""
        if self._user is not None:
            return self._user.login
        from app.core.audit.model import AuditUser

        return AuditUser.from_os().login

    def decide(self, practice_id: str, patient: PatientSummary | str | None, *, purpose: str | None = None,
               break_glass: bool = False) -> PolicyDecision:
        """What the policy says about opening `patient` (a search result, or an NHS number) at
        `practice_id`, so that the UI can ask for a reason or break-glass before opening. No request."""
        if self.policy is None:
            return ALLOW_ALL
        if isinstance(patient, PatientSummary) and patient.pseudonym:  # the research view: decide on the real one
            patient = self._known.get((practice_id, self._real_local_id(practice_id, patient.local_id) or ""))
        if not (purpose or "").strip() and not break_glass:
            purpose = self.session_reason(practice_id, patient)
        return self.policy.decide(self.login, practice_id, patient, purpose=purpose, break_glass=break_glass)

    def session_reason(self, practice_id: str, patient: PatientSummary | str | None) -> str | None:
        """The reason given earlier this session for this patient (NHS number), when it covers opening them at
        `practice_id`: the role lets a reason cover the patient, and a reason is all the policy asks for here
        (never break-glass, never an access flagged as self-or-family)."""
        number = _number_of(patient)
        if self.policy is None or not number:
            return None
        role = self.policy.role_of(self.login)
        if role is None or not role.reason_covers_patient:
            return None
        reason = self.session_reasons.recall(self._reason_holder(role), number)
        if reason is None:
            return None
        bare = self.policy.decide(self.login, practice_id, patient)
        return reason if bare.needs == "reason" and not bare.flags else None

    def _remember_reason(self, number: str | None, purpose: str | None, decision: PolicyDecision,
                         break_glass: bool) -> None:
        """After an access opened with a reason the policy asked for: it covers the patient for the session."""
        if self.policy is None or not number or not purpose or break_glass or decision.flags:
            return
        role = self.policy.role_of(self.login)
        if role is not None and role.reason_covers_patient:
            self.session_reasons.remember(self._reason_holder(role), nhs_number.normalise(number), purpose)

    def _reason_holder(self, role: Role) -> str:
        """Whose reasons: the login under its role and study (a policy that gives the login another role or
        study mid-session starts afresh: a reason given for one purpose never covers another)."""
        return f"{self.login}\x00{role.name}\x00{role.study or ''}"

    def research_view(self) -> ResearchView | None:
        """The research view when the signed-in user's role is a research role (app/core/research.py)."""
        login = self.login
        if self._research is None or self._research[0] != login:
            study = self.policy.study_of(login) if self.policy is not None else None
            self._research = (login, ResearchView(study) if study is not None else None)
        return self._research[1]

    def _real_local_id(self, practice_id: str, given: str) -> str | None:
        view = self.research_view()
        return given if view is None else view.local_id(practice_id, given)

    def _practice_allowed(self, practice_id: str) -> PolicyDecision:
        return ALLOW_ALL if self.policy is None else self.policy.practice_decision(self.login, practice_id)

    def _remember(self, patients: tuple[PatientSummary, ...] | list[PatientSummary]) -> None:
        for p in patients:
            self._known[(p.practice_id, p.local_id)] = p

    # --- what shows patient data -------------------------------------------------------------------------

    async def search(self, query: PatientQuery, on_result: ResultListener | None = None) -> SearchOutcome:
        """Every practice the policy lets the user reach; the others are skipped, with a note, and
        no request leaves for them.

        A research role searches by study criteria only (PolicyError for a name, NHS number or date of birth,
        before anything is journaled or asked), and a search by study criteria is for research roles only;
        `query.practices` narrows it to those practices (PolicyError naming an unknown one)."""
        self._check_search_kind(query)
        await self.audit()  # no journal, no search: a JournalError here reaches the caller
        refused = {p.id: d for p in self.sessions.practices if not (d := self._practice_allowed(p.id)).allowed}
        unasked = {p.id for p in self.sessions.practices if query.practices and p.id not in query.practices}
        hidden = set(refused) | unasked
        sessions = _PolicyView(self.sessions, hidden) if hidden else self.sessions
        intents: dict[str, str] = {}  # practice id -> the intent entry committed before its request left
        search_id = uuid.uuid4().hex  # every practice's entries of this one search name it (one row in the history)

        async def before(practice_id: str) -> None:
            practice = self.sessions.practice(practice_id)
            audit = await self.audit()
            from app.core.audit.model import Action

            intent = audit.intent(practice, Action.SEARCH, query=query)
            intent = dataclasses.replace(intent, details={**intent.details, "search_id": search_id})
            intents[practice_id] = (await audit.commit(intent, practice)).entry_id

        outcome = await federated_search(sessions, query, on_result,  # type: ignore[arg-type]
                                         gate=lambda r: self._audit_search(query, r, intents.get(r.practice_id),
                                                                           search_id),
                                         before=before)
        for result in outcome.results:
            if result.queried and result.error:
                self.sessions.check_soon(result.practice_id)  # dropped? then it shows, and is retried
        for practice_id, decision in refused.items():
            if practice_id in unasked:
                continue  # not among the practices the criteria named
            skipped = PracticeResults(practice_id, note=f"{self.sessions.practice(practice_id).name} was not "
                                      f"searched: {decision.why}", queried=False, refused_by_policy=True)
            outcome.results.append(skipped)
            if on_result is not None:
                on_result(skipped)
        return outcome

    def _check_search_kind(self, query: PatientQuery) -> None:
        """The research view finds patients by study criteria, never by who they are; criteria searches are
        for research roles (a population search of identified patients is not what other roles are for)."""
        refusal = self.policy.records_refusal(self.login) if self.policy is not None else None
        if refusal is not None:  # an insight-only role: no search of any kind
            raise PolicyError(refusal)
        research = self.research_view() is not None
        if research and query.identifies:
            raise PolicyError(PolicyDecision("denied", why=IDENTIFYING_SEARCH_REFUSED))
        if query.is_criteria and not research:
            raise PolicyError(PolicyDecision("denied", why="A search by study criteria is for research roles under "
                                             "the access policy: find a patient by NHS number, name or date of birth."))
        unknown = [pid for pid in query.practices if pid not in {p.id for p in self.sessions.practices}]
        if unknown:
            raise PolicyError(PolicyDecision("denied", why=f"No practice '{unknown[0]}' is configured (configured: "
                                             f"{', '.join(p.id for p in self.sessions.practices)})."))

    async def _audit_search(self, query: PatientQuery, result: PracticeResults,
                            intent_id: str | None = None, search_id: str | None = None) -> PracticeResults:
        if not result.queried:
            return result
        result = _as_asked(result, query)
        self._remember(result.patients)
        practice = self.sessions.practice(result.practice_id)
        audit = await self.audit()
        entry = audit.search(practice, query, None if result.error else len(result.patients), result.error,
                             trace_id=result.trace_id)
        extra = {**({"intent": intent_id} if intent_id else {}), **({"search_id": search_id} if search_id else {}),
                 **({"unreadable": result.unreadable} if result.unreadable else {})}
        if extra:
            entry = dataclasses.replace(entry, details={**entry.details, **extra})
        try:
            await audit.commit(entry, practice)
        except AuditError as exc:
            return dataclasses.replace(result, patients=(), error=str(exc))
        view = self.research_view()
        if view is not None and result.error:  # the practice's own words may quote a patient: never shown
            log.warning("practice=%s search failed (%s) in the research view; its text is withheld",
                        result.practice_id, result.error_kind or "unknown")
            result = dataclasses.replace(result, error=practice_error(practice.name))
        return self._with_access(result if view is None else view.results(result))

    #: what a result shows of a patient whose record needs break-glass (or is denied): enough to tell who it is
    #: (name, date of birth, NHS number, sex, and death: withheld, a dead patient would read as alive with an age
    #: still counting), never where they live; every other field, one added later included, is withheld (its
    #: default, None) until someone decides it may be shown
    SHOWN_WHEN_RESTRICTED = frozenset({"practice_id", "local_id", "nhs_number", "family", "given", "birth_date",
                                       "sex", "pseudonym", "birth_year", "deceased"})

    def _with_access(self, result: PracticeResults) -> PracticeResults:
        """The policy's decision on opening each result, decided here on the core's thread; a result whose
        record needs break-glass (or is denied) has its address fields withheld, so the window, `mosaic search`
        and its --json all get the withheld summary (the full one stays in the core, for open_record)."""
        if self.policy is None or not result.patients:
            return result
        access = {p.local_id: self.decide(result.practice_id, p) for p in result.patients}
        patients = tuple(self._withheld(p) if access[p.local_id].needs in ("break-glass", "denied") else p
                         for p in result.patients)
        return dataclasses.replace(result, patients=patients, access=access)

    def _withheld(self, patient: PatientSummary) -> PatientSummary:
        blank = {f.name: None if f.default is dataclasses.MISSING else f.default
                 for f in dataclasses.fields(patient) if f.init and f.name not in self.SHOWN_WHEN_RESTRICTED}
        return dataclasses.replace(patient, **blank)  # type: ignore[arg-type]  # each field: None, or its default

    async def decided(self, practice_id: str, patient: PatientSummary) -> PolicyDecision:
        """`decide`, for the window, which asks through the bridge rather than read the core's state: on the
        summary the core keeps for that result (a restricted result's address was withheld from the window)."""
        if not patient.pseudonym:
            patient = self._known.get((practice_id, patient.local_id), patient)
        return self.decide(practice_id, patient)

    def access_summary(self) -> AccessSummary:
        """Who the user is under the access policy, as the window shows it (taken on the core's thread)."""
        user = self.identity.user if self.identity is not None else None
        login = self.login
        role = self.policy.role_of(login) if self.policy is not None else None
        view = self.research_view()
        return AccessSummary(login=login, has_policy=self.policy is not None,
                             role=role.name if role is not None else None,
                             study=view.study.id if view is not None else None,
                             policy_source=(self.policy.source or None) if self.policy is not None else None,
                             user=user)

    async def resolve_patient(self, practice_id: str, patient: str) -> str:
        """A practice-local id from what the user gave: that id itself, or an NHS number. A research role
        gives a pseudonym its searches handed out; an NHS number is refused (PolicyError), before any request."""
        if self.research_view() is not None and nhs_number.looks_like_nhs_number(patient):
            raise PolicyError(PolicyDecision("denied", why=IDENTIFYING_SEARCH_REFUSED))
        if not nhs_number.looks_like_nhs_number(patient):
            return patient
        number = nhs_number.normalise(patient)
        if not nhs_number.is_valid(number):
            raise PatientNotFound(f"{patient} is not a valid NHS number (the check digit does not match).")
        query = PatientQuery(nhs_number=number)
        practice = self.sessions.practice(practice_id)
        audit = await self.audit()
        decision = self._practice_allowed(practice_id)
        if not decision.allowed:
            from app.core.audit.model import Action

            await audit.commit(audit.denied(practice, decision.why, nhs_number=number, action=Action.SEARCH,
                                            query=query), practice)
            raise PolicyError(decision)
        from app.core.audit.model import Action

        adapter = await self._adapter_now(practice_id)
        intent = await audit.commit(audit.intent(practice, Action.SEARCH, query=query), practice)
        try:
            found = await adapter_call(practice, adapter.search(query), "searching")
        except AdapterError as exc:
            await audit.commit(_after(intent, audit.search(practice, query, None, exc.message,
                                                           trace_id=exc.trace_id)), practice)
            raise
        trace_id = getattr(found, "trace_id", None)  # this request's own id (Matches), never the adapter's latest
        # only the patient asked for: a practice (or adapter) that answers with someone else is not believed
        matches = [dataclasses.replace(m, practice_id=practice_id) for m in found
                   if nhs_number.normalise(m.nhs_number or "") == number]
        await audit.commit(_after(intent, audit.search(practice, query, len(matches), trace_id=trace_id)), practice)
        self._remember(matches)
        view = self.research_view()
        if not matches:
            shown = "that NHS number" if view else f"NHS number {nhs_number.format_nhs_number(number)}"
            raise PatientNotFound(f"No patient with {shown} is registered at {practice.name}.")
        return matches[0].local_id if view is None else view.summary(matches[0]).local_id

    async def reload_section(self, practice_id: str, local_id: str, section: SectionName, reason: str | None = None,
                             *, break_glass: bool = False) -> Section:
        """One section of a record read again (Retry in a section that failed), by the same path as
        `open_record`: the policy decided (with `reason`), an intent journaled before the request, the patient
        checked, and the outcome journaled, naming only this section, before it is handed back."""
        record = await self.open_record(practice_id, local_id, purpose=reason, break_glass=break_glass, only=section)
        return record.sections[section]

    async def open_record(self, practice_id: str, local_id: str, *, purpose: str | None = None,
                          break_glass: bool = False, only: SectionName | None = None) -> PatientRecord:
        """Fetch a record, journal the access, and only then return it. A failed fetch is journaled too.
        `only`: the record with that one section (`reload_section`); the journal entry names only it.

        Under an access policy the decision is made first, before any request: PolicyError when the
        policy wants a reason (`purpose`) or break-glass (`break_glass=True` and a written `purpose`),
        or denies the access (denied and restricted attempts are journaled as DENIED). The patient must
        be one a search or resolve_patient has named in this session, so restrictions can be checked.

        Every attempt is journaled: an intent entry is committed before the request leaves, and the outcome
        follows (success, failure, refused). Whatever the adapter checked, the record must be the patient
        asked for (local id and, when known, NHS number): another patient's is refused as a clinical-safety
        error (WrongPatientError) and nothing of it is shown. The policy is then decided again on the
        record's own identifiers (a patient found by name without an NHS number may turn out restricted, or
        to be the user): when it no longer allows the access as asked, nothing is shown, the attempt is
        journaled as denied and PolicyError says what is needed (break-glass, a reason)."""
        from app.core.audit.model import Action

        practice = self.sessions.practice(practice_id)
        audit = await self.audit()
        purpose = (purpose or "").strip() or None
        real_id = self._real_local_id(practice_id, local_id)
        if real_id is None:
            raise PatientNotFound("That pseudonym was not handed out in this session: search for the patient "
                                  "again, then open the record from the results (in the research view, a record "
                                  "opens only from the results of a search by study criteria).")
        local_id = real_id
        known = self._known.get((practice_id, local_id))
        asked_number = known.nhs_number if known else None
        if purpose is None and not break_glass:  # a reason given for this patient earlier covers it: journaled again
            purpose = self.session_reason(practice_id, known)
        decision = ALLOW_ALL if self.policy is None else self.decide(practice_id, known, purpose=purpose,
                                                                     break_glass=break_glass)
        if not decision.allowed:
            if decision.needs in ("denied", "break-glass"):
                await audit.commit(audit.denied(practice, decision.why, local_id=local_id, nhs_number=asked_number,
                                                purpose=purpose, flags=decision.flags), practice)
            raise PolicyError(decision)
        view = self.research_view()
        if view is not None and not view.consented(asked_number):
            view.key()  # ResearchKeyMissing before any request: without the key nothing could be shown

        doing = Action.BREAK_GLASS if FLAG_BREAK_GLASS in decision.flags else Action.READ
        intent = await audit.commit(audit.intent(practice, doing, local_id=local_id, nhs_number=asked_number,
                                                 purpose=purpose, flags=decision.flags), practice)

        def entry(record: PatientRecord | None = None, error: str | None = None, trace_id: str | None = None,
                  **details: object) -> JournalEntry:
            read = audit.read(practice, local_id, record, error=error, purpose=purpose, trace_id=trace_id,
                              flags=decision.flags, nhs_number=asked_number)
            return _after(intent, read, **details)

        try:
            adapter = await self._adapter_now(practice_id)
            record = await asyncio.wait_for(adapter_call(practice, adapter.fetch_record(local_id), "reading a record"),
                                            timeout=practice.timeout_s * 3 + 5)
        except TimeoutError:
            error = AdapterError(f"{practice.name} did not return the record in time.", "timeout")
            await audit.commit(entry(error=error.message), practice)
            self.sessions.check_soon(practice_id)
            raise error from None
        except AdapterError as exc:
            await audit.commit(entry(error=exc.message, trace_id=exc.trace_id), practice)
            if is_transient(exc):
                self.sessions.check_soon(practice_id)
            told = self._shown_error(exc, practice)
            if told is exc:
                raise
            raise told from None
        wrong = _wrong_patient(practice, record.patient, local_id, asked_number)
        if wrong is not None:
            got = record.patient
            await audit.commit(entry(error=wrong.message, trace_id=record.trace_id, clinical_safety="wrong-patient",
                                     received={"practice_id": got.practice_id, "local_id": got.local_id,
                                               "nhs_number": got.nhs_number}), practice)
            raise wrong
        if self.policy is not None:  # decided again, on the record's own identifiers, before anything is shown
            again = self.decide(practice_id, record.patient, purpose=purpose, break_glass=break_glass)
            if not again.allowed:
                why = f"The record {practice.name} sent needs more than was given: {again.why}"
                await audit.commit(_after(intent, audit.denied(practice, why, local_id=local_id,
                                                               nhs_number=record.patient.nhs_number, purpose=purpose,
                                                               flags=again.flags), decided_on="record"), practice)
                raise PolicyError(dataclasses.replace(again, why=why))
            decision = again
        record = _as_decided(record, decision, purpose)
        if only is not None:
            one = record.sections.get(only) or Section.failed(only, "the practice's system sent nothing for it")
            record = dataclasses.replace(record, sections={only: one})
        committed = await audit.commit(entry(record, trace_id=record.trace_id), practice)
        self._remember_reason(asked_number or record.patient.nhs_number, purpose, decision, break_glass)
        self._tell_patient(committed, practice, record)
        shown = dataclasses.replace(record, contact=None)  # contact details are for the notifier only
        return shown if view is None else view.record(shown)  # the research view: pseudonymised unless consented

    async def open_all_practices(self, nhs_number: str, *, reason: str | None = None,
                                 break_glass: bool = False) -> AllPractices:
        """The patient with this NHS number at every practice they are registered at, each record opened through
        `open_record` (policy per practice, one journal entry per practice, the patient checked); a practice
        that fails or is refused is named with why, the others are still handed back. Not in the research
        view (PolicyError): see app/core/all_practices.py."""
        from app.core.all_practices import open_all_practices

        return await open_all_practices(self, nhs_number, reason=reason, break_glass=break_glass)

    # --- locality insight (app/core/insight_access.py: the policy and the journal; app/insight/refresh.py) ----

    def insight_practices(self) -> list[Practice]:
        """The practices whose figures the user may see; PolicyError when the role has no insight."""
        from app.core.insight_access import insight_practices

        return insight_practices(self)

    async def journal_insight(self, query: InsightQuery, *, outcome_detail: str | None = None,
                              failed: bool = False) -> JournalEntry:
        """Journal an insight action before anything of it is shown (PolicyError, journaled as denied, when the
        role has no insight)."""
        from app.core.insight_access import journal_insight

        return await journal_insight(self, query, outcome_detail=outcome_detail, failed=failed)

    async def refresh_insight(self, store: RefreshTarget, *, start: date, end: date, full: bool = False,
                              on_progress: Callable[[PracticeRefresh], None] | None = None) -> RefreshReport:
        """Read every practice's appointment book into `store` (app/insight/refresh.py), journaled."""
        from app.insight.refresh import refresh

        return await refresh(self, store, start=start, end=end, full=full, on_progress=on_progress)

    # --- telling the patient ------------------------------------------------------------------------------

    def notices(self) -> PatientNotices | None:
        """The patient notifier (made on first use, from the core's loop); None when nobody is told."""
        if self._notices is None and self.notify_settings is not None:
            from app.core.notify.notices import PatientNotices

            self._notices = PatientNotices(self.notify_settings, is_restricted=self.withholds_notice)
        return self._notices

    def use_notices(self, notices: PatientNotices) -> None:
        """Tell patients through `notices` (its settings and clock) instead of the machine's [notify]."""
        self.notify_settings, self._notices = notices.settings, notices

    def withholds_notice(self, number: str) -> bool:
        """The access policy's word on telling this patient: not when restricted at a practice that has not
        set `notify_restricted` (no policy: nobody is restricted)."""
        return self.policy is not None and self.policy.withholds_notice(number)

    def organisation(self) -> tuple[str | None, str]:
        """The ODS code and name of the organisation the user works for, as a patient is told it: the
        identity provider's organisation for the signed-in user, else the machine's [notify] ods_code;
        the name from the practice directory, else [notify] organisation."""
        settings = self.notify_settings
        ods = self._org_ods or (settings.ods_code if settings else None)
        named = next((p.name for p in self.practices if ods and p.ods_code.upper() == ods.upper()), None)
        name = named or (settings.organisation if settings else None)
        return ods, name or (f"the organisation with ODS code {ods.upper()}" if ods else "another NHS organisation")

    def _tell_patient(self, entry: JournalEntry, practice: Practice, record: PatientRecord) -> None:
        """Queue a journaled record open for the patient's daily digest (the rule decides whether).

        Alongside handing the record back, not before: the access is already in the journal, and the
        queue's write would add 10-15 ms to every open while other threads want the GIL. close() (and
        settle_notices) wait for what is still being queued."""
        notices = self.notices()
        if notices is None:
            return
        ods, name = self.organisation()
        number = entry.patient_nhs_number or record.patient.nhs_number
        queued = notices.record(entry_id=entry.entry_id, nhs_number=number, practice=practice,
                                accessed_at=entry.recorded_at, who=entry.user.display_name, org_ods=ods,
                                org_name=name, purpose=entry.purpose, contact=record.contact)
        task = asyncio.ensure_future(queued)
        self._queueing.add(task)
        task.add_done_callback(self._queueing.discard)

    async def settle_notices(self) -> None:
        """Wait until every record open so far is in the patient-notification queue."""
        while self._queueing:
            await asyncio.gather(*list(self._queueing), return_exceptions=True)

    async def _adapter_now(self, practice_id: str) -> Adapter:
        """The practice's adapter for a request the user asked for: a practice waiting to be retried by
        itself is tried at once (it may be back already), rather than refused until its next attempt."""
        if self.sessions.state(practice_id).status is PracticeStatus.RETRYING:
            await self.sessions.connect(practice_id)
        return self._adapter(practice_id)

    def _adapter(self, practice_id: str) -> Adapter:
        adapter = self.sessions.online_adapter(practice_id)
        if adapter is None:
            state = self.sessions.state(practice_id)
            reason = state.detail or f"not signed in ({state.status})"
            raise AdapterError(f"{state.practice.name} is not available: {reason}", "network")
        return adapter

    async def close(self) -> None:
        await self._stop_renewal()
        await self.settle_notices()
        if self._sender is not None:
            await self._sender.stop()
            self._sender = None
        if self._notices is not None:
            await self._notices.stop()
        await self.sessions.sign_out()
        if self._owns_journal and self._journal is not None:
            self._journal.close()
            self._journal, self._audit = None, None


class _PolicyView:
    """The sessions as a search sees them: without the practices the policy keeps the user from."""

    def __init__(self, sessions: SessionManager, hidden: set[str]) -> None:
        self._sessions = sessions
        self._hidden = hidden

    @property
    def practices(self) -> list[Practice]:
        return [p for p in self._sessions.practices if p.id not in self._hidden]

    def online_adapter(self, practice_id: str) -> Adapter | None:
        if practice_id in self._hidden:  # never: belt and braces
            raise PolicyError(PolicyDecision("denied", why=f"practice '{practice_id}' is outside your role"))
        return self._sessions.online_adapter(practice_id)

    def __getattr__(self, name: str) -> object:
        return getattr(self._sessions, name)


def _as_decided(record: PatientRecord, decision: PolicyDecision, purpose: str | None) -> PatientRecord:
    """The record as the policy lets it be shown: only the role's sections (the others withheld, with no
    entries), and how it was opened when the access is flagged for review (`access_flags`, `access_reason`;
    every face shows them)."""
    warnings = list(record.warnings)
    sections = record.sections
    if decision.sections is not None:  # the others are kept as withheld (never shown as failed or as empty)
        withheld = [name for name in SectionName if name in sections and name.value not in decision.sections]
        sections = {name: s if name.value in decision.sections else Section.withheld(name)
                    for name, s in sections.items()}
        if withheld:
            titles = ", ".join(SECTION_TITLES[name].lower() for name in withheld)
            warnings.append(f"Not shown under the access policy for your role: {titles}.")
    flags = tuple(f for f in (FLAG_BREAK_GLASS, FLAG_SELF_OR_FAMILY) if f in decision.flags)
    if sections is record.sections and len(warnings) == len(record.warnings) and not flags:
        return record
    return dataclasses.replace(record, sections=sections, warnings=tuple(warnings), access_flags=flags,
                               access_reason=purpose if flags else None)


class WrongPatientError(AdapterError):
    """Clinical safety: a practice answered with another patient's record. Nothing of it is shown."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "wrong-patient")


def _wrong_patient(practice: Practice, got: PatientSummary, local_id: str,
                   asked_number: str | None) -> WrongPatientError | None:
    """Why the record's patient is not the one asked for (practice, local id, NHS number when known), or None."""
    mismatched = []
    if got.practice_id != practice.id:
        mismatched.append("practice")
    if got.local_id != local_id:
        mismatched.append("record id")
    if asked_number and nhs_number.normalise(got.nhs_number or "") != nhs_number.normalise(asked_number):
        mismatched.append("NHS number")
    if not mismatched:
        return None
    log.warning("practice=%s answered a record request with another patient (%s differs)", practice.id,
                ", ".join(mismatched))
    return WrongPatientError(f"Clinical safety: {practice.name} answered with the record of a different patient "
                             f"from the one asked for (the {' and '.join(mismatched)} do not match), so nothing "
                             "of it is shown. The attempt is recorded in the audit journal. Tell the practice and "
                             "your clinical safety officer.")


def _number_of(patient: PatientSummary | str | None) -> str | None:
    number = patient.nhs_number if isinstance(patient, PatientSummary) else patient
    return nhs_number.normalise(number) if number else None


def _after(intent: JournalEntry, entry: JournalEntry, **details: object) -> JournalEntry:
    """`entry`, the outcome of `intent`: it names the intent's id in its details."""
    return dataclasses.replace(entry, details={**entry.details, **details, "intent": intent.entry_id})


def _as_asked(result: PracticeResults, query: PatientQuery) -> PracticeResults:
    """A practice's search answer as the core believes it: every patient is of the practice that answered
    (whatever the adapter said), and a search by NHS number finds only that number."""
    number = nhs_number.normalise(query.nhs_number) if query.nhs_number else None
    here = result.practice_id
    patients = tuple(p if p.practice_id == here else dataclasses.replace(p, practice_id=here)
                     for p in result.patients
                     if number is None or nhs_number.normalise(p.nhs_number or "") == number)
    return result if patients == result.patients else dataclasses.replace(result, patients=patients)


def _tell_requester(adapter: Adapter, user: AuditUser | None) -> None:
    set_requester = getattr(adapter, "set_requester", None)
    if set_requester is not None:
        set_requester(user)
