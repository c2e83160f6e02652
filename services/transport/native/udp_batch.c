/*
 * Batched UDP receive for the gateway's UDP ports (issue #14), as a Node-API addon.
 *
 * node's dgram hands JavaScript one datagram per libuv callback: a recvmsg, a fresh buffer, an
 * `rinfo` object and an event each. At 60k+ ESP datagrams/s that is ~20% of the gateway's main
 * thread. Here one readiness callback reads the socket until it is empty or a budget is spent,
 * inside one callback scope, and asks the kernel for UDP GRO (UDP_GRO, Linux >= 5.0): datagrams of
 * one flow the kernel has coalesced (from a GRO-capable NIC, or a peer's UDP_SEGMENT send) arrive
 * as one read with their segment size, and JavaScript cuts them apart again.
 *
 * The socket is ours (socket, bind, sendmsg), not dgram's: nothing here reaches into node's
 * private handles. Sends are non-blocking; a send the kernel refuses (EAGAIN, ENOBUFS, ...) is
 * dropped and counted, as a UDP sender may (dgram would queue it without bound instead).
 *
 * JavaScript interface (services/transport/src/native-udp.ts is the only caller):
 *   open(address, port, receiveBuffer, onMessage) -> handle     throws Error with .code (EADDRINUSE...)
 *     onMessage(buffer, segmentSize, address, port): segmentSize 0 when not coalesced
 *   send(handle, data, address, port, segmentSize) -> 0 or -errno   segmentSize > 0: UDP_SEGMENT
 *   localPort(handle) -> number
 *   receiveBuffer(handle) -> number                              getsockopt SO_RCVBUF
 *   counters(handle) -> [sendErrors, truncated, reads]        a refused coalesced send is not counted
 *   features(handle) -> { gso, gro }                            what the kernel offered this socket
 *   close(handle)                                                idempotent
 * No crypto here; no allocation that outlives a read except the buffer handed to JavaScript.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

/* A read of a coalesced datagram can be up to 64 KiB; a plain one fits in the same buffer. */
#define READ_BUFFER 65536
/* Reads per readiness callback, and datagrams (segments counted) per callback: then back to the loop. */
#define READS_PER_TURN 64
#define DATAGRAMS_PER_TURN 256

typedef struct {
  uv_poll_t poll;
  napi_env env;
  napi_ref on_message;
  napi_ref resource;
  napi_async_context async;
  int fd;
  int family;
  int closing;
  /*
   * The struct is freed when both are done: libuv's close callback (the poll handle's memory is
   * libuv's until then) and the finalizer of the JavaScript handle (a call on a closed handle reads
   * `closing` here, never freed memory). A handle collected while open is closed then.
   */
  int closed;
  int finalized;
  napi_async_cleanup_hook_handle cleanup;
  int gso; /* the kernel knows UDP_SEGMENT (Linux >= 4.18) */
  int gro; /* UDP_GRO is on (Linux >= 5.0) */
  double send_errors;
  double truncated;
  double reads;
  unsigned char buffer[READ_BUFFER];
} Bind;

#define CHECK(env, call)                                                                           \
  do {                                                                                             \
    if ((call) != napi_ok) {                                                                       \
      napi_throw_error((env), "IKEGATE_ERR_NATIVE_UDP", #call " failed");                          \
      return NULL;                                                                                 \
    }                                                                                              \
  } while (0)

/* Throws as node's dgram does: `bind EADDRINUSE 127.0.0.1:500`, with .code, .errno, .syscall. */
static napi_value throw_errno(napi_env env, int err, const char *what, const char *address, int port) {
  char message[INET6_ADDRSTRLEN + 160];
  char unknown[32];
  const char *name = err == EINVAL ? "EINVAL" : uv_err_name(-err);
  if (strncmp(name, "Unknown", 7) == 0) { /* uv_err_name allocates for an errno it does not know */
    snprintf(unknown, sizeof unknown, "E%d", err);
    name = unknown;
  }
  if (address != NULL)
    snprintf(message, sizeof message, "%s %s %s:%d (%s)", what, name, address, port, strerror(err));
  else
    snprintf(message, sizeof message, "%s %s (%s)", what, name, strerror(err));
  napi_value msg, code, error;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_error(env, code, msg, &error);
  napi_value errno_value;
  napi_create_int32(env, -err, &errno_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_value syscall;
  napi_create_string_utf8(env, what, NAPI_AUTO_LENGTH, &syscall);
  napi_set_named_property(env, error, "syscall", syscall);
  if (address != NULL) {
    napi_value a, p;
    napi_create_string_latin1(env, address, NAPI_AUTO_LENGTH, &a);
    napi_create_int32(env, port, &p);
    napi_set_named_property(env, error, "address", a);
    napi_set_named_property(env, error, "port", p);
  }
  napi_throw(env, error);
  return NULL;
}

/* A numeric address (IPv4, IPv6, IPv6 with %scope) and port to a sockaddr; 0 or -EINVAL. */
static int to_sockaddr(const char *address, int port, struct sockaddr_storage *out, socklen_t *len) {
  memset(out, 0, sizeof *out);
  struct sockaddr_in *v4 = (struct sockaddr_in *)out;
  if (inet_pton(AF_INET, address, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    *len = sizeof *v4;
    return 0;
  }
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
  if (inet_pton(AF_INET6, address, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    *len = sizeof *v6;
    return 0;
  }
  struct addrinfo hints, *found = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_flags = AI_NUMERICHOST;
  hints.ai_socktype = SOCK_DGRAM;
  if (getaddrinfo(address, NULL, &hints, &found) != 0 || found == NULL) return -EINVAL;
  if (found->ai_addrlen > sizeof *out) {
    freeaddrinfo(found);
    return -EINVAL;
  }
  memcpy(out, found->ai_addr, found->ai_addrlen);
  *len = found->ai_addrlen;
  freeaddrinfo(found);
  ((struct sockaddr_in6 *)out)->sin6_port = htons((uint16_t)port); /* same offset in sockaddr_in */
  return 0;
}

static void on_closed(uv_handle_t *handle) {
  Bind *b = handle->data;
  b->closed = 1;
  /* Also tells node, tearing down a worker's environment, that this socket is gone. */
  if (b->cleanup != NULL) napi_remove_async_cleanup_hook(b->cleanup);
  b->cleanup = NULL;
  if (b->finalized) free(b);
}

/*
 * Stops reading, releases the port at once (as dgram's close does: a bind of the same port may
 * follow in the same turn), and frees what JavaScript held. uv_close stops the poll handle (out of
 * epoll) synchronously, so the descriptor is closed after it: never while libuv still watches it,
 * and never a number a newer socket may have been given meanwhile.
 */
static void stop(Bind *b) {
  if (b->closing) return;
  b->closing = 1;
  uv_close((uv_handle_t *)&b->poll, on_closed);
  close(b->fd);
  b->fd = -1;
  napi_delete_reference(b->env, b->on_message);
  napi_delete_reference(b->env, b->resource);
  napi_async_destroy(b->env, b->async);
}

/* A worker thread's environment going away with the socket open: close it; node waits for on_closed. */
static void cleanup_hook(napi_async_cleanup_hook_handle handle, void *data) {
  (void)handle;
  stop((Bind *)data);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  Bind *b = data;
  b->finalized = 1;
  if (!b->closing) {
    b->env = env;
    stop(b); /* collected while open: on_closed frees */
  } else if (b->closed) {
    free(b);
  }
}

static const napi_type_tag BIND_TAG = {0x6b3e1f0a9c2d4e57ULL, 0xa1b2c3d4e5f60718ULL};

static void on_readable(uv_poll_t *poll, int status, int events) {
  (void)events;
  Bind *b = poll->data;
  if (b->closing) return;
  if (status < 0) {
    /*
     * EPOLLERR: libuv has stopped this handle. Take the socket's pending error (SO_ERROR clears
     * it) and watch again, unless the descriptor itself is bad.
     */
    int pending = 0;
    socklen_t length = sizeof pending;
    if (getsockopt(b->fd, SOL_SOCKET, SO_ERROR, &pending, &length) == 0)
      uv_poll_start(&b->poll, UV_READABLE, on_readable);
    return;
  }
  napi_env env = b->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value callback, resource, receiver;
  napi_get_reference_value(env, b->on_message, &callback);
  napi_get_reference_value(env, b->resource, &resource);
  napi_get_undefined(env, &receiver);
  napi_callback_scope callback_scope;
  napi_open_callback_scope(env, resource, b->async, &callback_scope);
  int datagrams = 0;
  for (int i = 0; i < READS_PER_TURN && datagrams < DATAGRAMS_PER_TURN && !b->closing; i++) {
    struct sockaddr_storage from;
    char control[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {b->buffer, sizeof b->buffer};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = recvmsg(b->fd, &msg, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      break; /* EAGAIN: empty; anything else: the socket's pending error, cleared by this read */
    }
    b->reads += 1;
    if (msg.msg_flags & MSG_TRUNC) {
      b->truncated += 1;
      continue;
    }
    int segment = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c))
      if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO && c->cmsg_len >= CMSG_LEN(sizeof(int)))
        memcpy(&segment, CMSG_DATA(c), sizeof segment);
    if (segment < 0 || segment >= n) segment = 0;
    char text[INET6_ADDRSTRLEN + IF_NAMESIZE + 2] = "";
    int port = 0;
    if (from.ss_family == AF_INET) {
      struct sockaddr_in *s = (struct sockaddr_in *)&from;
      inet_ntop(AF_INET, &s->sin_addr, text, sizeof text);
      port = ntohs(s->sin_port);
    } else if (from.ss_family == AF_INET6) {
      struct sockaddr_in6 *s = (struct sockaddr_in6 *)&from;
      inet_ntop(AF_INET6, &s->sin6_addr, text, sizeof text);
      /* As node's rinfo: a link-local sender with its interface (fe80::1%eth0), so a reply finds it. */
      if (IN6_IS_ADDR_LINKLOCAL(&s->sin6_addr) && s->sin6_scope_id > 0) {
        size_t at = strlen(text);
        char name[IF_NAMESIZE];
        if (if_indextoname(s->sin6_scope_id, name) != NULL)
          snprintf(text + at, sizeof text - at, "%%%s", name);
        else
          snprintf(text + at, sizeof text - at, "%%%u", (unsigned)s->sin6_scope_id);
      }
      port = ntohs(s->sin6_port);
    } else {
      continue;
    }
    datagrams += segment > 0 ? (int)((n + segment - 1) / segment) : 1;
    napi_handle_scope inner;
    if (napi_open_handle_scope(env, &inner) != napi_ok) break;
    napi_value args[4], result;
    void *copy;
    int ok = napi_create_buffer_copy(env, (size_t)n, b->buffer, &copy, &args[0]) == napi_ok &&
             napi_create_int32(env, segment, &args[1]) == napi_ok &&
             napi_create_string_latin1(env, text, NAPI_AUTO_LENGTH, &args[2]) == napi_ok &&
             napi_create_int32(env, port, &args[3]) == napi_ok;
    napi_status called = ok ? napi_call_function(env, receiver, callback, 4, args, &result) : napi_ok;
    napi_close_handle_scope(env, inner);
    if (called == napi_pending_exception) {
      /* As dgram's 'message' listener: an exception is the process's uncaught exception. */
      napi_value error;
      napi_get_and_clear_last_exception(env, &error);
      napi_fatal_exception(env, error);
      break;
    }
  }
  napi_close_callback_scope(env, callback_scope);
  napi_close_handle_scope(env, scope);
}

static Bind *unwrap(napi_env env, napi_value value) {
  Bind *b = NULL;
  bool ours = false;
  napi_valuetype kind;
  if (napi_typeof(env, value, &kind) != napi_ok || kind != napi_external ||
      napi_check_object_type_tag(env, value, &BIND_TAG, &ours) != napi_ok || !ours ||
      napi_get_value_external(env, value, (void **)&b) != napi_ok || b == NULL) {
    napi_throw_type_error(env, "IKEGATE_ERR_NATIVE_UDP", "not a native UDP handle");
    return NULL;
  }
  return b;
}

/* The handle of a call that takes only one, or NULL with a TypeError pending. */
static Bind *handle_argument(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) {
    napi_throw_type_error(env, "IKEGATE_ERR_NATIVE_UDP", "a native UDP handle is needed");
    return NULL;
  }
  return unwrap(env, argv[0]);
}

static napi_value Open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char address[INET6_ADDRSTRLEN + 64];
  size_t length;
  int32_t port, receive_buffer;
  napi_valuetype kind;
  if (argc < 4 ||
      napi_get_value_string_latin1(env, argv[0], address, sizeof address, &length) != napi_ok ||
      length >= sizeof address - 1 || napi_get_value_int32(env, argv[1], &port) != napi_ok ||
      napi_get_value_int32(env, argv[2], &receive_buffer) != napi_ok ||
      napi_typeof(env, argv[3], &kind) != napi_ok || kind != napi_function || port < 0 ||
      port > 65535 || receive_buffer < 0) {
    napi_throw_type_error(env, "IKEGATE_ERR_NATIVE_UDP", "open(address, port, receiveBuffer, onMessage)");
    return NULL;
  }
  struct sockaddr_storage local;
  socklen_t local_length;
  if (to_sockaddr(address, port, &local, &local_length) != 0)
    return throw_errno(env, EINVAL, "bind", address, port);
  int fd = socket(local.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket", address, port);
  /*
   * The send buffer as large as the receive buffer asked for (Linux caps both at its
   * net.core.{r,w}mem_max): a batch of ESP sent at once must not find it full, as a refused send
   * is dropped here where dgram would queue it.
   */
  if (receive_buffer > 0 &&
      (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer) != 0 ||
       setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &receive_buffer, sizeof receive_buffer) != 0)) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "setsockopt", address, port);
  }
  if (bind(fd, (struct sockaddr *)&local, local_length) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "bind", address, port);
  }
  int on = 1, segment_size = 0;
  socklen_t option_length = sizeof segment_size;
  /* Best effort: a kernel without UDP GRO delivers datagrams one by one, with segment size 0. */
  int gro = setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof on) == 0;
  /* A kernel older than UDP_SEGMENT would ignore the cmsg and send one large datagram: ask first. */
  int gso = getsockopt(fd, SOL_UDP, UDP_SEGMENT, &segment_size, &option_length) == 0;
  Bind *b = calloc(1, sizeof *b);
  if (b == NULL) {
    close(fd);
    return throw_errno(env, ENOMEM, "open", address, port);
  }
  b->gso = gso;
  b->gro = gro;
  b->env = env;
  b->fd = fd;
  b->family = local.ss_family;
  napi_value resource, name, handle;
  uv_loop_t *loop;
  if (napi_create_reference(env, argv[3], 1, &b->on_message) != napi_ok ||
      napi_create_object(env, &resource) != napi_ok ||
      napi_create_reference(env, resource, 1, &b->resource) != napi_ok ||
      napi_create_string_utf8(env, "IKEGATE_UDP", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, resource, name, &b->async) != napi_ok ||
      napi_get_uv_event_loop(env, &loop) != napi_ok ||
      napi_create_external(env, b, finalize, NULL, &handle) != napi_ok) {
    /* Nothing here fails but for lack of memory: what was made is released, the socket closed. */
    if (b->on_message != NULL) napi_delete_reference(env, b->on_message);
    if (b->resource != NULL) napi_delete_reference(env, b->resource);
    if (b->async != NULL) napi_async_destroy(env, b->async);
    close(fd);
    free(b);
    napi_throw_error(env, "IKEGATE_ERR_NATIVE_UDP", "could not set up the UDP socket's handle");
    return NULL;
  }
  /* From here the struct belongs to the handle: its finalizer and libuv's close free it. */
  napi_type_tag_object(env, handle, &BIND_TAG);
  if (uv_poll_init(loop, &b->poll, fd) != 0) {
    b->closing = b->closed = 1; /* no libuv handle to close: the finalizer frees */
    close(fd);
    b->fd = -1;
    napi_delete_reference(env, b->on_message);
    napi_delete_reference(env, b->resource);
    napi_async_destroy(env, b->async);
    napi_throw_error(env, "IKEGATE_ERR_NATIVE_UDP", "could not poll the UDP socket");
    return NULL;
  }
  b->poll.data = b;
  napi_add_async_cleanup_hook(env, cleanup_hook, b, &b->cleanup);
  uv_poll_start(&b->poll, UV_READABLE, on_readable);
  return handle;
}

static napi_value Send(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], result;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) {
    napi_throw_type_error(env, "IKEGATE_ERR_NATIVE_UDP", "send(handle, data, address, port, segment)");
    return NULL;
  }
  Bind *b = unwrap(env, argv[0]);
  if (b == NULL) return NULL;
  void *data;
  size_t length, address_length;
  napi_typedarray_type type;
  char address[INET6_ADDRSTRLEN + 64];
  int32_t port, segment;
  if (napi_get_typedarray_info(env, argv[1], &type, &length, &data, NULL, NULL) != napi_ok ||
      type != napi_uint8_array ||
      napi_get_value_string_latin1(env, argv[2], address, sizeof address, &address_length) != napi_ok ||
      napi_get_value_int32(env, argv[3], &port) != napi_ok ||
      napi_get_value_int32(env, argv[4], &segment) != napi_ok) {
    napi_throw_type_error(env, "IKEGATE_ERR_NATIVE_UDP", "send(handle, Uint8Array, string, port, segment)");
    return NULL;
  }
  int rc = 0, coalesced = 0;
  struct sockaddr_storage to;
  socklen_t to_length;
  if (b->closing) rc = -EBADF;
  else if (port < 0 || port > 65535 || address_length >= sizeof address - 1 ||
           to_sockaddr(address, port, &to, &to_length) != 0)
    rc = -EINVAL;
  else {
    struct iovec iov = {data, length};
    struct msghdr msg;
    char control[CMSG_SPACE(sizeof(uint16_t))];
    memset(&msg, 0, sizeof msg);
    msg.msg_name = &to;
    msg.msg_namelen = to_length;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (segment > 0 && segment <= 65535 && (size_t)segment < length) {
      coalesced = 1;
      if (!b->gso) goto done;
      memset(control, 0, sizeof control);
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      uint16_t size = (uint16_t)segment;
      memcpy(CMSG_DATA(c), &size, sizeof size);
    }
    ssize_t sent;
    do sent = sendmsg(b->fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (sent < 0 && errno == EINTR);
    if (sent < 0) rc = -errno;
  }
done:
  if (coalesced && !b->gso) rc = -EOPNOTSUPP;
  /* A refused coalesced send is not counted: the caller sends its datagrams one by one then. */
  if (rc != 0 && !coalesced) b->send_errors += 1;
  CHECK(env, napi_create_int32(env, rc, &result));
  return result;
}

static napi_value LocalPort(napi_env env, napi_callback_info info) {
  napi_value result;
  Bind *b = handle_argument(env, info);
  if (b == NULL) return NULL;
  struct sockaddr_storage local;
  socklen_t length = sizeof local;
  int port = -1;
  if (!b->closing && getsockname(b->fd, (struct sockaddr *)&local, &length) == 0)
    port = ntohs(((struct sockaddr_in *)&local)->sin_port); /* same offset in sockaddr_in6 */
  CHECK(env, napi_create_int32(env, port, &result));
  return result;
}

static napi_value ReceiveBuffer(napi_env env, napi_callback_info info) {
  napi_value result;
  Bind *b = handle_argument(env, info);
  if (b == NULL) return NULL;
  int size = -1;
  socklen_t length = sizeof size;
  if (b->closing || getsockopt(b->fd, SOL_SOCKET, SO_RCVBUF, &size, &length) != 0) size = -1;
  CHECK(env, napi_create_int32(env, size, &result));
  return result;
}

static napi_value Counters(napi_env env, napi_callback_info info) {
  napi_value result, value;
  Bind *b = handle_argument(env, info);
  if (b == NULL) return NULL;
  const double values[3] = {b->send_errors, b->truncated, b->reads};
  CHECK(env, napi_create_array_with_length(env, 3, &result));
  for (uint32_t i = 0; i < 3; i++) {
    CHECK(env, napi_create_double(env, values[i], &value));
    CHECK(env, napi_set_element(env, result, i, value));
  }
  return result;
}

static napi_value Features(napi_env env, napi_callback_info info) {
  napi_value result, value;
  Bind *b = handle_argument(env, info);
  if (b == NULL) return NULL;
  CHECK(env, napi_create_object(env, &result));
  CHECK(env, napi_get_boolean(env, b->gso != 0, &value));
  CHECK(env, napi_set_named_property(env, result, "gso", value));
  CHECK(env, napi_get_boolean(env, b->gro != 0, &value));
  CHECK(env, napi_set_named_property(env, result, "gro", value));
  return result;
}

static napi_value Close(napi_env env, napi_callback_info info) {
  Bind *b = handle_argument(env, info);
  if (b == NULL) return NULL;
  stop(b); /* on_closed, on the loop, removes the cleanup hook */
  return NULL;
}

NAPI_MODULE_INIT() {
  const napi_property_descriptor functions[] = {
      {"open", NULL, Open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"send", NULL, Send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"localPort", NULL, LocalPort, NULL, NULL, NULL, napi_enumerable, NULL},
      {"receiveBuffer", NULL, ReceiveBuffer, NULL, NULL, NULL, napi_enumerable, NULL},
      {"counters", NULL, Counters, NULL, NULL, NULL, napi_enumerable, NULL},
      {"features", NULL, Features, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, Close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions) != napi_ok)
    return NULL;
  return exports;
}
