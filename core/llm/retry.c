/* Retry classification and backoff; see retry.h for the rules. */
#include "llm/retry.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void retry_policy_default(struct retry_policy *policy)
{
    *policy = (struct retry_policy){
        .max_attempts = 4,
        .base_ms = 500,
        .cap_ms = 8000,
    };
}

const char *retry_reason_name(enum retry_reason reason)
{
    static const char *const names[] = {
        [RETRY_OK] = "ok",
        [RETRY_RETRYABLE_STATUS] = "retryable_status",
        [RETRY_TRANSPORT] = "transport",
        [RETRY_SHOULD_RETRY_TRUE] = "should_retry_true",
        [RETRY_NOT_RETRYABLE] = "not_retryable",
        [RETRY_SHOULD_RETRY_FALSE] = "should_retry_false",
        [RETRY_SPEND_LIMIT] = "spend_limit",
        [RETRY_ATTEMPTS_EXHAUSTED] = "attempts_exhausted",
        [RETRY_DEADLINE] = "deadline",
    };
    return (unsigned)reason < sizeof names / sizeof names[0] ? names[reason] : "?";
}

bool retry_status_is_retryable(long status)
{
    return status == 0 || status == 408 || status == 409 || status == 429 ||
           (status >= 500 && status <= 599);
}

bool retry_is_spend_limit(const char *error_type)
{
    return error_type && strstr(error_type, "enforced_spend_limit_reached") != NULL;
}

/* The longest wait a server may ask for (about 31 years): beyond it a value
 * is no wait anyone meant, and its milliseconds could overflow. */
#define RETRY_WAIT_MAX_MS 1000000000000LL

/* A non-negative decimal number of UNIT milliseconds, the whole string. */
static bool parse_amount_ms(const char *text, double unit, int64_t *ms)
{
    while (*text == ' ' || *text == '\t')
        text++;
    if (*text < '0' || *text > '9')
        return false;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    while (*end == ' ' || *end == '\t')
        end++;
    if (errno || *end || !isfinite(v) || v < 0 || v * unit > (double)RETRY_WAIT_MAX_MS)
        return false;
    *ms = (int64_t)ceil(v * unit);
    return true;
}

int64_t retry_server_delay_ms(llm_header_fn get, void *ctx, int64_t wall_ms)
{
    if (!get)
        return -1;
    int64_t ms;
    const char *v = get(ctx, "retry-after-ms");
    if (v && parse_amount_ms(v, 1, &ms))
        return ms;
    v = get(ctx, "retry-after");
    if (!v)
        return -1;
    if (parse_amount_ms(v, 1000, &ms))
        return ms;
    time_t when = curl_getdate(v, NULL); /* RFC 9110 HTTP-date, all three forms */
    /* curl takes years like 2024002800: such a date is refused like an
     * unreadable one (its milliseconds would overflow). */
    if (when < 0 || (int64_t)when > (wall_ms + RETRY_WAIT_MAX_MS) / 1000)
        return -1;
    int64_t delta = (int64_t)when * 1000 - wall_ms;
    return delta > 0 ? delta : 0;
}

static uint32_t default_random(void *ctx, uint32_t upper_bound)
{
    (void)ctx;
    return randombytes_uniform(upper_bound);
}

int64_t retry_backoff_ms(const struct retry_policy *policy, int attempt)
{
    int shift = attempt < 1 ? 0 : attempt - 1;
    int64_t ceiling = policy->cap_ms;
    if (shift < 62 && policy->base_ms <= (policy->cap_ms >> shift))
        ceiling = policy->base_ms << shift; /* checked: cannot overflow */
    if (ceiling <= 0)
        return 0;
    if (ceiling > (int64_t)UINT32_MAX - 1)
        ceiling = (int64_t)UINT32_MAX - 1;
    retry_random_fn draw = policy->random ? policy->random : default_random;
    return draw(policy->random_ctx, (uint32_t)ceiling + 1);
}

/* "HTTP 529" or "no response", plus the error type when known. */
static void describe_failure(const struct retry_attempt *a, char *buf, size_t cap)
{
    int n =
        a->status ? snprintf(buf, cap, "HTTP %ld", a->status) : snprintf(buf, cap, "no response");
    if (a->error_type && *a->error_type && n >= 0 && (size_t)n < cap)
        snprintf(buf + n, cap - (size_t)n, " (%s)", a->error_type);
}

static void stop(struct retry_decision *out, enum retry_reason reason, const char *what,
                 const char *why)
{
    out->retry = false;
    out->delay_ms = 0;
    out->reason = reason;
    /* Bounded parts: the failure ("HTTP 529 (overloaded_error)") and the why. */
    snprintf(out->message, sizeof out->message, "%.64s: %.120s", what, why);
}

/* Rules 1-3: whether this failure is of a retryable kind at all. */
static enum retry_reason classify(const struct retry_attempt *a)
{
    if (a->status >= 200 && a->status <= 299)
        return RETRY_OK;
    if (retry_is_spend_limit(a->error_type))
        return RETRY_SPEND_LIMIT;
    const char *should = a->get_header ? a->get_header(a->header_ctx, "x-should-retry") : NULL;
    if (should && strcasecmp(should, "true") == 0)
        return RETRY_SHOULD_RETRY_TRUE;
    if (should && strcasecmp(should, "false") == 0)
        return RETRY_SHOULD_RETRY_FALSE;
    if (a->status == 0)
        return RETRY_TRANSPORT;
    return retry_status_is_retryable(a->status) ? RETRY_RETRYABLE_STATUS : RETRY_NOT_RETRYABLE;
}

void retry_decide(const struct retry_policy *policy, const struct retry_attempt *a,
                  struct retry_decision *out)
{
    memset(out, 0, sizeof *out);
    char what[96];
    describe_failure(a, what, sizeof what);
    enum retry_reason reason = classify(a);
    switch (reason) {
    case RETRY_OK:
        stop(out, reason, what, "succeeded");
        return;
    case RETRY_SPEND_LIMIT:
        stop(out, reason, what, "spend limit reached, not retried (raise the limit)");
        return;
    case RETRY_SHOULD_RETRY_FALSE:
        stop(out, reason, what, "not retried (x-should-retry: false)");
        return;
    case RETRY_NOT_RETRYABLE:
        stop(out, reason, what, "not retried");
        return;
    default:
        break;
    }
    if (a->attempt >= policy->max_attempts) {
        char why[64];
        snprintf(why, sizeof why, "gave up after %d attempts", a->attempt);
        stop(out, RETRY_ATTEMPTS_EXHAUSTED, what, why);
        return;
    }
    int64_t delay = retry_server_delay_ms(a->get_header, a->header_ctx, a->wall_ms);
    out->server_delay = delay >= 0;
    if (delay < 0)
        delay = retry_backoff_ms(policy, a->attempt);
    if (a->deadline > 0 && a->now + delay >= a->deadline) {
        char why[128];
        snprintf(why, sizeof why, "not retried: waiting %lld ms%s would pass the section deadline",
                 (long long)delay, out->server_delay ? " (as the provider asks)" : "");
        stop(out, RETRY_DEADLINE, what, why);
        return;
    }
    out->retry = true;
    out->delay_ms = delay;
    out->reason = reason;
    snprintf(out->message, sizeof out->message, "%s: retrying in %lld ms (attempt %d of %d%s)",
             what, (long long)delay, a->attempt + 1, policy->max_attempts,
             out->server_delay ? ", as the provider asks" : "");
}
