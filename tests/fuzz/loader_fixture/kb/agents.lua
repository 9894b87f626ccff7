-- Fixture agents: the only ones reports may name.
agent {
  id = "invoice-check-agent",
  name = "Invoice Check Agent",
  area = "billing",
  automates = "Checks prices and order numbers before an invoice is sent.",
  prerequisites = { "A price master" },
  kpi = "invoice_cost",
}

agent {
  id = "cash-match-agent",
  name = "Cash Match Agent",
  area = "cash_app",
  automates = "Matches payments to invoices from remittance data.",
  prerequisites = { "Bank statements online", "Remittance e-mails in one inbox" },
  kpi = "unapplied_days",
}
