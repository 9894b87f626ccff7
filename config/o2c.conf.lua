-- o2c configuration.  This file runs in the scripts' sandbox and returns a
-- table; every key is optional (the values below are the defaults).
-- Environment variables override it (see README.md); API keys belong in the
-- environment (ANTHROPIC_API_KEY, O2C_OPENAI_API_KEY), never here.
return {
  listen = "127.0.0.1:8080",
  -- Folders, when not set: ./var, ./scripts and ./kb for o2c run from a
  -- checkout; for an installed o2c, /var/lib/o2c and PREFIX/share/o2c/scripts
  -- and .../kb (./scripts and ./kb still win when they exist).
  -- data_dir = "/var/lib/o2c",
  -- scripts_dir = "/usr/share/o2c/scripts",
  -- kb_dir = "/usr/share/o2c/kb",
  log_level = "info",            -- debug | info | warn | error
  -- Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed
  -- (sign-in throttle, audit address, Secure cookies), as addresses or
  -- ranges, e.g. { "127.0.0.1/32", "10.0.0.0/8", "::1" }; from any other
  -- address the headers are ignored.  Default: none.
  trusted_proxies = {},

  llm = {
    provider = "auto",           -- auto: anthropic when ANTHROPIC_API_KEY is set, else offline
    model = "claude-sonnet-4-5",
    anthropic_base_url = "https://api.anthropic.com",
    openai_base_url = "http://127.0.0.1:8081",
    rpm = 50,                    -- requests per minute
    itpm = 30000,                -- input tokens per minute
    otpm = 8000,                 -- output tokens per minute
    learn_limits = false,        -- true: ignore the three above, learn them from response headers
    concurrency = 4,             -- calls in flight at once
    max_retries = 4,
    timeout_s = 120,             -- one call
    section_deadline_s = 600,    -- one report section, retries included
    report_jobs = 32,            -- reports being written at once; the others wait their turn
  },

  limits = {
    header_bytes = 16 * 1024,
    json_body_bytes = 1024 * 1024,
    upload_bytes = 10 * 1024 * 1024,
    attachments_per_assessment = 50,
    max_connections = 2048,
    connections_per_address = 0, -- from one client address; 0: a quarter of max_connections.
                                 -- Behind a reverse proxy every client has the proxy's
                                 -- address: raise it to max_connections there.
    header_timeout_s = 10,
    body_timeout_s = 30,
    keepalive_s = 60,
    shutdown_grace_s = 10,
    script_memory_mb = 64,       -- per generation of scripts and KB
    script_instructions = 50000000,  -- per call into a script
    script_time_s = 2,           -- per call into a script
    lua_memory_mb = 1024,        -- the server's own Lua heap
  },

  sessions = {
    idle_timeout_s = 8 * 3600,
    absolute_timeout_s = 7 * 24 * 3600,
    cookie_secure = false,       -- true behind a TLS-terminating proxy
  },

  retention = {
    interval_s = 3600,
    jobs_days = 30,
    deleted_assessments_days = 30,
  },

  db = {
    synchronous = "normal",      -- full: fsync on every commit
  },

  -- Scheduled backups while o2c serve runs (README: "Backup and restore").
  -- dir = "" takes none; e.g. dir = "/var/backups/o2c".
  backup = {
    dir = "",
    every = 24 * 3600,           -- seconds between two backups
    keep = 7,                    -- the newest this many stay, older ones are removed
  },

  -- The firm's look on the deliverables a client receives (HTML, PDF and
  -- Word exports of a report); all empty by default: a neutral document.
  branding = {
    firm = "",                   -- e.g. "Northwind Advisory": on the cover and page headers
    logo = "",                   -- a PNG or SVG file (at most 512 KiB), e.g. "/etc/o2c/logo.png"
    colour = "#1d4ed8",          -- "#rrggbb": the cover's rule and the links
    footer = "",                 -- one line at the foot of every page
    disclaimer = "",             -- a closing paragraph, e.g. the engagement's terms
  },
}
