kb/benchmarks.lua
-- KPI benchmarks for the O2C assessment.
--
-- One `benchmark { ... }` per KPI. Fields:
--   id          used by questions (benchmark = "dso") and by agents (kpi = "dso")
--   name, unit  as shown in reports
--   definition  how the KPI is computed
--   better      "lower" or "higher": which direction is good
--   figures     the public figures, in words, exactly as the source gives them;
--               "no public benchmark" when there is none
--   sources     where the figures come from (publisher, study, year)
--   bands       optional: how a KPI answer becomes a question score 1-5. Read top
--               to bottom; the first band that holds the value wins. Each band has
--               one bound (at_most, below, at_least, above) or otherwise = true.
--
-- How band scores were chosen (the same rule for every KPI): the edges are the
-- published figures and nothing else; a value in the published top group scores
-- 5, between the top group and the median 4, between the median and the bottom
-- group 3, in the bottom group 2. Score 1 is left to "not measured at all", which
-- the questionnaire asks separately. Where a source gives fewer anchors, fewer
-- bands are used and the scores say so. A KPI without a public figure has no
-- bands: it is reported, not scored.

benchmark {
  id = "dso",
  name = "Days sales outstanding (DSO)",
  unit = "days",
  definition = "Accounts receivable ÷ (net credit sales ÷ days in the period).",
  better = "lower",
  figures = "APQC (about 5,200 organisations): top performers 30 days or less, median about 36, bottom performers 48 or more. Credit Research Foundation median 38.0 (Q1 2021). Hackett: the largest 1,000 US companies averaged 40.1 days in 2023.",
  sources = {
    "APQC Open Standards Benchmarking, as reported by CFO.com (2018)",
    "Credit Research Foundation, National Summary of Domestic Trade Receivables (Q1 2021)",
    "The Hackett Group, working capital survey (2023)",
  },
  bands = {
    { at_most = 30, score = 5, label = "top performer (APQC: 30 days or less)" },
    { at_most = 36, score = 4, label = "better than the APQC median (about 36 days)" },
    { below = 48, score = 3, label = "worse than the median, above the bottom group" },
    { otherwise = true, score = 2, label = "bottom performer (APQC: 48 days or more)" },
  },
}

benchmark {
  id = "bpdso",
  name = "Best-possible DSO",
  unit = "days",
  definition = "Current (not past-due) receivables ÷ credit sales × days in the period: the DSO the payment terms alone would give.",
  better = "lower",
  figures = "Credit Research Foundation median 32.0 days (Q1 2021).",
  sources = { "Credit Research Foundation, National Summary of Domestic Trade Receivables (Q1 2021)" },
}

benchmark {
  id = "add",
  name = "Average days delinquent",
  unit = "days",
  definition = "The average number of days late payments take to collect; commonly DSO minus best-possible DSO.",
  better = "lower",
  figures = "Credit Research Foundation median 3.0 days (Q1 2021).",
  sources = { "Credit Research Foundation, National Summary of Domestic Trade Receivables (Q1 2021)" },
}

benchmark {
  id = "cei",
  name = "Collection effectiveness index (CEI)",
  unit = "%",
  definition = "(Beginning AR + credit sales − ending total AR) ÷ (beginning AR + credit sales − ending current AR) × 100.",
  better = "higher",
  figures = "Credit Research Foundation median 86.5 (Q1 2021); 80 or more is commonly called highly effective. No public top-quartile figure.",
  sources = {
    "Credit Research Foundation, National Summary of Domestic Trade Receivables (Q1 2021)",
    "Common practitioner usage (80+ = highly effective)",
  },
  -- No published top group: the best band is "at or above the median" and scores 4.
  bands = {
    { at_least = 86.5, score = 4, label = "at or above the CRF median (86.5)" },
    { at_least = 80, score = 3, label = "highly effective (80+) but below the CRF median" },
    { otherwise = true, score = 2, label = "below 80, the usual 'highly effective' line" },
  },
}

benchmark {
  id = "ar_current",
  name = "Share of receivables current / over 90 days past due",
  unit = "%",
  definition = "Ageing buckets: the share of open receivables not yet due, and the share more than 90 days past due.",
  better = "higher",
  figures = "Credit Research Foundation medians: 90.6% of receivables current, 0.6% more than 91 days past due (Q1 2021).",
  sources = { "Credit Research Foundation, National Summary of Domestic Trade Receivables (Q1 2021)" },
}

benchmark {
  id = "dispute_days",
  name = "Dispute resolution cycle time",
  unit = "days",
  definition = "Days from a dispute being raised to it being resolved.",
  better = "lower",
  figures = "APQC: top performers 4 days, bottom performers 30 days (2009). No public median.",
  sources = { "APQC Open Standards Benchmarking (2009)" },
  -- Two anchors only: top group, bottom group, and the range between them.
  bands = {
    { at_most = 4, score = 5, label = "top performer (APQC: 4 days)" },
    { below = 30, score = 3, label = "between APQC top (4) and bottom (30) performers" },
    { otherwise = true, score = 2, label = "bottom performer (APQC: 30 days or more)" },
  },
}

benchmark {
  id = "cost_per_invoice",
  name = "Cost per invoice",
  unit = "USD",
  definition = "Total cost of the invoicing process ÷ number of invoices issued.",
  better = "lower",
  figures = "APQC, Americas: top performers $0.71 or less, median $3.17, bottom performers $11.50 or more (2016).",
  sources = { "APQC Open Standards Benchmarking, Americas (2016)" },
  bands = {
    { at_most = 0.71, score = 5, label = "top performer (APQC: $0.71 or less)" },
    { at_most = 3.17, score = 4, label = "better than the APQC median ($3.17)" },
    { below = 11.50, score = 3, label = "worse than the median, above the bottom group" },
    { otherwise = true, score = 2, label = "bottom performer (APQC: $11.50 or more)" },
  },
}

benchmark {
  id = "invoice_accuracy",
  name = "Invoice accuracy",
  unit = "%",
  definition = "Share of invoices issued error-free the first time (APQC measure 106507).",
  better = "higher",
  figures = "No public benchmark.",
  sources = { "APQC measure 106507 (definition only; no public figure)" },
}

benchmark {
  id = "touchless_invoicing",
  name = "Touchless invoicing rate",
  unit = "%",
  definition = "Share of invoices generated and sent with no manual step (APQC measure 107599).",
  better = "higher",
  figures = "No public benchmark.",
  sources = { "APQC measure 107599 (definition only; no public figure)" },
}

benchmark {
  id = "auto_match",
  name = "Cash application auto-match rate",
  unit = "%",
  definition = "Share of incoming payments matched and applied to invoices with no manual touch. The definition is not standardised: state what counts as a touch.",
  better = "higher",
  figures = "No reliable public benchmark. Vendor-cited data (weak) suggests about one AR team in four auto-matches more than 60% of payments.",
  sources = { "Vendor-cited survey data, not independently published (treat as indicative only)" },
  -- One weak anchor: above 60% is roughly the top quarter; scored 4, not 5.
  bands = {
    { above = 60, score = 4, label = "above 60% (roughly the top quarter, weak vendor data)" },
    { otherwise = true, score = 2, label = "60% or less (where roughly three teams in four are)" },
  },
}

benchmark {
  id = "bad_debt",
  name = "Bad-debt write-offs",
  unit = "% of revenue",
  definition = "Receivables written off as uncollectable ÷ revenue (APQC measure 104166).",
  better = "lower",
  figures = "No public benchmark.",
  sources = { "APQC measure 104166 (definition only; no public figure)" },
}

benchmark {
  id = "delinquent_customers",
  name = "Delinquent customers",
  unit = "%",
  definition = "Share of active customers with a past-due balance.",
  better = "lower",
  figures = "APQC: organisations at the 25th percentile have 40% fewer delinquent customers than those at the 75th. 10-15% is a typical target. No absolute public benchmark.",
  sources = { "APQC Open Standards Benchmarking (relative figure only)" },
}

benchmark {
  id = "credit_review_days",
  name = "Credit review cycle time",
  unit = "days",
  definition = "Days to complete a credit review for a new customer.",
  better = "lower",
  figures = "Hackett: world-class organisations complete reviews 33% faster than peers. No absolute public figure.",
  sources = { "The Hackett Group (relative figure only)" },
}
