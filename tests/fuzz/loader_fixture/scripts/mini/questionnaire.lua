-- A two-area questionnaire for fuzz_loader: every question type and every
-- field the loader checks, in as few lines as possible.
assessment {
  title = "Mini billing and cash assessment",
  description = "Fuzzing fixture: two areas scored 1 to 5 against a target.",
}

area { id = "billing", title = "Billing", weight = 2, kb = "billing" }

question {
  id = "bi_timing",
  type = "single",
  label = "Invoice timing",
  text = "When is the invoice sent after delivery?",
  weight = 2,
  choices = {
    { id = "late", label = "A week or more later", value = 1 },
    { id = "same_day", label = "The same day", value = 3 },
    { id = "instant", label = "At once, automatically", value = 5 },
  },
  agents = { "invoice-check-agent" },
}

question {
  id = "bi_process",
  type = "scale",
  text = "How standard is invoice creation?",
  help = "Think of last month's invoices.",
  na_allowed = true,
  levels = { "Ad hoc.", "Per team.", "One standard.", "Measured.", "Automated." },
}

question {
  id = "bi_checks",
  type = "multi",
  text = "Which checks run before an invoice is sent?",
  choices = {
    { id = "price", label = "Price against contract", value = 2 },
    { id = "po", label = "Purchase order number", value = 1 },
    { id = "none", label = "None of these", value = 0 },
  },
}

question {
  id = "bi_cost",
  type = "kpi",
  label = "Cost per invoice",
  text = "What does one invoice cost to produce?",
  benchmark = "invoice_cost",
  unit = "USD",
  min = 0,
  max = 50,
  visible_if = function(a)
    return a.bi_timing ~= "late"
  end,
}

question {
  id = "bi_note",
  type = "text",
  text = "Evidence: how is a wrong invoice corrected?",
  max_length = 400,
}

area {
  id = "cash_app",
  title = "Cash application",
  target = 4,
  kb = "cash-app",
  description = "Matching payments to open invoices.",
}

question {
  id = "ca_match",
  type = "scale",
  label = "Payment matching",
  text = "How are incoming payments matched to invoices?",
  levels = { "By hand.", "With a spreadsheet.", "By rules.", "Rules, measured.", "Learned matching." },
  agents = { "cash-match-agent" },
}

question {
  id = "ca_rate",
  type = "kpi",
  text = "What share of payments is matched automatically?",
  benchmark = "auto_match",
  min = 0,
  max = 100,
  required = false,
  na_allowed = true,
}
