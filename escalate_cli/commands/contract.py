"""Contracts: approved rate changes (the rate-watch job reads them)."""
import click

from ..output import output_options, render
from .common import pass_app


@click.group()
def contract():
    """Contracts: approve rate changes and list them.

    \b
    Examples:
      escalate contract approve-rate C-2024-08-15-GOOG-001 --bill-rate 120 --effective 2024-12-01
      escalate contract rates C-2024-08-15-GOOG-001
    """


@contract.command("approve-rate")
@click.argument("code", metavar="CODE")
@click.option("--bill-rate", required=True, metavar="AMOUNT", help="The newly agreed bill rate per hour.")
@click.option("--effective", required=True, type=click.DateTime(["%Y-%m-%d"]), metavar="DATE",
              help="The first day it applies, e.g. 2024-12-01.")
@pass_app
def approve_rate(app, code, bill_rate, effective):
    """Record an approved bill-rate change, so invoices at that rate are not flagged.

    \b
    Example:
      escalate contract approve-rate C-2024-08-15-GOOG-001 --bill-rate 120 --effective 2024-12-01
    """
    from ..fmt import money
    from ..rates import approve_rate as approve
    c, a = approve(app, code, bill_rate, effective.date())
    click.echo(f"{c.code}: bill rate {money(a.bill_rate)}/hr approved from {a.effective:%b %d, %Y} "
               f"(agreed {money(c.bill_rate)}/hr)")


@contract.command("rates")
@click.argument("code", metavar="CODE")
@output_options
@pass_app
def rates(app, code, fmt):
    """A contract's agreed rates and its approved changes.

    \b
    Example:
      escalate contract rates C-2024-08-15-GOOG-001
    """
    from ..rates import approvals
    c, items = approvals(app, code)
    rows = [{"effective": c.start_date.isoformat(), "bill_rate": f"{c.bill_rate:.2f}",
             "pay_rate": f"{c.pay_rate:.2f}", "approved_by": "contract", "recorded_at": None}]
    rows += [{"effective": a.effective.isoformat(), "bill_rate": f"{a.bill_rate:.2f}",
              "pay_rate": f"{c.pay_rate:.2f}",
              "approved_by": a.approved_by.login if a.approved_by_id else None,
              "recorded_at": a.created_at.isoformat()} for a in items]
    render(rows, fmt, columns=["effective", "bill_rate", "pay_rate", "approved_by", "recorded_at"])


COMMANDS = [contract]
