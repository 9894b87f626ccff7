-- Fixture benchmarks: one "lower is better" with bands, one "higher is
-- better" with bands, one without a public figure (no bands).
benchmark {
  id = "invoice_cost",
  name = "Cost per invoice",
  unit = "USD",
  definition = "Total billing cost divided by invoices issued.",
  better = "lower",
  figures = "Fixture figures: top group 2 or less, median 4, bottom 8 or more.",
  sources = { "Fixture source (2024)" },
  bands = {
    { at_most = 2, score = 5, label = "top group" },
    { at_most = 4, score = 4, label = "better than the median" },
    { below = 8, score = 3, label = "worse than the median" },
    { otherwise = true, score = 2, label = "bottom group" },
  },
}

benchmark {
  id = "auto_match",
  name = "Automatic match rate",
  unit = "%",
  definition = "Payments matched without a person, as a share of all payments.",
  better = "higher",
  figures = "Fixture figures: top group above 90, median 70.",
  sources = { "Fixture source (2024)", "Second fixture source" },
  bands = {
    { above = 90, score = 5, label = "top group" },
    { at_least = 70, score = 4, label = "at or above the median" },
    { otherwise = true, score = 2, label = "below the median" },
  },
}

benchmark {
  id = "unapplied_days",
  name = "Days cash stays unapplied",
  unit = "days",
  definition = "Average days from receipt to application.",
  better = "lower",
  figures = "No public benchmark.",
  sources = { "None published" },
}
