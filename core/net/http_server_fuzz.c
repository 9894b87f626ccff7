/* See http_server_fuzz.h.  Kept apart from the server's files: nothing in
 * the product calls these. */
#include <sys/ioctl.h>
#include "net/http_server_fuzz.h"
#include "net/http_server_internal.h"

static void fuzz_on_connection(uv_stream_t *listener, int status)
{
    if (status == 0)
        http_conn_accept(listener->data);
}

int http_server_fuzz_listen(struct http_server *srv, uv_os_sock_t listen_fd)
{
    if (srv->shutting_down || srv->listening)
        return UV_EINVAL;
    int rc = uv_tcp_open(&srv->listener, listen_fd);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener, 16, fuzz_on_connection);
    if (rc != 0)
        return rc;
    srv->listening = true;
    return 0;
}

/* Bytes the kernel holds for C that the server has not read yet. */
static int conn_unread(const struct http_conn *c)
{
    uv_os_fd_t fd;
    int n = 0;
    if (uv_fileno((const uv_handle_t *)&c->tcp, &fd) != 0)
        return 0;
    if (ioctl(fd, FIONREAD, &n) != 0)
        return 0;
    return n;
}

static int conn_settled(const struct http_conn *c)
{
    switch (c->state) {
    case CONN_CLOSED:
        return 1;
    case CONN_LINGER:
        return c->writes_pending == 0;
    case CONN_HEAD:
    case CONN_BODY:
        return c->writes_pending == 0 && c->rpos == c->rlen && !c->doomed && conn_unread(c) == 0;
    case CONN_HANDLING:
        return 0;
    }
    return 0;
}

int http_server_fuzz_settled(const struct http_server *srv)
{
    for (const struct http_conn *c = srv->conns; c; c = c->next)
        if (!conn_settled(c))
            return 0;
    return 1;
}
