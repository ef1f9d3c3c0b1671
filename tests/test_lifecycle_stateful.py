"""Random event sequences against one PO, checking the lifecycle's invariants after every step.

* replaying the transition records rebuilds exactly the live PO;
* received, returned, accepted, invoiced and credited quantities are never negative, and nothing
  is returned beyond what was received or credited beyond what was invoiced;
* closed and cancelled POs accept nothing but their reopen events;
* every applied event raises the version by one; a refused event changes nothing;
* a retried event (same key) is recorded once.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_DOWN, Decimal
from typing import Any

import attrs
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from potrack.events import (
    AcceptChange,
    AddComment,
    Cancel,
    DeclineChange,
    Event,
    InspectionLine,
    PlaceOnHold,
    ProposeChange,
    ReceiveGoods,
    RecordCreditMemo,
    RecordDispatch,
    RecordInspection,
    RecordInvoice,
    RecordMatch,
    RecordPayment,
    ReleaseHold,
    Reopen,
    ReturnGoods,
    ShortClose,
    SubmitForApproval,
)
from potrack.exceptions import TransitionRefusedError
from potrack.lifecycle import progress, replay
from potrack.money import money
from potrack.records import (
    ActorId,
    ChangeProposal,
    DispatchNotice,
    GoodsReturn,
    InvoiceKind,
    InvoiceStatus,
    LineChange,
    POState,
    ReturnLine,
)
from potrack.testing.scenario import Scenario

quantities = st.sampled_from(["1", "5", "10", "25", "50", "60", "100", "0.5"])
lines = st.sampled_from([1, 2])


class LifecycleMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.s = Scenario(over_receipt_allowance=Decimal(10))
        self.records: list[Any] = []
        self.last: Event | None = None
        self.day = 0.0
        self.invoices: list[str] = []
        # Bring a PO to "issued" through the lifecycle, keeping every record from its creation.
        applied = self.s.lifecycle.create(self.s.po_document(lines=2), self.s.buyer, self.s.at(0))
        self.po = applied.document
        self.records.append(applied.record)
        self.send(SubmitForApproval(), self.s.buyer)
        self._approve()
        assert self.po.state is POState.ISSUED
        self.last = None

    # -- helpers --------------------------------------------------------------------------------

    def send(self, event: Event, actor: Any) -> None:
        self.day += 0.5
        before = self.po
        try:
            applied = self.s.applied(self.po, event, actor, self.day)
        except TransitionRefusedError as err:
            assert err.reasons, "a refusal always says why"
            assert self.po is before
            if before.state in (POState.CLOSED, POState.CANCELLED):
                assert not isinstance(event, Reopen) or before.state is POState.CANCELLED
            return
        if applied.duplicate:
            assert applied.document is before
            return
        assert before.state not in (POState.CANCELLED,), "a cancelled PO accepts nothing"
        if before.state is POState.CLOSED:
            assert isinstance(event, Reopen), f"a closed PO accepted {type(event).__name__}"
        assert applied.document.version == before.version + 1
        assert applied.record.version == applied.document.version
        self.po = applied.document
        self.records.append(applied.record)
        self.last = event

    # -- rules ----------------------------------------------------------------------------------

    @rule(qty=quantities, line=lines, bypass=st.booleans())
    def receive(self, qty: str, line: int, bypass: bool) -> None:
        actor = self.s.bypass if bypass else self.s.receiver
        self.send(ReceiveGoods(receipt=self.s.receipt(self.po, qty, line)), actor)

    @rule(qty=quantities, line=lines)
    def receive_for_inspection(self, qty: str, line: int) -> None:
        receipt = self.s.receipt(self.po, qty, line)
        receipt = attrs.evolve(
            receipt, lines=(attrs.evolve(receipt.lines[0], rejected=Decimal(0)),)
        )
        self.send(ReceiveGoods(receipt=receipt), self.s.receiver)
        if self.po.receipts and self.po.receipts[-1] == receipt.id:
            waiting = self.po.line_progress(line).pending_inspection
            if waiting > 0:
                half = waiting / 2
                self.send(
                    RecordInspection(
                        receipt_id=receipt.id,
                        lines=(
                            InspectionLine(line_no=line, accepted=half, rejected=waiting - half),
                        ),
                    ),
                    self.s.inspector,
                )

    @rule(share=st.sampled_from(["0.5", "1", "2"]), line=lines)
    def return_goods(self, share: str, line: int) -> None:
        qty = self.po.line_progress(line).net_received * Decimal(share) or Decimal(1)
        back = GoodsReturn(
            id=self.s.new_id("RT"),
            po_id=self.po.id,
            returned_at=self.s.at(self.day),
            returned_by=ActorId("recv-1"),
            lines=(ReturnLine(line_no=line, quantity=qty, reason="bad"),),
        )
        self.send(ReturnGoods(goods_return=back), self.s.receiver)

    @rule(
        qty=quantities,
        line=lines,
        price=st.sampled_from([None, "10.00", "10.40", "12.00"]),
        matched=st.booleans(),
    )
    def invoice(self, qty: str, line: int, price: str | None, matched: bool) -> None:
        inv = self.s.invoice(self.po, qty, price, line)
        self.send(RecordInvoice(invoice=inv), self.s.clerk)
        if self.po.invoice(inv.id) is not None:
            self.invoices.append(inv.id)
            if matched:
                self.send(
                    RecordMatch(invoice_id=inv.id),
                    self.s.clerk,
                )

    @rule(share=st.sampled_from(["0.5", "1", "2"]), line=lines)
    def credit(self, share: str, line: int) -> None:
        p = self.po.line_progress(line)
        # whole tenths: an invoice total is a whole number of cents at the PO price of 10.00
        qty = str((p.net_invoiced * Decimal(share)).quantize(Decimal("0.1"), ROUND_DOWN) or 1)
        memo = self.s.invoice(self.po, qty, None, line, kind=InvoiceKind.CREDIT_MEMO)
        self.send(RecordCreditMemo(memo=memo), self.s.clerk)

    @precondition(lambda self: bool(self.invoices))
    @rule(data=st.data(), status=st.sampled_from([None, *list(InvoiceStatus)[1:]]))
    def match(self, data: st.DataObject, status: InvoiceStatus | None) -> None:
        """The engine matches the invoice; a claimed status and payable amount are refused."""
        inv_id = data.draw(st.sampled_from(self.invoices))
        inv = self.po.invoice(inv_id)
        if status is None:
            self.send(RecordMatch(invoice_id=inv_id), self.s.clerk)
            return
        claimed = RecordMatch(
            invoice_id=inv_id, status=status, payable=money(str(inv.amount if inv else 0), "USD")
        )
        before = self.po
        self.send(claimed, self.s.clerk)
        assert self.po is before, "a claimed match result was recorded"

    @precondition(lambda self: bool(self.invoices))
    @rule(data=st.data(), share=st.sampled_from(["1", "0.5"]))
    def pay(self, data: st.DataObject, share: str) -> None:
        inv_id = data.draw(st.sampled_from(self.invoices))
        inv = self.po.invoice(inv_id)
        if inv is None:
            return
        amount = (inv.payable - inv.paid) * Decimal(share)
        if amount <= 0:
            amount = Decimal("1.00")
        self.send(
            RecordPayment(payment=self.s.payment(self.po, inv_id, str(amount))), self.s.treasurer
        )

    @precondition(lambda self: len(self.records) > 8)
    @rule()
    def hold(self) -> None:
        self.send(PlaceOnHold(reason="dispute"), self.s.buyer)

    @rule()
    def release(self) -> None:
        self.send(ReleaseHold(), self.s.buyer)

    @precondition(lambda self: len(self.records) > 12)
    @rule()
    def short_close(self) -> None:
        self.send(ShortClose(reason="enough"), self.s.buyer)

    @precondition(lambda self: len(self.records) > 20)
    @rule()
    def cancel(self) -> None:
        self.send(Cancel(reason="no longer needed"), self.s.buyer)

    @rule()
    def reopen(self) -> None:
        self.send(Reopen(reason="correction"), self.s.buyer)

    @rule(qty=quantities)
    def receive_everything(self, qty: str) -> None:
        for line in self.po.lines:
            missing = line.quantity - self.po.line_progress(line.line_no).net_received
            if missing > 0:
                self.send(
                    ReceiveGoods(receipt=self.s.receipt(self.po, str(missing), line.line_no)),
                    self.s.receiver,
                )

    @rule()
    def settle_everything(self) -> None:
        """Invoice what is not billed, match and pay everything: the PO should close itself."""
        for line in self.po.lines:
            missing = line.quantity - self.po.line_progress(line.line_no).net_invoiced
            if missing > 0:
                self.invoice(str(missing), line.line_no, None, True)
        for inv in self.po.invoices:
            if inv.kind is InvoiceKind.INVOICE and inv.status is not InvoiceStatus.MATCHED:
                self.send(RecordMatch(invoice_id=inv.invoice_id), self.s.clerk)
        for inv in self.po.invoices:
            current = self.po.invoice(inv.invoice_id)
            if current and current.kind is InvoiceKind.INVOICE and current.payable > current.paid:
                self.send(
                    RecordPayment(
                        payment=self.s.payment(
                            self.po, inv.invoice_id, str(current.payable - current.paid)
                        )
                    ),
                    self.s.treasurer,
                )

    @rule(supplier=st.booleans())
    def comment(self, supplier: bool) -> None:
        self.send(AddComment(text="note"), self.s.supplier_user if supplier else self.s.buyer)

    @rule()
    def dispatch(self) -> None:
        notice = DispatchNotice(
            id=self.s.new_id("ASN"),
            po_id=self.po.id,
            carrier="DHL",
            tracking_reference="T",
            shipped_at=self.s.at(self.day),
            expected_arrival=date(2026, 2, 1),
        )
        self.send(RecordDispatch(notice=notice), self.s.supplier_user)

    @rule(qty=st.sampled_from(["90", "120", "700"]), accept=st.booleans())
    def change(self, qty: str, accept: bool) -> None:
        pid = self.s.new_id("CP")
        proposal = ChangeProposal(
            id=pid,
            po_id=self.po.id,
            proposed_by=ActorId("acme-sales"),
            at=self.s.at(self.day),
            changes=(LineChange(line_no=1, quantity=Decimal(qty)),),
            reason="capacity",
        )
        self.send(ProposeChange(proposal=proposal), self.s.supplier_user)
        if accept:
            self.send(AcceptChange(proposal_id=pid), self.s.buyer)
            if self.po.state is POState.PENDING_APPROVAL:
                self.po = self._approve()
        else:
            self.send(DeclineChange(proposal_id=pid, reason="no"), self.s.buyer)

    def _approve(self) -> Any:
        from potrack import approval as ap
        from potrack.events import Issue, RecordDecision
        from potrack.records import Decision

        while self.po.approval and ap.active_steps(self.po.approval):
            step = ap.active_steps(self.po.approval)[0]
            who = ap.step_candidates(self.po.approval, step)[0]
            decision = RecordDecision(step_id=step.step_id, verdict=Decision.APPROVE)
            self.send(decision, self.s.actor(who))
        number = None if self.po.number else self.s.number_for(self.po)
        self.send(Issue(number=number), self.s.buyer)
        return self.po

    @precondition(lambda self: self.last is not None)
    @rule()
    def retry_last_event(self) -> None:
        version = self.po.version
        assert self.last is not None
        actor = {
            "receive": self.s.bypass,
            "invoice": self.s.clerk,
            "credit_memo": self.s.clerk,
            "match": self.s.clerk,
            "pay": self.s.treasurer,
        }.get(type(self.last).name, self.s.buyer)
        applied = self.s.lifecycle.apply(self.po, self.last, actor, self.s.at(self.day))
        assert applied.duplicate
        assert self.po.version == version

    # -- invariants -------------------------------------------------------------------------------

    @invariant()
    def replay_equals_live(self) -> None:
        assert replay(self.records) == self.po

    @invariant()
    def quantities_never_negative(self) -> None:
        for p in self.po.progress:
            assert p.received >= 0 and p.returned >= 0 and p.accepted >= 0
            assert p.rejected >= 0 and p.pending_inspection >= 0
            assert p.returned <= p.received
            assert p.invoiced >= 0 and p.credited >= 0 and p.credited <= p.invoiced
            assert p.invoiced_amount >= p.credited_amount >= 0
        for inv in self.po.invoices:
            assert 0 <= inv.paid <= max(inv.payable, inv.paid)
        assert 0 <= progress(self.po).received_percent <= 100

    @invariant()
    def versions_count_events(self) -> None:
        assert [r.version for r in self.records] == list(range(1, self.po.version + 1))
        assert [k for k, _ in self.po.applied_keys] == [r.key for r in self.records]


LifecycleMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None
)
TestLifecycle = LifecycleMachine.TestCase
