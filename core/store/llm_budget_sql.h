/* The shared LLM budget's PostgreSQL functions (schema version 5; see
 * store/llm_budget.h for what they guarantee).  Each is one statement: it
 * locks the provider's row, so takes, finishes and observations of one
 * provider run one at a time across every instance, and reads the time
 * from the database's clock (clock_timestamp()), never an instance's.
 *
 * Levels are in units of token x window_ms: refilling `capacity` units per
 * millisecond adds exactly one window's capacity per window, in integers.
 * Arithmetic on levels goes through numeric, so no idle period or learned
 * limit can overflow a bigint; levels stay within [-2^62, capacity]. */
#ifndef O2C_STORE_LLM_BUDGET_SQL_H
#define O2C_STORE_LLM_BUDGET_SQL_H

#define DB_SCHEMA_PG_V5_FUNCTIONS                                                                  \
    "CREATE FUNCTION o2c_llm_now() RETURNS bigint LANGUAGE sql VOLATILE AS"                        \
    "  $$SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint$$;" /* A bucket's level     \
                                                                              refilled to P_NOW    \
                                                                              (at most full). */   \
    "CREATE FUNCTION o2c_llm_refilled(p_capacity bigint, p_level bigint, p_updated bigint,"        \
    "    p_window bigint, p_now bigint) RETURNS numeric LANGUAGE sql IMMUTABLE AS"                 \
    "  $$SELECT CASE WHEN p_capacity = 0 THEN p_level::numeric"                                    \
    "    ELSE LEAST(p_capacity::numeric * p_window,"                                               \
    "               p_level::numeric + GREATEST(p_now - p_updated, 0)::numeric * p_capacity) "     \
    "END$$;" /* A level kept within [-2^62, full]. */                                              \
    "CREATE FUNCTION o2c_llm_clamp(p_level numeric, p_capacity bigint, p_window bigint)"           \
    "    RETURNS bigint LANGUAGE sql IMMUTABLE AS"                                                 \
    "  $$SELECT GREATEST(LEAST(p_level, p_capacity::numeric * p_window),"                          \
    "                    -4611686018427387904::numeric)::bigint$$;" /* A call's cost in budget     \
                                                                       P_BUDGET. */                \
    "CREATE FUNCTION o2c_llm_cost(p_budget text, p_req bigint, p_in bigint, p_out bigint,"         \
    "    p_tok bigint) RETURNS bigint LANGUAGE sql IMMUTABLE AS"                                   \
    "  $$SELECT CASE p_budget WHEN 'requests' THEN p_req WHEN 'input_tokens' THEN p_in"            \
    "    WHEN 'output_tokens' THEN p_out ELSE p_tok END$$;" /* Creates or updates a provider and   \
                                                               its budgets (last configured wins). \
                                                             */                                    \
    "CREATE FUNCTION o2c_llm_configure(p_provider text, p_window bigint, p_concurrency bigint,"    \
    "    p_req bigint, p_in bigint, p_out bigint, p_tok bigint) RETURNS bigint"                    \
    "  LANGUAGE plpgsql AS $$"                                                                     \
    "DECLARE v_now bigint; v_old bigint; b llm_budgets; v_conf bigint;"                            \
    "  v_cap bigint; v_level numeric;"                                                             \
    "BEGIN"                                                                                        \
    "  INSERT INTO llm_providers (provider, window_ms, max_concurrency)"                           \
    "    VALUES (p_provider, p_window, p_concurrency) ON CONFLICT (provider) DO NOTHING;"          \
    "  SELECT window_ms INTO v_old FROM llm_providers WHERE provider = p_provider FOR UPDATE;"     \
    "  v_now := o2c_llm_now();"                                                                    \
    "  UPDATE llm_providers SET window_ms = p_window, max_concurrency = p_concurrency"             \
    "    WHERE provider = p_provider;"                                                             \
    "  INSERT INTO llm_budgets (provider, budget, updated_ms)"                                     \
    "    SELECT p_provider, n, v_now FROM unnest(ARRAY['requests', 'input_tokens',"                \
    "      'output_tokens', 'tokens']) AS n ON CONFLICT (provider, budget) DO NOTHING;"            \
    "  FOR b IN SELECT * FROM llm_budgets WHERE provider = p_provider FOR UPDATE LOOP"             \
    "    v_conf := o2c_llm_cost(b.budget, p_req, p_in, p_out, p_tok);"                             \
    "    v_cap := CASE WHEN v_conf > 0 AND (b.learned = 0 OR b.learned > v_conf) THEN v_conf"      \
    "      ELSE b.learned END;"                                                                    \
    "    IF b.capacity = 0 THEN v_level := v_cap::numeric * p_window;"                             \
    "    ELSE v_level := o2c_llm_refilled(b.capacity, b.level, b.updated_ms, v_old, v_now)"        \
    "      * p_window / v_old;"                                                                    \
    "    END IF;"                                                                                  \
    "    UPDATE llm_budgets SET configured = v_conf, capacity = v_cap,"                            \
    "      level = o2c_llm_clamp(v_level, v_cap, p_window), updated_ms = GREATEST(updated_ms, "    \
    "v_now)"                                                                                       \
    "      WHERE provider = p_provider AND budget = b.budget;"                                     \
    "  END LOOP;"                                                                                  \
    "  RETURN v_now;"                                                                              \
    "END$$;" /* One call's permit: every budget debited, a concurrency lease, or a                 \
              * refusal with the wait (and the head call registered as a waiter). */               \
    "CREATE FUNCTION o2c_llm_take(p_provider text, p_instance text, p_slot bigint, p_job text,"    \
    "    p_req bigint, p_in bigint, p_out bigint, p_tok bigint, p_lease_ms bigint,"                \
    "    p_grace_ms bigint, p_poll_ms bigint)"                                                     \
    "  RETURNS TABLE (granted integer, wait_ms bigint, reason text, now_ms bigint)"                \
    "  LANGUAGE plpgsql AS $$"                                                                     \
    "DECLARE v_now bigint; v_prov llm_providers; v_rank bigint;"                                   \
    "  v_wait bigint := 0; v_reason text; v_busy bigint; v_first bigint; b llm_budgets;"           \
    "  v_level numeric; v_need numeric;"                                                           \
    "BEGIN"                                                                                        \
    "  SELECT * INTO v_prov FROM llm_providers WHERE provider = p_provider FOR UPDATE;"            \
    "  v_now := o2c_llm_now();"                                                                    \
    "  IF NOT FOUND THEN"                                                                          \
    "    RAISE EXCEPTION 'no shared budget is configured for provider %', p_provider"              \
    "      USING ERRCODE = 'invalid_parameter_value';"                                             \
    "  END IF;"                                                                                    \
    "  DELETE FROM llm_waiters WHERE provider = p_provider AND expires_ms <= v_now;"               \
    "  DELETE FROM llm_leases WHERE provider = p_provider AND expires_ms <= v_now;"                \
    "  DELETE FROM llm_job_turns WHERE served_ms < v_now - 86400000;"                              \
    "  v_rank := COALESCE((SELECT t.served_ms FROM llm_job_turns t"                                \
    "      WHERE t.provider = p_provider AND t.job_key = p_job),"                                  \
    "    (SELECT w.since_ms FROM llm_waiters w WHERE w.provider = p_provider"                      \
    "      AND w.instance = p_instance AND w.job_key = p_job), v_now);"                            \
    "  IF v_prov.paused_until_ms > v_now THEN"                                                     \
    "    v_reason := 'paused'; v_wait := v_prov.paused_until_ms - v_now;"                          \
    "  END IF;"                                                                                    \
    "  FOR b IN SELECT * FROM llm_budgets WHERE provider = p_provider AND capacity > 0 LOOP"       \
    "    v_level := o2c_llm_refilled(b.capacity, b.level, b.updated_ms, v_prov.window_ms, v_now);" \
    "    v_need := LEAST(o2c_llm_cost(b.budget, p_req, p_in, p_out, p_tok), b.capacity)::numeric"  \
    "      * v_prov.window_ms;"                                                                    \
    "    IF v_level < v_need THEN"                                                                 \
    "      v_reason := COALESCE(v_reason, 'budget');"                                              \
    "      v_wait := GREATEST(v_wait, ceil((v_need - v_level) / b.capacity)::bigint);"             \
    "    END IF;"                                                                                  \
    "  END LOOP;"                                                                                  \
    "  IF v_reason IS NULL AND v_prov.max_concurrency > 0 THEN"                                    \
    "    SELECT count(*), min(expires_ms) INTO v_busy, v_first FROM llm_leases"                    \
    "      WHERE provider = p_provider;"                                                           \
    "    IF v_busy >= v_prov.max_concurrency THEN"                                                 \
    "      v_reason := 'busy'; v_wait := LEAST(p_poll_ms, v_first - v_now);"                       \
    "    END IF;"                                                                                  \
    "  END IF;"                                                                                    \
    "  IF v_reason IS NULL AND EXISTS (SELECT 1 FROM llm_waiters w"                                \
    "      WHERE w.provider = p_provider AND w.instance <> p_instance"                             \
    "      AND (w.rank_ms < v_rank OR (w.rank_ms = v_rank AND w.instance < p_instance))) THEN"     \
    "    v_reason := 'turn'; v_wait := p_poll_ms;"                                                 \
    "  END IF;"                                                                                    \
    "  IF v_reason IS NOT NULL THEN"                                                               \
    "    v_wait := GREATEST(v_wait, 1);"                                                           \
    "    INSERT INTO llm_waiters AS w VALUES (p_provider, p_instance, p_job, v_now, v_rank,"       \
    "        v_now + v_wait + p_grace_ms)"                                                         \
    "      ON CONFLICT (provider, instance) DO UPDATE SET"                                         \
    "        since_ms = CASE WHEN w.job_key = EXCLUDED.job_key THEN w.since_ms"                    \
    "          ELSE EXCLUDED.since_ms END,"                                                        \
    "        job_key = EXCLUDED.job_key, rank_ms = EXCLUDED.rank_ms,"                              \
    "        expires_ms = EXCLUDED.expires_ms;"                                                    \
    "    RETURN QUERY SELECT 0, v_wait, v_reason, v_now;"                                          \
    "    RETURN;"                                                                                  \
    "  END IF;"                                                                                    \
    "  UPDATE llm_budgets SET level = o2c_llm_clamp("                                              \
    "      o2c_llm_refilled(capacity, level, updated_ms, v_prov.window_ms, v_now)"                 \
    "      - o2c_llm_cost(budget, p_req, p_in, p_out, p_tok)::numeric * v_prov.window_ms,"         \
    "      capacity, v_prov.window_ms), updated_ms = GREATEST(updated_ms, v_now)"                  \
    "    WHERE provider = p_provider AND capacity > 0;"                                            \
    "  INSERT INTO llm_leases VALUES (p_provider, p_instance, p_slot, v_now + p_lease_ms)"         \
    "    ON CONFLICT (provider, instance, slot) DO UPDATE SET expires_ms = EXCLUDED.expires_ms;"   \
    "  DELETE FROM llm_waiters WHERE provider = p_provider AND instance = p_instance;"             \
    "  INSERT INTO llm_job_turns VALUES (p_provider, p_job, v_now)"                                \
    "    ON CONFLICT (provider, job_key) DO UPDATE SET served_ms = EXCLUDED.served_ms;"            \
    "  RETURN QUERY SELECT 1, 0::bigint, 'granted'::text, v_now;"                                  \
    "END$$;" /* A call ended: its lease goes, the credits (debit - actual, each budget;            \
              * negative: more was used) go back, never above capacity. */                         \
    "CREATE FUNCTION o2c_llm_finish(p_provider text, p_instance text, p_slot bigint,"              \
    "    p_req bigint, p_in bigint, p_out bigint, p_tok bigint) RETURNS bigint"                    \
    "  LANGUAGE plpgsql AS $$"                                                                     \
    "DECLARE v_now bigint; v_window bigint;"                                                       \
    "BEGIN"                                                                                        \
    "  SELECT window_ms INTO v_window FROM llm_providers WHERE provider = p_provider FOR UPDATE;"  \
    "  IF NOT FOUND THEN RETURN v_now; END IF;"                                                    \
    "  UPDATE llm_budgets SET level = o2c_llm_clamp("                                              \
    "      o2c_llm_refilled(capacity, level, updated_ms, v_window, v_now)"                         \
    "      + o2c_llm_cost(budget, p_req, p_in, p_out, p_tok)::numeric * v_window,"                 \
    "      capacity, v_window), updated_ms = GREATEST(updated_ms, v_now)"                          \
    "    WHERE provider = p_provider AND capacity > 0"                                             \
    "      AND o2c_llm_cost(budget, p_req, p_in, p_out, p_tok) <> 0;"                              \
    "  DELETE FROM llm_leases"                                                                     \
    "    WHERE provider = p_provider AND instance = p_instance AND slot = p_slot;"                 \
    "  RETURN v_now;"                                                                              \
    "END$$;" /* What one instance learned from a response's headers, for every one:                \
              * a limit (> 0) becomes the capacity, never above a configured one; a                \
              * remaining (>= 0) lowers the level, never raises it. */                             \
    "CREATE FUNCTION o2c_llm_observe(p_provider text, p_budget text, p_limit bigint,"              \
    "    p_remaining bigint) RETURNS bigint LANGUAGE plpgsql AS $$"                                \
    "DECLARE v_now bigint; v_window bigint; b llm_budgets; v_level numeric;"                       \
    "  v_cap bigint;"                                                                              \
    "BEGIN"                                                                                        \
    "  SELECT window_ms INTO v_window FROM llm_providers WHERE provider = p_provider FOR UPDATE;"  \
    "  SELECT * INTO b FROM llm_budgets WHERE provider = p_provider AND budget = p_budget;"        \
    "  IF NOT FOUND THEN RETURN v_now; END IF;"                                                    \
    "  v_level := o2c_llm_refilled(b.capacity, b.level, b.updated_ms, v_window, v_now);"           \
    "  IF p_limit > 0 THEN"                                                                        \
    "    v_cap := CASE WHEN b.configured > 0 AND b.configured < p_limit THEN b.configured"         \
    "      ELSE p_limit END;"                                                                      \
    "    IF b.capacity = 0 THEN v_level := v_cap::numeric * v_window; END IF;"                     \
    "    b.capacity := v_cap; b.learned := p_limit;"                                               \
    "  END IF;"                                                                                    \
    "  IF p_remaining >= 0 AND b.capacity > 0 THEN"                                                \
    "    v_level := LEAST(v_level, p_remaining::numeric * v_window);"                              \
    "  END IF;"                                                                                    \
    "  UPDATE llm_budgets SET capacity = b.capacity, learned = b.learned,"                         \
    "    level = o2c_llm_clamp(v_level, b.capacity, v_window), updated_ms = GREATEST(updated_ms, " \
    "v_now)"                                                                                       \
    "    WHERE provider = p_provider AND budget = p_budget;"                                       \
    "  RETURN v_now;"                                                                              \
    "END$$;"

#endif
