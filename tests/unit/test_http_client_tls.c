/* http_client over TLS: HTTP/2 multiplexing and HTTP/1.1 over https.
 *
 * The server is node (node:http2 / node:https, no packages) with a
 * throw-away self-signed certificate made by the openssl CLI; both are on
 * the build machine, and the test is skipped when either is missing.  The
 * server exits when its stdin closes, so it cannot outlive the test.  The
 * client side reuses the fixture of test_http_client.c (no handle left open
 * at loop close). */
#define HTTP_CLIENT_TEST_SERVER_ONLY
#include "test_http_client.c"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *node_server_js =
    "const fs = require('node:fs');\n"
    "const [key, cert, mode] = process.argv.slice(1);\n"
    "let conns = 0;\n"
    "const handler = (req, res) => {\n"
    "  if (req.url === '/stall') return;\n"
    "  res.setHeader('x-connections', String(conns));\n"
    "  res.setHeader('x-http-version', req.httpVersion);\n"
    "  res.end('ok');\n"
    "};\n"
    "const opts = {key: fs.readFileSync(key), cert: fs.readFileSync(cert)};\n"
    "const srv = mode === 'h2'\n"
    "  ? require('node:http2').createSecureServer({...opts, allowHTTP1: true}, handler)\n"
    "  : require('node:https').createServer(opts, handler);\n"
    "srv.on('secureConnection', () => conns++);\n"
    "srv.listen(0, '127.0.0.1', () => console.log(srv.address().port));\n"
    "process.stdin.on('end', () => process.exit(0));\n"
    "process.stdin.resume();\n";

struct tls_server {
    char dir[64];
    char key[96];
    char cert[96];
    pid_t pid;
    int stdin_fd;
    int port;
};

static struct tls_server tls;

struct tls_result {
    int called;
    long status;
    enum http_client_error error;
    char version[8];
    char connections[8];
};

static struct tls_result tls_results[32];
static int tls_done;

static int run_quiet(char *const argv[])
{
    pid_t pid;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -1;
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Makes the certificate and starts node in MODE ("h2" or "h1"); returns -1
 * when the tools are missing. */
static int tls_server_start(const char *mode)
{
    memset(&tls, 0, sizeof tls);
    snprintf(tls.dir, sizeof tls.dir, "/tmp/o2c-tls-XXXXXX");
    if (!mkdtemp(tls.dir))
        return -1;
    snprintf(tls.key, sizeof tls.key, "%s/key.pem", tls.dir);
    snprintf(tls.cert, sizeof tls.cert, "%s/cert.pem", tls.dir);
    char *openssl[] = {"openssl",
                       "req",
                       "-x509",
                       "-newkey",
                       "ec",
                       "-pkeyopt",
                       "ec_paramgen_curve:prime256v1",
                       "-nodes",
                       "-days",
                       "1",
                       "-subj",
                       "/CN=127.0.0.1",
                       "-addext",
                       "subjectAltName=IP:127.0.0.1",
                       "-keyout",
                       tls.key,
                       "-out",
                       tls.cert,
                       NULL};
    if (run_quiet(openssl) != 0)
        return -1;

    int in[2], out[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    char *argv[] = {"node", "-e", (char *)node_server_js, tls.key, tls.cert, (char *)mode, NULL};
    int rc = posix_spawnp(&tls.pid, "node", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    if (rc != 0) {
        close(in[1]);
        close(out[0]);
        return -1;
    }
    tls.stdin_fd = in[1];
    /* The first line on stdout is the port (bounded wait). */
    char line[32] = {0};
    size_t used = 0;
    struct pollfd pfd = {.fd = out[0], .events = POLLIN};
    while (used < sizeof line - 1 && !strchr(line, '\n') && poll(&pfd, 1, 15000) == 1) {
        ssize_t n = read(out[0], line + used, sizeof line - 1 - used);
        if (n <= 0)
            break;
        used += (size_t)n;
    }
    close(out[0]);
    tls.port = atoi(line);
    assert_true(tls.port > 0);
    return 0;
}

static void tls_server_stop(void)
{
    if (tls.pid > 0) {
        close(tls.stdin_fd);
        kill(tls.pid, SIGTERM);
        waitpid(tls.pid, NULL, 0);
        tls.pid = 0;
    }
    unlink(tls.key);
    unlink(tls.cert);
    rmdir(tls.dir);
}

static int tls_teardown(void **state)
{
    int rc = teardown(state);
    tls_server_stop();
    return rc;
}

static void tls_on_done(struct http_transfer *xfer, struct http_response *res, void *ud)
{
    struct tls_result *r = ud;
    (void)xfer;
    r->called++;
    r->status = res->status;
    r->error = res->error;
    const char *v = http_response_header(res, "x-http-version");
    const char *c = http_response_header(res, "x-connections");
    snprintf(r->version, sizeof r->version, "%s", v ? v : "");
    snprintf(r->connections, sizeof r->connections, "%s", c ? c : "");
    tls_done++;
}

static struct http_transfer *tls_start(const char *path, int slot)
{
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d%s", tls.port, path);
    struct http_client_request req = {.url = url};
    struct http_transfer *t =
        http_client_request(fx->client, &req, tls_on_done, &tls_results[slot]);
    assert_non_null(t);
    return t;
}

static void tls_use_client_trusting_cert(void)
{
    struct http_client_config config = {.ca_file = tls.cert};
    http_client_close(fx->client, NULL, NULL);
    fx->client = new_client(&config);
}

static void test_h2_multiplexes_parallel_transfers(void **state)
{
    (void)state;
    tls_done = 0;
    memset(tls_results, 0, sizeof tls_results);
    if (tls_server_start("h2") != 0)
        skip();
    tls_use_client_trusting_cert();
    enum { N = 10 };
    for (int i = 0; i < N; i++)
        tls_start("/", i);
    run_until(&tls_done, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(tls_results[i].error, HTTP_CLIENT_OK);
        assert_int_equal(tls_results[i].status, 200);
        assert_string_equal(tls_results[i].version, "2.0");
        assert_string_equal(tls_results[i].connections, "1");
    }
    struct http_client_stats s;
    http_client_get_stats(fx->client, &s);
    assert_int_equal(s.connections_opened, 1);
}

/* Over https with an HTTP/1.1-only server, transfers must not queue behind
 * a stalled first one while curl waits to learn whether it multiplexes. */
static void test_https_h1_does_not_queue_behind_a_stall(void **state)
{
    (void)state;
    tls_done = 0;
    memset(tls_results, 0, sizeof tls_results);
    if (tls_server_start("h1") != 0)
        skip();
    tls_use_client_trusting_cert();
    struct http_transfer *stall = tls_start("/stall", 0);
    for (int i = 1; i <= 4; i++)
        tls_start("/", i);
    run_until(&tls_done, 4);
    assert_int_equal(tls_results[0].called, 0);
    for (int i = 1; i <= 4; i++) {
        assert_int_equal(tls_results[i].status, 200);
        assert_string_equal(tls_results[i].version, "1.1");
    }
    http_client_cancel(stall);
}

static void test_untrusted_certificate_is_not_a_connect_error(void **state)
{
    (void)state;
    tls_done = 0;
    memset(tls_results, 0, sizeof tls_results);
    if (tls_server_start("h2") != 0)
        skip();
    /* Default client: the system CAs do not trust the throw-away cert. */
    tls_start("/", 0);
    run_until(&tls_done, 1);
    assert_int_equal(tls_results[0].error, HTTP_CLIENT_ERR_OTHER);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    /* Shared fixture helpers this file does not need. */
    (void)run_until_server_idle;
    (void)unused_port;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_h2_multiplexes_parallel_transfers, setup,
                                        tls_teardown),
        cmocka_unit_test_setup_teardown(test_https_h1_does_not_queue_behind_a_stall, setup,
                                        tls_teardown),
        cmocka_unit_test_setup_teardown(test_untrusted_certificate_is_not_a_connect_error, setup,
                                        tls_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
