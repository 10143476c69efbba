/* count_handshakes.so: loaded with LD_PRELOAD into the proxy under test by
 * tools/tls-resumption, so that the proxy's own view of resumption is measured without
 * changing it (switchboard has no resumption metric, and HAProxy and nginx are taken
 * as Debian ships them).
 *
 *   SB_RESUMPTION_LOG      file to append one line per server handshake completed,
 *                          "handshake resumed|full VERSION tickets=N", and one line per
 *                          SSL_CTX_set_num_tickets call, "set_num_tickets ASKED -> GIVEN"
 *   SB_RESUMPTION_TICKETS  when set, the ticket count every SSL_CTX_set_num_tickets
 *                          call gets instead of the one the program asked for
 *
 * It wraps two libssl functions (the proxies link libssl dynamically): SSL_do_handshake,
 * which switchboard, HAProxy and nginx all drive their server handshakes with, and
 * SSL_CTX_set_num_tickets. The environment is read once, when the library is loaded,
 * because nginx clears its workers' environment after forking them. Appends of one
 * line are atomic (O_APPEND, one write), so several threads or workers may share the
 * file. A measurement tool, never part of the product. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int forced_tickets = -1;
static int log_fd = -1;
static int counted_index = -1; /* SSL ex_data slot: non-NULL once a handshake is counted */
static pthread_once_t index_once = PTHREAD_ONCE_INIT;

__attribute__((constructor)) static void load_settings(void) {
    const char* tickets = getenv("SB_RESUMPTION_TICKETS");
    if (tickets != NULL && *tickets != '\0') forced_tickets = atoi(tickets);
    const char* path = getenv("SB_RESUMPTION_LOG");
    if (path != NULL) log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

static void note(const char* line) {
    if (log_fd >= 0 && write(log_fd, line, strlen(line)) < 0) {
        /* Nothing to do: a line lost shows as a count that does not add up. */
    }
}

static void make_index(void) {
    counted_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

int SSL_CTX_set_num_tickets(SSL_CTX* ctx, size_t num_tickets) {
    int (*real)(SSL_CTX*, size_t) =
        (int (*)(SSL_CTX*, size_t))dlsym(RTLD_NEXT, "SSL_CTX_set_num_tickets");
    size_t given = forced_tickets >= 0 ? (size_t)forced_tickets : num_tickets;
    char line[80];
    snprintf(line, sizeof line, "set_num_tickets %zu -> %zu\n", num_tickets, given);
    note(line);
    return real(ctx, given);
}

int SSL_do_handshake(SSL* ssl) {
    int (*real)(SSL*) = (int (*)(SSL*))dlsym(RTLD_NEXT, "SSL_do_handshake");
    int rc = real(ssl);
    if (rc == 1 && SSL_is_server(ssl)) {
        pthread_once(&index_once, make_index);
        /* A program may call SSL_do_handshake again once it is done: count once. */
        if (counted_index >= 0 && SSL_get_ex_data(ssl, counted_index) == NULL) {
            SSL_set_ex_data(ssl, counted_index, ssl);
            char line[96];
            snprintf(line, sizeof line, "handshake %s %s tickets=%zu\n",
                     SSL_session_reused(ssl) ? "resumed" : "full", SSL_get_version(ssl),
                     SSL_get_num_tickets(ssl));
            note(line);
        }
    }
    return rc;
}
