scripts/o2c/questionnaire.lua
-- The Order-to-Cash maturity questionnaire.
--
-- How to read and edit this file (see scripts/README.md for more):
--   area { ... }      starts an area; the questions below it belong to it.
--   question { ... }  one question. Fields:
--     id          unique, lowercase, '_' allowed; answers are stored under it
--     type        "scale"  maturity 1-5, with `levels` = 5 descriptors (level 1 first)
--                 "single" one choice; each choice has a `value` = its score 1-5
--                 "multi"  several choices; each choice has a `value` = its points;
--                          score = 1 + 4 × ticked points ÷ all points
--                 "kpi"    a number with `unit`, `min`, `max`; scored through the
--                          `benchmark` bands in kb/benchmarks.lua
--                 "text"   a free-text evidence note; never scored
--     text, help  what the client reads; `label` is the short name used in reports
--     weight      how much the question counts in its area (default 1)
--     required    default true (false for text questions)
--     na_allowed  true adds a "not applicable" answer: it leaves the average
--     visible_if  function(a) ... end: show the question only when it returns
--                 true; `a` holds the answers to the questions above it
--     agents      agent ids (kb/agents.lua) that address a low answer here
-- A question with a visible_if that hides it leaves the average like "not
-- applicable" does.

assessment {
  title = "Order-to-Cash maturity assessment",
  description = "Eight areas of the order-to-cash cycle, from customer onboarding to reporting, "
    .. "each scored from 1 (Initial) to 5 (Optimizing) against a target level, with KPIs "
    .. "placed against public benchmarks.",
}

---------------------------------------------------------------------------
area {
  id = "master_data",
  title = "Customer master data and onboarding",
  weight = 1,
  kb = "master-data",
  description = "Ownership and quality of customer records, and how new customers are set up.",
}

question {
  id = "md_ownership",
  type = "scale",
  label = "Master data ownership",
  text = "Who owns customer master data, and how are changes to a customer record controlled?",
  help = "Think of the last change of a customer's address, payment terms or bank details.",
  levels = {
    "Anyone in sales or finance edits customer records; nobody owns them.",
    "One team maintains the records, but changes are not reviewed.",
    "A named data owner; every change follows a documented request-and-approval flow.",
    "Data-quality rules (duplicates, missing fields) are measured against targets every month.",
    "Records are validated automatically against external registers and issues are fixed at the source.",
  },
  agents = { "master-data-steward-agent" },
}

question {
  id = "md_onboarding",
  type = "scale",
  label = "Customer onboarding",
  text = "How is a new customer set up, from signed deal to first order?",
  levels = {
    "By e-mail and spreadsheets; the steps depend on who does it.",
    "A checklist is followed within the team.",
    "A standard workflow across the organisation collects legal, tax, billing and credit data.",
    "Onboarding cycle time and first-time-right records are tracked against targets.",
    "Customers onboard themselves through a portal with automatic checks of tax IDs, sanctions and bank details.",
  },
  agents = { "customer-onboarding-agent" },
}

question {
  id = "md_duplicates",
  type = "single",
  label = "Duplicate customer records",
  text = "How often do you find duplicate or conflicting customer records?",
  choices = {
    { id = "not_checked", label = "We do not check", value = 1 },
    { id = "weekly", label = "Every week or more often", value = 1 },
    { id = "monthly", label = "About once a month", value = 2 },
    { id = "quarterly", label = "A few times a year, found in clean-ups", value = 3 },
    { id = "blocked", label = "Rarely: duplicates are blocked when a record is created", value = 5 },
  },
  agents = { "master-data-steward-agent" },
}

question {
  id = "md_fields",
  type = "multi",
  label = "Data captured at onboarding",
  text = "Which of these are captured and checked when a customer is created?",
  choices = {
    { id = "legal_tax", label = "Legal entity and tax ID", value = 1 },
    { id = "billing_channel", label = "Billing address and invoice delivery channel", value = 1 },
    { id = "terms", label = "Payment terms", value = 1 },
    { id = "credit", label = "Credit limit and risk class", value = 1 },
    { id = "remittance", label = "Bank and remittance details, verified by call-back", value = 1 },
    { id = "einvoice_id", label = "E-invoicing identifier or portal requirements", value = 1 },
  },
}

question {
  id = "md_evidence",
  type = "text",
  label = "Master data evidence",
  text = "Evidence: describe how a change to a customer's bank details is requested, checked and approved.",
}

---------------------------------------------------------------------------
area {
  id = "credit",
  title = "Credit management",
  weight = 1,
  kb = "credit",
  description = "Credit policy, scoring and limits for new accounts, reviews and credit holds (APQC 9.2.1).",
}

question {
  id = "cr_policy",
  type = "scale",
  label = "Credit policy",
  text = "Is there a written credit policy, and how consistently is it applied?",
  levels = {
    "No written policy; sales decides terms and limits.",
    "A policy exists but is applied inconsistently.",
    "A documented policy with approval limits is applied to every new account.",
    "Compliance with the policy and credit losses are measured; exceptions are reported.",
    "Policy thresholds are tuned continuously from loss and payment data, within a risk appetite set by management.",
  },
}

question {
  id = "cr_scoring",
  type = "single",
  label = "Credit limit setting",
  text = "How are credit limits for new customers set?",
  choices = {
    { id = "judgement", label = "Case by case, by judgement", value = 1 },
    { id = "bureau", label = "From a credit bureau report", value = 3 },
    { id = "scorecard", label = "With an internal scorecard combining bureau, financial and payment data", value = 4 },
    { id = "model", label = "By a scoring model that sets and refreshes limits automatically within policy", value = 5 },
  },
  agents = { "credit-scoring-agent" },
}

question {
  id = "cr_review",
  type = "scale",
  label = "Credit reviews",
  text = "How are existing customers' credit limits reviewed?",
  levels = {
    "Never, once set.",
    "Only when a problem arises.",
    "Every account at least once a year, as the policy requires.",
    "At a frequency set by risk class, with completion tracked.",
    "Continuously, from bureau alerts and payment behaviour.",
  },
  agents = { "credit-monitoring-agent" },
}

question {
  id = "cr_holds",
  type = "single",
  label = "Credit hold release",
  text = "How are orders on credit hold released?",
  choices = {
    { id = "none", label = "We do not use credit holds", value = 1 },
    { id = "email", label = "Manually, by e-mail between sales and finance", value = 2 },
    { id = "workflow", label = "Through a workflow with approval limits", value = 3 },
    { id = "rules", label = "By rules, with only exceptions reaching a credit analyst", value = 5 },
  },
  agents = { "credit-monitoring-agent" },
}

question {
  id = "cr_bad_debt",
  type = "kpi",
  label = "Bad-debt write-offs",
  text = "Bad-debt write-offs of the last twelve months, as a share of revenue.",
  help = "Write-offs ÷ revenue × 100. Leave as not applicable if you do not know the figure.",
  benchmark = "bad_debt",
  unit = "% of revenue",
  min = 0,
  max = 100,
  na_allowed = true,
}

---------------------------------------------------------------------------
area {
  id = "order_management",
  title = "Order management",
  weight = 1,
  kb = "order-management",
  description = "How orders are captured, validated, held and changed before fulfilment.",
}

question {
  id = "om_electronic",
  type = "single",
  label = "Electronic orders",
  text = "What share of orders arrive electronically (EDI, portal, API) rather than by e-mail, phone or paper?",
  choices = {
    { id = "under_25", label = "Less than 25%", value = 1 },
    { id = "25_50", label = "25% to 50%", value = 2 },
    { id = "50_75", label = "50% to 75%", value = 3 },
    { id = "75_90", label = "75% to 90%", value = 4 },
    { id = "over_90", label = "More than 90%", value = 5 },
  },
  agents = { "order-intake-agent" },
}

question {
  id = "om_validation",
  type = "scale",
  label = "Order validation",
  text = "How are orders checked before they are released for fulfilment?",
  levels = {
    "Not checked; errors are found at billing or by the customer.",
    "Checked by the person entering the order, in their own way.",
    "The same checks (credit, price, terms, master data) run on every order.",
    "Checks are automated and first-time-right orders are measured against a target.",
    "Orders are validated automatically at capture and recurring exceptions are removed with customers.",
  },
  agents = { "order-intake-agent" },
}

question {
  id = "om_pricing",
  type = "scale",
  label = "Prices and terms on orders",
  text = "Where do the prices and terms on an order come from?",
  levels = {
    "Typed in by the order taker.",
    "From a price list, frequently overridden.",
    "From a maintained contract and price master; overrides need approval.",
    "From the master; overrides are rare, approved and reported.",
    "From the master, kept in sync with contracts automatically; overrides are practically absent.",
  },
}

question {
  id = "om_checks",
  type = "multi",
  label = "Order checks",
  text = "Which checks can stop an order before fulfilment?",
  choices = {
    { id = "credit_limit", label = "Credit limit exceeded", value = 1 },
    { id = "overdue", label = "Overdue balance", value = 1 },
    { id = "price", label = "Price differs from contract", value = 1 },
    { id = "master_data", label = "Missing or invalid customer data", value = 1 },
    { id = "export", label = "Export control or sanctions", value = 1 },
  },
}

question {
  id = "om_changes",
  type = "single",
  label = "Order changes",
  text = "How are changes to an order after acceptance handled?",
  na_allowed = true,
  choices = {
    { id = "informal", label = "Informally, by phone or e-mail; the invoice may not reflect them", value = 1 },
    { id = "manual", label = "Recorded by hand on the order", value = 2 },
    { id = "controlled", label = "Through a controlled change that updates the order and what will be invoiced", value = 4 },
    { id = "portal", label = "Customers request changes through a portal; the system checks and applies them", value = 5 },
  },
}

---------------------------------------------------------------------------
area {
  id = "billing",
  title = "Billing and invoicing",
  weight = 2,
  kb = "billing",
  description = "Timing, accuracy, format and cost of invoices (APQC 9.2.2).",
}

question {
  id = "bi_timing",
  type = "single",
  label = "Invoice timing",
  text = "When is the invoice issued after the goods are delivered or the service is performed?",
  weight = 2,
  choices = {
    { id = "over_week", label = "More than a week later", value = 1 },
    { id = "within_week", label = "Within a week (periodic billing run)", value = 2 },
    { id = "same_day", label = "The same day, with manual steps", value = 3 },
    { id = "same_day_auto", label = "The same day, automatically", value = 4 },
    { id = "real_time", label = "In real time at the delivery event, by e-invoice", value = 5 },
  },
  agents = { "billing-trigger-agent" },
}

question {
  id = "bi_process",
  type = "scale",
  label = "Invoice creation",
  text = "How are invoices created?",
  levels = {
    "Typed by hand or built in spreadsheets.",
    "Generated by the ERP, then checked and often changed by hand.",
    "Generated by the ERP from order and delivery data, with standard checks.",
    "Created automatically; only exceptions reach a person, and the touchless rate is measured.",
    "Fully touchless, with the causes of exceptions removed continuously.",
  },
  agents = { "billing-trigger-agent" },
}

question {
  id = "bi_einvoicing",
  type = "single",
  label = "E-invoicing",
  text = "How do invoices reach customers?",
  choices = {
    { id = "paper", label = "Mostly on paper", value = 1 },
    { id = "pdf", label = "Mostly as PDF by e-mail", value = 2 },
    { id = "some_electronic", label = "EDI, networks or portals for the largest customers only", value = 3 },
    { id = "most_electronic", label = "Structured e-invoices for most customers", value = 4 },
    { id = "clearance", label = "Structured e-invoices for nearly all, with tax clearance where mandated", value = 5 },
  },
  agents = { "e-invoicing-delivery-agent" },
}

question {
  id = "bi_controls",
  type = "multi",
  label = "Pre-send invoice checks",
  text = "Which checks run on every invoice before it is sent?",
  choices = {
    { id = "price", label = "Price against contract", value = 1 },
    { id = "po", label = "Customer PO number present and valid", value = 1 },
    { id = "tax", label = "Tax treatment", value = 1 },
    { id = "duplicate", label = "Duplicate invoice", value = 1 },
    { id = "customer_rules", label = "Customer-specific requirements (portal, attachments, format)", value = 1 },
  },
  agents = { "invoice-validation-agent" },
}

question {
  id = "bi_accuracy_measured",
  type = "single",
  label = "Invoice accuracy measurement",
  text = "Do you measure invoice accuracy (the share of invoices issued without error the first time)?",
  choices = {
    { id = "no", label = "No", value = 1 },
    { id = "credit_notes", label = "Only through the number of credit notes", value = 2 },
    { id = "yes", label = "Yes, monthly, with error causes", value = 4 },
    { id = "yes_targets", label = "Yes, against a target, with causes fixed upstream", value = 5 },
  },
}

question {
  id = "bi_accuracy",
  type = "kpi",
  label = "Invoice accuracy",
  text = "Invoice accuracy over the last twelve months.",
  help = "Invoices issued without any correction, credit note or re-issue ÷ all invoices × 100.",
  benchmark = "invoice_accuracy",
  min = 0,
  max = 100,
  visible_if = function(a)
    return a.bi_accuracy_measured == "yes" or a.bi_accuracy_measured == "yes_targets"
  end,
}

question {
  id = "bi_cost",
  type = "kpi",
  label = "Cost per invoice",
  text = "Cost per invoice (US dollars).",
  help = "Total cost of the invoicing process (people, systems, postage, service fees) ÷ invoices issued in the same period.",
  benchmark = "cost_per_invoice",
  unit = "USD",
  min = 0,
  max = 200,
  na_allowed = true,
}

---------------------------------------------------------------------------
area {
  id = "cash_application",
  title = "Cash application",
  weight = 1,
  kb = "cash-application",
  description = "Matching incoming payments to invoices, remittance capture and unapplied cash (APQC 9.2.3).",
}

question {
  id = "ca_method",
  type = "single",
  label = "Matching method",
  text = "How are incoming payments matched to open invoices?",
  choices = {
    { id = "manual", label = "By hand, from bank statements", value = 1 },
    { id = "erp_rules", label = "ERP rules on exact invoice numbers; the rest by hand", value = 2 },
    { id = "lockbox", label = "A bank lockbox or matching service with keyed remittance data", value = 3 },
    { id = "tool", label = "A matching tool using remittances from all channels", value = 4 },
    { id = "learning", label = "Matching that learns from analysts' decisions", value = 5 },
  },
  agents = { "cash-matching-agent" },
}

question {
  id = "ca_auto_match",
  type = "kpi",
  label = "Auto-match rate",
  text = "What share of incoming payments is matched and applied with no manual touch?",
  help = "Payments applied automatically ÷ all payments received in the last three months × 100.",
  benchmark = "auto_match",
  min = 0,
  max = 100,
  na_allowed = true,
  visible_if = function(a)
    return a.ca_method ~= nil and a.ca_method ~= "manual"
  end,
  agents = { "cash-matching-agent", "remittance-capture-agent" },
}

question {
  id = "ca_remittance",
  type = "multi",
  label = "Remittance capture",
  text = "From which sources is remittance information captured automatically?",
  choices = {
    { id = "bank_files", label = "Bank statement files (e.g. camt.053, BAI2, MT940)", value = 2 },
    { id = "email", label = "Remittance e-mails and PDF attachments", value = 1 },
    { id = "portals", label = "Customer payment portals", value = 1 },
    { id = "edi", label = "EDI remittance advice (e.g. 820)", value = 1 },
  },
  agents = { "remittance-capture-agent" },
}

question {
  id = "ca_timing",
  type = "single",
  label = "Time to apply cash",
  text = "When is a payment applied after it reaches the bank account?",
  choices = {
    { id = "over_3_days", label = "More than three working days later", value = 1 },
    { id = "within_3_days", label = "Within three working days", value = 2 },
    { id = "next_day", label = "The next working day", value = 3 },
    { id = "same_day", label = "The same day", value = 4 },
    { id = "intraday", label = "Within hours, as statements arrive", value = 5 },
  },
}

question {
  id = "ca_unapplied",
  type = "scale",
  label = "Unapplied cash",
  text = "How is unapplied or unidentified cash handled?",
  levels = {
    "It sits in a suspense account for months.",
    "It is cleared at month-end.",
    "It is reviewed weekly and has an owner.",
    "It is aged and managed against a target.",
    "It is rare, and its causes are fixed with the customers who cause it.",
  },
}

---------------------------------------------------------------------------
area {
  id = "collections",
  title = "Collections",
  weight = 2,
  kb = "collections",
  description = "Collection strategy, dunning, DSO and collection effectiveness (APQC 9.2.4).",
}

question {
  id = "co_dso_tracking",
  type = "single",
  label = "DSO measurement",
  text = "How is days sales outstanding (DSO) measured?",
  choices = {
    { id = "not_tracked", label = "It is not measured", value = 1 },
    { id = "occasionally", label = "Occasionally, or at year-end", value = 2 },
    { id = "monthly", label = "Monthly, with the standard formula", value = 3 },
    { id = "targets", label = "Monthly against targets, by business unit and segment", value = 4 },
    { id = "drivers", label = "Continuously, split into best-possible DSO and days delinquent", value = 5 },
  },
}

question {
  id = "co_dso",
  type = "kpi",
  label = "DSO",
  text = "DSO over the last three months (days).",
  help = "Accounts receivable ÷ (net credit sales ÷ days in the period).",
  benchmark = "dso",
  min = 0,
  max = 365,
  weight = 2,
  visible_if = function(a)
    return a.co_dso_tracking ~= nil and a.co_dso_tracking ~= "not_tracked"
  end,
  agents = { "collections-prioritisation-agent", "dunning-agent" },
}

question {
  id = "co_cei",
  type = "kpi",
  label = "Collection effectiveness index",
  text = "Collection effectiveness index (CEI) over the last three months.",
  help = "(Beginning AR + credit sales − ending total AR) ÷ (beginning AR + credit sales − ending current AR) × 100.",
  benchmark = "cei",
  min = 0,
  max = 100,
  na_allowed = true,
  visible_if = function(a)
    return a.co_dso_tracking ~= nil and a.co_dso_tracking ~= "not_tracked"
  end,
  agents = { "collections-prioritisation-agent" },
}

question {
  id = "co_strategy",
  type = "scale",
  label = "Collection strategy",
  text = "How do collectors decide whom to contact, when and how?",
  levels = {
    "The largest balances are chased when cash is short.",
    "A call list by age of debt.",
    "A documented strategy segmented by customer risk and value.",
    "The strategy is measured (promises kept, contact coverage) and managed against targets.",
    "Worklists are prioritised by predicted payment behaviour and adapted automatically.",
  },
  agents = { "collections-prioritisation-agent" },
}

question {
  id = "co_dunning",
  type = "single",
  label = "Dunning",
  text = "How are payment reminders (dunning) sent?",
  choices = {
    { id = "none", label = "No reminders; collectors call when they can", value = 1 },
    { id = "manual", label = "Letters or e-mails written by hand", value = 2 },
    { id = "standard", label = "Automated standard reminders after the due date", value = 3 },
    { id = "segmented", label = "Automated reminders by segment, before and after the due date, with escalation", value = 4 },
    { id = "adaptive", label = "Reminders adapted to each customer's behaviour and channel, with a payment link", value = 5 },
  },
  agents = { "dunning-agent" },
}

question {
  id = "co_tools",
  type = "multi",
  label = "Collections tools",
  text = "Which of these do collectors have?",
  choices = {
    { id = "worklist", label = "A shared, prioritised worklist", value = 1 },
    { id = "promises", label = "Promise-to-pay tracking", value = 1 },
    { id = "notes", label = "Contact notes visible to sales and customer service", value = 1 },
    { id = "self_service", label = "A customer self-service portal to see and pay invoices", value = 1 },
    { id = "ageing_live", label = "An ageing view that is current to the day", value = 1 },
  },
}

---------------------------------------------------------------------------
area {
  id = "disputes",
  title = "Disputes and deductions",
  weight = 1,
  kb = "disputes",
  description = "Recording, resolving and preventing disputes and customer deductions (APQC 9.2.5).",
}

question {
  id = "di_logging",
  type = "single",
  label = "Dispute logging",
  text = "How are disputes and deductions recorded?",
  choices = {
    { id = "not_logged", label = "They are not logged; they live in e-mail", value = 1 },
    { id = "spreadsheet", label = "In a shared spreadsheet or list", value = 2 },
    { id = "system", label = "In a system, without consistent reason codes", value = 3 },
    { id = "system_codes", label = "In a system with reason codes, owners and due dates", value = 4 },
    { id = "integrated", label = "In a case system linked to billing and cash application, opened automatically from short payments", value = 5 },
  },
  agents = { "dispute-triage-agent" },
}

question {
  id = "di_days",
  type = "kpi",
  label = "Dispute resolution time",
  text = "Average days from a dispute being raised to it being resolved.",
  benchmark = "dispute_days",
  min = 0,
  max = 365,
  na_allowed = true,
  visible_if = function(a)
    return a.di_logging ~= nil and a.di_logging ~= "not_logged"
  end,
  agents = { "dispute-triage-agent" },
}

question {
  id = "di_root_cause",
  type = "scale",
  label = "Dispute root causes",
  text = "How are the causes of disputes analysed and fixed?",
  levels = {
    "They are not analysed.",
    "Large disputes are discussed when they happen.",
    "Reason codes are reviewed monthly with the owners of each cause.",
    "The dispute rate by cause is tracked against targets, and fixes in ordering and billing are followed up.",
    "Recurring causes are prevented upstream and the dispute rate keeps falling.",
  },
  visible_if = function(a)
    return a.di_logging == "system" or a.di_logging == "system_codes" or a.di_logging == "integrated"
  end,
}

question {
  id = "di_deductions",
  type = "single",
  label = "Deduction validation",
  text = "How are customer deductions (short payments) checked?",
  na_allowed = true,
  choices = {
    { id = "accepted", label = "Accepted as taken, or written off", value = 1 },
    { id = "case_by_case", label = "Checked case by case when someone has time", value = 2 },
    { id = "team", label = "A team checks each one against promotions and contracts", value = 3 },
    { id = "automated", label = "Matched automatically to promotions, claims and proof of delivery; invalid ones are disputed", value = 5 },
  },
  agents = { "deduction-validation-agent" },
}

question {
  id = "di_collaboration",
  type = "multi",
  label = "Dispute collaboration",
  text = "Who works on the same dispute case, with the documents attached?",
  choices = {
    { id = "sales", label = "Sales", value = 1 },
    { id = "service", label = "Customer service", value = 1 },
    { id = "logistics", label = "Logistics (proof of delivery)", value = 1 },
    { id = "billing", label = "Billing", value = 1 },
    { id = "pricing", label = "Pricing and trade promotions", value = 1 },
  },
}

---------------------------------------------------------------------------
area {
  id = "reporting",
  title = "Reporting, analytics and governance",
  weight = 1,
  kb = "reporting",
  description = "KPIs and targets, controls, the AR close and cash forecasting.",
}

question {
  id = "rp_kpis",
  type = "multi",
  label = "KPIs reported",
  text = "Which O2C KPIs are reported to management every month?",
  choices = {
    { id = "dso", label = "DSO", value = 1 },
    { id = "dso_split", label = "Best-possible DSO or days delinquent", value = 1 },
    { id = "cei", label = "Collection effectiveness index", value = 1 },
    { id = "ageing", label = "Ageing (% current, % over 90 days)", value = 1 },
    { id = "disputes", label = "Dispute cycle time or dispute rate", value = 1 },
    { id = "invoice_accuracy", label = "Invoice accuracy", value = 1 },
    { id = "auto_match", label = "Cash-application auto-match rate", value = 1 },
    { id = "bad_debt", label = "Bad-debt write-offs", value = 1 },
  },
  agents = { "ar-insights-agent" },
}

question {
  id = "rp_targets",
  type = "scale",
  label = "Targets and accountability",
  text = "How are O2C KPIs tied to targets and owners?",
  levels = {
    "No targets.",
    "Targets exist for DSO only, set by finance.",
    "Standard KPI definitions with targets for the main KPIs.",
    "Every KPI has a target and an owner, reviewed monthly with sales and operations.",
    "Targets are raised every year from benchmarks and drivers are analysed continuously.",
  },
}

question {
  id = "rp_controls",
  type = "scale",
  label = "Controls",
  text = "How are controls over credit notes, write-offs and customer bank-detail changes run?",
  levels = {
    "No defined controls; the person who raises a credit note can approve it.",
    "Approval rules exist but are not checked.",
    "Documented controls with segregation of duties, tested once a year.",
    "Controls are monitored continuously with exception reports.",
    "Controls are embedded in the systems and tuned from the exceptions they find.",
  },
}

question {
  id = "rp_close",
  type = "single",
  label = "AR close",
  text = "How many working days does the receivables part of the month-end close take?",
  choices = {
    { id = "over_5", label = "More than five", value = 1 },
    { id = "4_5", label = "Four or five", value = 2 },
    { id = "3", label = "Three", value = 3 },
    { id = "2", label = "Two", value = 4 },
    { id = "1", label = "One or less; the ledger is reconciled continuously", value = 5 },
  },
}

question {
  id = "rp_forecast",
  type = "single",
  label = "Cash forecasting",
  text = "How is the cash-in forecast built?",
  na_allowed = true,
  choices = {
    { id = "none", label = "There is no cash-in forecast", value = 1 },
    { id = "terms", label = "From due dates, once a month", value = 2 },
    { id = "weekly", label = "Weekly, from the ageing and collectors' input", value = 3 },
    { id = "behaviour", label = "Weekly or daily, from each customer's payment behaviour", value = 5 },
  },
  agents = { "ar-insights-agent" },
}

question {
  id = "rp_evidence",
  type = "text",
  label = "Reporting evidence",
  text = "Evidence: list the reports and dashboards shown during the interview.",
}
