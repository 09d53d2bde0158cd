/*
 * probe-agent: one small process per network namespace that opens listeners and makes
 * connections on command, and reports outcomes as data. Written in C because a lab may hold
 * hundreds of namespaces: this starts in well under a millisecond and uses ~1 MB.
 *
 * usage: probe-agent [--netns PATH] [--mntns PATH]   (its environment is the container's)
 * Commands on stdin, one per line; one result line per command on stdout, "<id> ...".
 *   L id tcp|udp port [bind]            listen; a listener tells each client "seen IP PORT"
 *                                        (TCP without bind: dual-stack, IPv4 and IPv6)
 * Addresses may be IPv6 for TCP (connect, listen, proxy bind and target, source); UDP and
 * ICMP probes are IPv4 only.
 *   C id tcp dst port timeout_ms [src|-] [token|-] [seen_ms]   TCP connect; once connected, the
 *                                        listener's "seen" line is waited for seen_ms (default timeout_ms)
 *   U id dst port timeout_ms [src|-] [token]       UDP request/response
 *   P id dst timeout_ms [src|-]          ICMP echo
 *   S id token [wait_ms]                 which source did a listener see with this token; with
 *                                        wait_ms, answers when it arrives (or "none" after wait_ms)
 *   X id tcp|udp port dst dport [bind]   userland proxy (like docker-proxy)
 *   H id tcp|udp port [bind|-] [drop]    hold a port: bound (and listening) but never served, like
 *                                        dockerd's dummy proxy without the userland proxy; with drop,
 *                                        a socket filter drops every packet (29's port allocator: a
 *                                        SYN to it goes unanswered, where older releases shook hands)
 *   K id port tcp|udp                    close listener/proxy/held port on that port
 *   R id path                            read a file (base64)
 *   E id name                            environment variable (base64)
 *   N id name timeout_ms                 resolve a name as a process here would: /etc/hosts, then
 *                                        the first nameserver of /etc/resolv.conf (A query)
 *   A id                                 forget this namespace's ARP entries (frees room in the
 *                                        kernel's neighbour table, which all namespaces share)
 *   T id dev ipA ipB tcp|udp|icmp        capture on dev (AF_PACKET) the IPv4 frames between A and B;
 *                                        replies "ok ID", the id that Y stops it by
 *   Y id capture-id                      stop that capture: "frames N TAG=COUNT…" (TAG a VLAN id, or
 *                                        "none" for untagged), counted over both directions
 *   Q                                    quit (also on end of stdin)
 * Outcomes: connected [seen=IP:PORT], refused, timeout, unreachable ERR, error TEXT. A probe whose
 * packet left ends with its identity, so a trace of the namespaces it crossed can be matched to
 * it: local=IP:PORT (the source address and port the kernel gave a TCP or UDP probe) or
 * icmp=ID:SEQ (the echo request's identifier and sequence number).
 * Resolutions: resolved IP hosts|dns:SERVER, or none nxdomain|servfail|noanswer|timeout|no-nameserver.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <linux/filter.h>
#include <sys/ioctl.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <linux/if_packet.h>
#include <linux/if_ether.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

enum kind {
  K_FREE,
  K_STDIN,
  K_TCP_LISTEN,
  K_UDP_LISTEN,
  K_ACCEPTED,    /* a client of a TCP listener */
  K_TCP_CONNECT, /* an outgoing TCP probe */
  K_UDP_PROBE,
  K_ICMP,
  K_PX_LISTEN,   /* TCP proxy listener */
  K_PX_CLIENT,   /* accepted proxy client */
  K_PX_UP,       /* proxy connection to the backend */
  K_PXU_LISTEN,  /* UDP proxy listener */
  K_PXU_UP,      /* UDP proxy upstream socket for one client */
  K_DNS,         /* an outgoing DNS query */
  K_CAPTURE,     /* a packet socket counting the 802.1Q tags of one pair's frames */
  K_SEEN_WAIT,   /* a question "who sent this token?" waiting for its answer (no socket) */
};

/* An accepted client's token line is an answer on its way (its sender is connected): it is
 * waited for as long as the harness waits for any answer (ANSWER_WAIT_MS in
 * harness/run/probe-wait.ts), then the slot is freed. */
#define ANSWER_WAIT_MS 20000

#define MAX_TAGS 8
struct capture {
  struct in_addr a, b;
  int proto;
  int ntags;
  int tag[MAX_TAGS]; /* -1: untagged */
  int count[MAX_TAGS];
};

/* an IPv4 or IPv6 socket address */
union sa {
  struct sockaddr s;
  struct sockaddr_in v4;
  struct sockaddr_in6 v6;
};

struct slot {
  int fd;
  enum kind kind;
  char id[48];
  long long deadline; /* CLOCK_MONOTONIC ms, 0 = none */
  int moved;          /* had an event in this round of the loop */
  int state;          /* TCP connect: 0 connecting, 1 waiting for the seen line; proxy up: 0 connecting */
  int seen_wait;      /* TCP connect: how long the seen line may take once connected (ms) */
  char buf[512];
  int blen;
  int peer; /* paired slot (proxies) */
  int port;
  union sa addr;           /* proxy target / UDP proxy client / accepted client */
  struct in_addr local;    /* UDP proxy: the address the client sent to */
  char token[48];
  uint16_t echo_id, echo_seq;
  struct capture *cap;
  char ident[48]; /* a probe's packet identity ("local=IP:PORT", "icmp=ID:SEQ"), appended to its outcome */
};

static struct slot *slots;
static int nslots;

struct seen_entry {
  char token[48];
  char who[64];
};
static struct seen_entry *seen_log;
static int nseen, capseen;

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void reply(const char *id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(const char *id, const char *fmt, ...) {
  va_list ap;
  printf("%s ", id);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

static int new_slot(int fd, enum kind kind, const char *id) {
  int i;
  for (i = 0; i < nslots; i++)
    if (slots[i].kind == K_FREE) break;
  if (i == nslots) {
    nslots = nslots ? nslots * 2 : 64;
    slots = realloc(slots, sizeof(*slots) * nslots);
    for (int j = i; j < nslots; j++) slots[j].kind = K_FREE;
  }
  memset(&slots[i], 0, sizeof(slots[i]));
  slots[i].fd = fd;
  slots[i].kind = kind;
  slots[i].peer = -1;
  snprintf(slots[i].id, sizeof(slots[i].id), "%s", id ? id : "-");
  return i;
}

static void free_slot(int i) {
  if (slots[i].kind == K_FREE) return;
  free(slots[i].cap);
  slots[i].cap = NULL;
  if (slots[i].fd >= 0) close(slots[i].fd);
  slots[i].kind = K_FREE;
  slots[i].fd = -1;
}

static void fmt_sa(const union sa *a, char *out, size_t len);

static void log_seen(const char *token, const union sa *from) {
  if (!token || !*token) return;
  if (nseen == capseen) {
    capseen = capseen ? capseen * 2 : 64;
    seen_log = realloc(seen_log, sizeof(*seen_log) * capseen);
  }
  snprintf(seen_log[nseen].token, sizeof(seen_log[nseen].token), "%s", token);
  fmt_sa(from, seen_log[nseen].who, sizeof(seen_log[nseen].who));
  nseen++;
  for (int i = 0; i < nslots; i++) {
    if (slots[i].kind != K_SEEN_WAIT || strcmp(slots[i].token, token) != 0) continue;
    reply(slots[i].id, "seen %s", seen_log[nseen - 1].who);
    free_slot(i);
  }
}

/* "probe TOKEN\n" → TOKEN */
static void token_of(const char *buf, int len, char *out, size_t outlen) {
  out[0] = 0;
  if (len < 7 || strncmp(buf, "probe ", 6) != 0) return;
  int n = 0;
  for (int i = 6; i < len && buf[i] != '\n' && buf[i] != ' ' && n + 1 < (int)outlen; i++) out[n++] = buf[i];
  out[n] = 0;
}

static int set_nonblock(int fd) { return fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

static int parse_addr(const char *ip, int port, struct sockaddr_in *sa) {
  memset(sa, 0, sizeof(*sa));
  sa->sin_family = AF_INET;
  sa->sin_port = htons(port);
  return inet_pton(AF_INET, ip, &sa->sin_addr) == 1 ? 0 : -1;
}

/* An IPv4 or IPv6 address (an IPv6 one has a colon); returns the socket address length or -1. */
static int parse_sa(const char *ip, int port, union sa *a) {
  memset(a, 0, sizeof(*a));
  if (!strchr(ip, ':')) return parse_addr(ip, port, &a->v4) < 0 ? -1 : (int)sizeof(a->v4);
  a->v6.sin6_family = AF_INET6;
  a->v6.sin6_port = htons(port);
  return inet_pton(AF_INET6, ip, &a->v6.sin6_addr) == 1 ? (int)sizeof(a->v6) : -1;
}

static socklen_t sa_len(const union sa *a) { return a->s.sa_family == AF_INET6 ? sizeof(a->v6) : sizeof(a->v4); }

/* "IP:PORT"; an IPv4 client of a dual-stack listener (::ffff:a.b.c.d) is written as IPv4 */
static void fmt_sa(const union sa *a, char *out, size_t len) {
  char ip[INET6_ADDRSTRLEN];
  if (a->s.sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&a->v6.sin6_addr)) {
    inet_ntop(AF_INET, &a->v6.sin6_addr.s6_addr[12], ip, sizeof(ip));
    snprintf(out, len, "%s:%d", ip, ntohs(a->v6.sin6_port));
  } else if (a->s.sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &a->v6.sin6_addr, ip, sizeof(ip));
    snprintf(out, len, "%s:%d", ip, ntohs(a->v6.sin6_port));
  } else {
    snprintf(out, len, "%s:%d", inet_ntoa(a->v4.sin_addr), ntohs(a->v4.sin_port));
  }
}

static const char *errname(int e) {
  switch (e) {
  case EHOSTUNREACH: return "EHOSTUNREACH";
  case ENETUNREACH: return "ENETUNREACH";
  case ECONNREFUSED: return "ECONNREFUSED";
  case ETIMEDOUT: return "ETIMEDOUT";
  case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
  case EADDRINUSE: return "EADDRINUSE";
  case EACCES: return "EACCES";
  case EPERM: return "EPERM";
  case EINVAL: return "EINVAL";
  case ENOENT: return "ENOENT";
  default: return strerror(e);
  }
}

/* A probe's outcome line, with the identity of the packet it sent when one left. */
static void outcome(const struct slot *sl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void outcome(const struct slot *sl, const char *fmt, ...) {
  va_list ap;
  printf("%s ", sl->id);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  if (sl->ident[0]) printf(" %s", sl->ident);
  putchar('\n');
  fflush(stdout);
}

/* Report a failed probe by errno, as the outcome names the harness understands. */
static void report_errno(const struct slot *sl, int e) {
  if (e == ECONNREFUSED) outcome(sl, "refused");
  else if (e == EHOSTUNREACH || e == ENETUNREACH) outcome(sl, "unreachable %s", errname(e));
  else if (e == ETIMEDOUT) outcome(sl, "timeout");
  else outcome(sl, "error %s", errname(e));
}

/* "local=IP:PORT" of a connected (or connecting) socket: the source its packets carry. */
static void local_ident(struct slot *sl) {
  struct sockaddr_storage me;
  socklen_t ml = sizeof(me);
  /* IPv4 only: rule paths trace IPv4 packets (an IPv6 probe's outcome carries no identity) */
  if (getsockname(sl->fd, (struct sockaddr *)&me, &ml) != 0 || me.ss_family != AF_INET) return;
  const struct sockaddr_in *in = (const struct sockaddr_in *)&me;
  if (in->sin_port) snprintf(sl->ident, sizeof(sl->ident), "local=%s:%d", inet_ntoa(in->sin_addr), ntohs(in->sin_port));
}

static int bind_source(int fd, const char *src) {
  if (!src || !*src || strcmp(src, "-") == 0) return 0;
  union sa sa;
  int len = parse_sa(src, 0, &sa);
  if (len < 0) {
    errno = EINVAL;
    return -1;
  }
  return bind(fd, &sa.s, len);
}

/* This namespace's /proc/<pid>/net, opened before entering a mount namespace: a container's
   own procfs (Docker mounts one) belongs to its pid namespace, where /proc/self is absent. */
static int proc_net_fd = -1;

/* A TCP listener without a bind address is dual-stack ([::] taking IPv4 too) where the
   namespace has IPv6; one bound to an IPv6 address takes IPv6 only, like docker-proxy on [::]. */
static int make_listener(int type, const char *bind_ip, int port) {
  int dual = type == SOCK_STREAM && !bind_ip;
  const char *ip = bind_ip ? bind_ip : dual ? "::" : "0.0.0.0";
  union sa sa;
  int len = parse_sa(ip, port, &sa);
  if (len < 0 || (sa.s.sa_family == AF_INET6 && type != SOCK_STREAM)) {
    errno = EINVAL;
    return -1;
  }
  int fd = socket(sa.s.sa_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0 && dual) {
    /* no IPv6 here: an IPv4 listener as before */
    len = parse_sa("0.0.0.0", port, &sa);
    fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  }
  if (fd < 0) return -1;
  int one = 1, zero = 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (type == SOCK_DGRAM) setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
  if (sa.s.sa_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, dual ? &zero : &one, sizeof(one));
  int rc = bind(fd, &sa.s, len);
  if (rc < 0 && dual && errno == EADDRINUSE && sa.s.sa_family == AF_INET6) {
    /* [::]:port taken (a docker-proxy's IPv6 side): IPv4 alone, as before IPv6 */
    close(fd);
    len = parse_sa("0.0.0.0", port, &sa);
    fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    rc = bind(fd, &sa.s, len);
  }
  if (rc < 0 || (type == SOCK_STREAM && listen(fd, 512) < 0)) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

/* ---- commands ---- */

static void cmd_listen(const char *id, const char *proto, int port, const char *bind_ip) {
  int tcp = strcmp(proto, "tcp") == 0;
  int fd = make_listener(tcp ? SOCK_STREAM : SOCK_DGRAM, bind_ip, port);
  if (fd < 0) return reply(id, "error %s", errname(errno));
  int s = new_slot(fd, tcp ? K_TCP_LISTEN : K_UDP_LISTEN, id);
  slots[s].port = port;
  reply(id, "ok");
}

static void cmd_tcp(const char *id, const char *dst, int port, int timeout, const char *src, const char *token, int seen_wait) {
  union sa sa;
  int salen = parse_sa(dst, port, &sa);
  if (salen < 0) return reply(id, "error bad-address");
  int fd = socket(sa.s.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return reply(id, "error %s", errname(errno));
  if (bind_source(fd, src) < 0) {
    reply(id, "error bind %s", errname(errno));
    close(fd);
    return;
  }
  int s = new_slot(fd, K_TCP_CONNECT, id);
  slots[s].deadline = now_ms() + timeout;
  slots[s].seen_wait = seen_wait > 0 ? seen_wait : timeout;
  snprintf(slots[s].token, sizeof(slots[s].token), "%s", token && strcmp(token, "-") != 0 ? token : "");
  if (connect(fd, &sa.s, salen) < 0 && errno != EINPROGRESS) {
    report_errno(&slots[s], errno); /* no packet left: no identity */
    free_slot(s);
    return;
  }
  local_ident(&slots[s]); /* the SYN is out, from the port the kernel chose */
}

static void cmd_udp(const char *id, const char *dst, int port, int timeout, const char *src, const char *token) {
  struct sockaddr_in sa;
  if (parse_addr(dst, port, &sa) < 0) return reply(id, "error bad-address");
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return reply(id, "error %s", errname(errno));
  if (bind_source(fd, src) < 0) {
    reply(id, "error bind %s", errname(errno));
    close(fd);
    return;
  }
  char msg[96];
  int n = snprintf(msg, sizeof(msg), "probe %s\n", token ? token : "-");
  int s = new_slot(fd, K_UDP_PROBE, id);
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || send(fd, msg, n, 0) < 0) {
    report_errno(&slots[s], errno);
    free_slot(s);
    return;
  }
  local_ident(&slots[s]);
  slots[s].deadline = now_ms() + timeout;
}

static uint16_t checksum(const void *data, int len) {
  const uint16_t *p = data;
  uint32_t sum = 0;
  for (; len > 1; len -= 2) sum += *p++;
  if (len) sum += *(const uint8_t *)p;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return ~sum;
}

static uint16_t icmp_counter;

static void cmd_icmp(const char *id, const char *dst, int timeout, const char *src) {
  struct sockaddr_in sa;
  if (parse_addr(dst, 0, &sa) < 0) return reply(id, "error bad-address");
  int fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
  if (fd < 0) return reply(id, "error %s", errname(errno));
  if (bind_source(fd, src) < 0) {
    reply(id, "error bind %s", errname(errno));
    close(fd);
    return;
  }
  /* A raw socket sees every ICMP packet of the namespace: id and seq tell ours apart. */
  struct icmphdr h;
  memset(&h, 0, sizeof(h));
  h.type = ICMP_ECHO;
  h.un.echo.id = htons((uint16_t)(getpid() & 0xffff));
  h.un.echo.sequence = htons(++icmp_counter);
  h.checksum = checksum(&h, sizeof(h));
  int s = new_slot(fd, K_ICMP, id);
  if (sendto(fd, &h, sizeof(h), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
    report_errno(&slots[s], errno);
    free_slot(s);
    return;
  }
  slots[s].deadline = now_ms() + timeout;
  slots[s].echo_id = h.un.echo.id;
  slots[s].echo_seq = h.un.echo.sequence;
  slots[s].addr.v4 = sa;
  snprintf(slots[s].ident, sizeof(slots[s].ident), "icmp=%u:%u", ntohs(h.un.echo.id), ntohs(h.un.echo.sequence));
}

static void cmd_seen(const char *id, const char *token, int wait_ms) {
  for (int i = 0; i < nseen; i++) {
    if (strcmp(seen_log[i].token, token) == 0) return reply(id, "seen %s", seen_log[i].who);
  }
  if (wait_ms <= 0) return reply(id, "none");
  int s = new_slot(-1, K_SEEN_WAIT, id); /* poll skips its fd; log_seen answers it */
  snprintf(slots[s].token, sizeof(slots[s].token), "%s", token);
  slots[s].deadline = now_ms() + wait_ms;
}

static void cmd_proxy(const char *id, const char *proto, int port, const char *dst, int dport, const char *bind_ip) {
  int tcp = strcmp(proto, "tcp") == 0;
  union sa target;
  if (parse_sa(dst, dport, &target) < 0 || (!tcp && target.s.sa_family != AF_INET)) return reply(id, "error bad-address");
  int fd = make_listener(tcp ? SOCK_STREAM : SOCK_DGRAM, bind_ip, port);
  if (fd < 0) return reply(id, "error %s", errname(errno));
  int s = new_slot(fd, tcp ? K_PX_LISTEN : K_PXU_LISTEN, id);
  slots[s].port = port;
  slots[s].addr = target;
  reply(id, "ok");
}

/* Held ports are not polled: nobody accepts, the kernel's backlog completes handshakes. */
static struct { int fd, port, tcp; } held[256];
static int nheld;

static void cmd_hold(const char *id, const char *proto, int port, const char *bind_ip, int drop) {
  int tcp = strcmp(proto, "tcp") == 0;
  if (nheld == (int)(sizeof(held) / sizeof(held[0]))) return reply(id, "error too-many-held");
  int fd = make_listener(tcp ? SOCK_STREAM : SOCK_DGRAM, bind_ip, port);
  if (fd < 0) return reply(id, "error %s", errname(errno));
  /* one cBPF instruction, "return 0": every packet dropped (moby's setSocketFilter) */
  struct sock_filter none[] = {BPF_STMT(BPF_RET | BPF_K, 0)};
  struct sock_fprog prog = {1, none};
  if (drop && setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)) < 0) {
    reply(id, "error filter %s", errname(errno));
    close(fd);
    return;
  }
  held[nheld].fd = fd;
  held[nheld].port = port;
  held[nheld++].tcp = tcp;
  reply(id, "ok");
}

static void cmd_close(const char *id, int port, const char *proto) {
  int tcp = strcmp(proto, "tcp") == 0;
  for (int i = 0; i < nheld; i++) {
    if (held[i].port != port || held[i].tcp != tcp) continue;
    close(held[i].fd);
    held[i--] = held[--nheld];
  }
  for (int i = 0; i < nslots; i++) {
    enum kind k = slots[i].kind;
    int match = tcp ? (k == K_TCP_LISTEN || k == K_PX_LISTEN) : (k == K_UDP_LISTEN || k == K_PXU_LISTEN);
    if (match && slots[i].port == port) free_slot(i);
  }
  reply(id, "ok");
}

static void base64_reply(const char *id, const char *word, const unsigned char *data, size_t len) {
  static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  printf("%s %s ", id, word);
  for (size_t i = 0; i < len; i += 3) {
    unsigned v = data[i] << 16 | (i + 1 < len ? data[i + 1] << 8 : 0) | (i + 2 < len ? data[i + 2] : 0);
    putchar(tbl[v >> 18 & 63]);
    putchar(tbl[v >> 12 & 63]);
    putchar(i + 1 < len ? tbl[v >> 6 & 63] : '=');
    putchar(i + 2 < len ? tbl[v & 63] : '=');
  }
  putchar('\n');
  fflush(stdout);
}

static void cmd_read(const char *id, const char *path) {
  /* /proc/net/… of this network namespace, also inside a container's own procfs */
  int fd = proc_net_fd >= 0 && strncmp(path, "/proc/net/", 10) == 0 ? openat(proc_net_fd, path + 10, O_RDONLY | O_CLOEXEC) : open(path, O_RDONLY | O_CLOEXEC);
  FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
  if (!f) return reply(id, "error %s", errname(errno));
  size_t cap = 4096, len = 0;
  unsigned char *buf = malloc(cap);
  size_t n;
  while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
    len += n;
    if (len == cap) buf = realloc(buf, cap *= 2);
  }
  fclose(f);
  base64_reply(id, "file", buf, len);
  free(buf);
}

static void cmd_env(const char *id, const char *name) {
  const char *v = getenv(name);
  if (!v) return reply(id, "none");
  base64_reply(id, "env", (const unsigned char *)v, strlen(v));
}


/* ---- name resolution, as a process in this namespace sees it ---- */

static int lookup_hosts(const char *name, char *ip, size_t iplen) {
  FILE *f = fopen("/etc/hosts", "r");
  if (!f) return 0;
  char line[1024];
  int found = 0;
  while (!found && fgets(line, sizeof(line), f)) {
    line[strcspn(line, "#\n")] = 0;
    char *save, *addr = strtok_r(line, " \t", &save);
    struct in_addr a;
    if (!addr || inet_pton(AF_INET, addr, &a) != 1) continue;
    for (char *h = strtok_r(NULL, " \t", &save); h; h = strtok_r(NULL, " \t", &save)) {
      if (strcasecmp(h, name) == 0) {
        snprintf(ip, iplen, "%s", addr);
        found = 1;
        break;
      }
    }
  }
  fclose(f);
  return found;
}

static int first_nameserver(struct sockaddr_in *sa) {
  FILE *f = fopen("/etc/resolv.conf", "r");
  if (!f) return 0;
  char line[512], ns[64];
  int found = 0;
  while (!found && fgets(line, sizeof(line), f)) {
    if (sscanf(line, " nameserver %63s", ns) == 1 && parse_addr(ns, 53, sa) == 0) found = 1;
  }
  fclose(f);
  return found;
}

static void cmd_resolve(const char *id, const char *name, int timeout) {
  char ip[64];
  if (lookup_hosts(name, ip, sizeof(ip))) return reply(id, "resolved %s hosts", ip);
  struct sockaddr_in ns;
  if (!first_nameserver(&ns)) return reply(id, "none no-nameserver");
  unsigned char q[300];
  uint16_t qid = (uint16_t)(now_ms() ^ getpid() ^ (icmp_counter++ << 8));
  memset(q, 0, 12);
  q[0] = qid >> 8;
  q[1] = qid & 0xff;
  q[2] = 0x01; /* recursion desired */
  q[5] = 1;    /* one question */
  int len = 12;
  for (const char *p = name; *p;) {
    const char *dot = strchr(p, '.');
    int l = dot ? (int)(dot - p) : (int)strlen(p);
    if (l == 0 || l > 63 || len + l + 6 > (int)sizeof(q)) return reply(id, "error bad-name");
    q[len++] = l;
    memcpy(q + len, p, l);
    len += l;
    p += l + (dot ? 1 : 0);
  }
  q[len++] = 0;
  q[len++] = 0, q[len++] = 1; /* A */
  q[len++] = 0, q[len++] = 1; /* IN */
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&ns, sizeof(ns)) < 0 || send(fd, q, len, 0) < 0) {
    int e = errno;
    if (fd >= 0) close(fd);
    return reply(id, "none %s", e == ENETUNREACH || e == EHOSTUNREACH ? "timeout" : errname(e));
  }
  int s = new_slot(fd, K_DNS, id);
  slots[s].deadline = now_ms() + timeout;
  slots[s].echo_id = qid;
  slots[s].addr.v4 = ns;
}

/* skip a (possibly compressed) name; returns the offset after it or -1 */
static int skip_name(const unsigned char *m, int n, int off) {
  while (off < n) {
    int l = m[off];
    if ((l & 0xc0) == 0xc0) return off + 2;
    off += 1 + l;
    if (l == 0) return off;
  }
  return -1;
}

static void on_dns(int s) {
  struct slot *sl = &slots[s];
  unsigned char m[1500];
  int n = recv(sl->fd, m, sizeof(m), 0);
  if (n < 0) {
    if (errno == EAGAIN) return;
    reply(sl->id, "none %s", errno == ECONNREFUSED ? "refused" : errname(errno));
    return free_slot(s);
  }
  if (n < 12 || ((m[0] << 8) | m[1]) != sl->echo_id) return; /* not our answer */
  const char *server = inet_ntoa(sl->addr.v4.sin_addr);
  int rcode = m[3] & 0x0f;
  if (rcode == 3) reply(sl->id, "none nxdomain");
  else if (rcode != 0) reply(sl->id, "none %s", rcode == 2 ? "servfail" : "error-rcode");
  else {
    int qd = m[4] << 8 | m[5], an = m[6] << 8 | m[7], off = 12, done = 0;
    for (int i = 0; i < qd && off > 0; i++) off = skip_name(m, n, off) + 4;
    for (int i = 0; i < an && off > 0 && off + 10 <= n && !done; i++) {
      off = skip_name(m, n, off);
      if (off < 0 || off + 10 > n) break;
      int type = m[off] << 8 | m[off + 1], rdlen = m[off + 8] << 8 | m[off + 9];
      off += 10;
      if (type == 1 && rdlen == 4 && off + 4 <= n) {
        reply(sl->id, "resolved %u.%u.%u.%u dns:%s", m[off], m[off + 1], m[off + 2], m[off + 3], server);
        done = 1;
      }
      off += rdlen;
    }
    if (!done) reply(sl->id, "none noanswer");
  }
  free_slot(s);
}


/* Delete every ARP entry of this namespace (listed in /proc/net/arp) with SIOCDARP. */
static void cmd_forget_arp(const char *id) {
  int afd = proc_net_fd >= 0 ? openat(proc_net_fd, "arp", O_RDONLY | O_CLOEXEC) : open("/proc/net/arp", O_RDONLY | O_CLOEXEC);
  FILE *f = afd >= 0 ? fdopen(afd, "r") : NULL;
  if (!f) return reply(id, "error %s", errname(errno));
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  char line[256], ip[64], hw[64], mask[64], dev[IFNAMSIZ];
  int n = 0;
  unsigned type, flags;
  if (!fgets(line, sizeof(line), f)) line[0] = 0; /* header */
  while (fd >= 0 && fgets(line, sizeof(line), f)) {
    if (sscanf(line, "%63s 0x%x 0x%x %63s %63s %15s", ip, &type, &flags, hw, mask, dev) != 6) continue;
    struct arpreq r;
    memset(&r, 0, sizeof(r));
    struct sockaddr_in *pa = (struct sockaddr_in *)&r.arp_pa;
    pa->sin_family = AF_INET;
    if (inet_pton(AF_INET, ip, &pa->sin_addr) != 1) continue;
    snprintf(r.arp_dev, sizeof(r.arp_dev), "%s", dev);
    if (ioctl(fd, SIOCDARP, &r) == 0) n++;
  }
  if (fd >= 0) close(fd);
  fclose(f);
  reply(id, "ok %d", n);
}

/* ---- 802.1Q tag capture ---- */

static void cmd_capture(const char *id, const char *dev, const char *a, const char *b, const char *proto) {
  struct capture c;
  memset(&c, 0, sizeof(c));
  c.proto = strcmp(proto, "tcp") == 0 ? IPPROTO_TCP : strcmp(proto, "udp") == 0 ? IPPROTO_UDP : IPPROTO_ICMP;
  if (inet_pton(AF_INET, a, &c.a) != 1 || inet_pton(AF_INET, b, &c.b) != 1) return reply(id, "error bad-address");
  unsigned ifindex = if_nametoindex(dev);
  if (!ifindex) return reply(id, "error no-device %s", dev);
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ALL));
  if (fd < 0) return reply(id, "error %s", errname(errno));
  /* the kernel usually keeps the tag out of the frame (VLAN offload): it comes as auxdata */
  int on = 1;
  struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = (int)ifindex };
  if (setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &on, sizeof(on)) < 0 || bind(fd, (struct sockaddr *)&ll, sizeof(ll)) < 0) {
    int e = errno;
    close(fd);
    return reply(id, "error %s", errname(e));
  }
  int s = new_slot(fd, K_CAPTURE, id);
  slots[s].cap = malloc(sizeof(c));
  *slots[s].cap = c;
  reply(id, "ok %s", id); /* the capture is known by this request's id */
}

static void count_tag(struct capture *c, int tag) {
  for (int i = 0; i < c->ntags; i++)
    if (c->tag[i] == tag) return (void)c->count[i]++;
  if (c->ntags == MAX_TAGS) return;
  c->tag[c->ntags] = tag;
  c->count[c->ntags++] = 1;
}

static void on_capture(int s) {
  struct capture *c = slots[s].cap;
  unsigned char f[2048];
  union {
    struct cmsghdr h;
    char buf[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
  } ctl;
  for (;;) {
    struct iovec iov = { f, sizeof(f) };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctl, .msg_controllen = sizeof(ctl) };
    ssize_t n = recvmsg(slots[s].fd, &m, MSG_DONTWAIT);
    if (n < 0) return;
    int tag = -1;
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
      if (h->cmsg_level != SOL_PACKET || h->cmsg_type != PACKET_AUXDATA) continue;
      struct tpacket_auxdata aux;
      memcpy(&aux, CMSG_DATA(h), sizeof(aux));
      if (aux.tp_status & TP_STATUS_VLAN_VALID) tag = aux.tp_vlan_tci & 0x0fff;
    }
    if (n < 14) continue;
    int off = 14, type = f[12] << 8 | f[13];
    if (type == ETH_P_8021Q && n >= 18) { /* a tag left in the frame itself */
      if (tag < 0) tag = (f[14] << 8 | f[15]) & 0x0fff;
      type = f[16] << 8 | f[17];
      off = 18;
    }
    if (type != ETH_P_IP || n < off + 20 || f[off + 9] != c->proto) continue;
    struct in_addr src, dst;
    memcpy(&src, f + off + 12, 4);
    memcpy(&dst, f + off + 16, 4);
    int ab = src.s_addr == c->a.s_addr && dst.s_addr == c->b.s_addr;
    int ba = src.s_addr == c->b.s_addr && dst.s_addr == c->a.s_addr;
    if (ab || ba) count_tag(c, tag);
  }
}

static void cmd_capture_end(const char *id, const char *capid) {
  for (int i = 0; i < nslots; i++) {
    if (slots[i].kind != K_CAPTURE || strcmp(slots[i].id, capid) != 0) continue;
    on_capture(i); /* what is still queued */
    struct capture *c = slots[i].cap;
    int total = 0;
    char out[256] = "";
    size_t len = 0;
    for (int t = 0; t < c->ntags; t++) {
      total += c->count[t];
      if (c->tag[t] < 0) len += snprintf(out + len, sizeof(out) - len, " none=%d", c->count[t]);
      else len += snprintf(out + len, sizeof(out) - len, " %d=%d", c->tag[t], c->count[t]);
      if (len >= sizeof(out)) break;
    }
    free_slot(i);
    return reply(id, "frames %d%s", total, out);
  }
  reply(id, "error no-capture %s", capid);
}

static void handle_line(char *line) {
  char *argv[10];
  int argc = 0;
  for (char *tok = strtok(line, " \t\r\n"); tok && argc < 10; tok = strtok(NULL, " \t\r\n")) argv[argc++] = tok;
  if (argc == 0) return;
  const char *c = argv[0];
  const char *id = argc > 1 ? argv[1] : "-";
  const char *opt5 = argc > 5 ? argv[5] : NULL, *opt6 = argc > 6 ? argv[6] : NULL, *opt7 = argc > 7 ? argv[7] : NULL;
  if (strcmp(c, "Q") == 0) exit(0);
  else if (strcmp(c, "L") == 0 && argc >= 4) cmd_listen(id, argv[2], atoi(argv[3]), argc > 4 ? argv[4] : NULL);
  else if (strcmp(c, "C") == 0 && argc >= 6) cmd_tcp(id, argv[3], atoi(argv[4]), atoi(argv[5]), opt6, opt7, argc > 8 ? atoi(argv[8]) : 0);
  else if (strcmp(c, "U") == 0 && argc >= 5) cmd_udp(id, argv[2], atoi(argv[3]), atoi(argv[4]), opt5, opt6);
  else if (strcmp(c, "P") == 0 && argc >= 4) cmd_icmp(id, argv[2], atoi(argv[3]), argc > 4 ? argv[4] : NULL);
  else if (strcmp(c, "S") == 0 && argc >= 3) cmd_seen(id, argv[2], argc > 3 ? atoi(argv[3]) : 0);
  else if (strcmp(c, "X") == 0 && argc >= 6) cmd_proxy(id, argv[2], atoi(argv[3]), argv[4], atoi(argv[5]), opt6);
  else if (strcmp(c, "H") == 0 && argc >= 4) cmd_hold(id, argv[2], atoi(argv[3]), argc > 4 && strcmp(argv[4], "-") != 0 ? argv[4] : NULL, argc > 5 && strcmp(argv[5], "drop") == 0);
  else if (strcmp(c, "K") == 0 && argc >= 4) cmd_close(id, atoi(argv[2]), argv[3]);
  else if (strcmp(c, "R") == 0 && argc >= 3) cmd_read(id, argv[2]);
  else if (strcmp(c, "E") == 0 && argc >= 3) cmd_env(id, argv[2]);
  else if (strcmp(c, "N") == 0 && argc >= 4) cmd_resolve(id, argv[2], atoi(argv[3]));
  else if (strcmp(c, "A") == 0) cmd_forget_arp(id);
  else if (strcmp(c, "T") == 0 && argc >= 6) cmd_capture(id, argv[2], argv[3], argv[4], argv[5]);
  else if (strcmp(c, "Y") == 0 && argc >= 3) cmd_capture_end(id, argv[2]);
  else if (strcmp(c, "N") == 0) reply(id, "ok"); /* no-op: readiness */
  else reply(id, "error bad-command");
}

/* ---- events ---- */

static void on_stdin(int s) {
  struct slot *sl = &slots[s];
  int n = read(sl->fd, sl->buf + sl->blen, sizeof(sl->buf) - 1 - sl->blen);
  if (n <= 0) exit(0); /* the harness is gone: so are we */
  sl->blen += n;
  sl->buf[sl->blen] = 0;
  char *start = sl->buf, *nl;
  while ((nl = strchr(start, '\n'))) {
    *nl = 0;
    char line[512];
    snprintf(line, sizeof(line), "%s", start);
    handle_line(line); /* may realloc slots */
    sl = &slots[s];
    start = nl + 1;
  }
  sl->blen = strlen(start);
  memmove(sl->buf, start, sl->blen + 1);
}

static void on_tcp_listen(int s) {
  union sa from;
  socklen_t fl = sizeof(from);
  int fd = accept4(slots[s].fd, &from.s, &fl, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) return;
  char who[80], msg[128];
  fmt_sa(&from, who, sizeof(who));
  char *colon = strrchr(who, ':');
  *colon = ' ';
  int n = snprintf(msg, sizeof(msg), "seen %s\n", who);
  if (send(fd, msg, n, MSG_NOSIGNAL) < 0) {
    close(fd);
    return;
  }
  int a = new_slot(fd, K_ACCEPTED, NULL);
  slots[a].addr = from;
  slots[a].deadline = now_ms() + ANSWER_WAIT_MS;
}

static void on_accepted(int s) {
  struct slot *sl = &slots[s];
  int n = recv(sl->fd, sl->buf + sl->blen, sizeof(sl->buf) - 1 - sl->blen, 0);
  if (n <= 0) return free_slot(s);
  sl->blen += n;
  if (memchr(sl->buf, '\n', sl->blen) && !sl->token[0]) {
    token_of(sl->buf, sl->blen, sl->token, sizeof(sl->token));
    log_seen(sl->token, &sl->addr);
  }
  if (sl->blen >= (int)sizeof(sl->buf) - 1) sl->blen = 0;
}

/* Receive a datagram and the local address it was sent to (a listener bound to 0.0.0.0 must
 * answer from that address, or the client's connected socket and NAT would not match). */
static int recv_with_dst(int fd, char *buf, int len, struct sockaddr_in *from, struct in_addr *dst) {
  struct iovec iov = {buf, (size_t)len};
  char cbuf[CMSG_SPACE(sizeof(struct in_pktinfo))];
  struct msghdr mh = {.msg_name = from, .msg_namelen = sizeof(*from), .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
  int n = recvmsg(fd, &mh, 0);
  dst->s_addr = INADDR_ANY;
  if (n < 0) return n;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) *dst = ((struct in_pktinfo *)CMSG_DATA(c))->ipi_addr;
  }
  return n;
}

static void send_from(int fd, const char *buf, int len, const struct sockaddr_in *to, struct in_addr src) {
  struct iovec iov = {(void *)buf, (size_t)len};
  char cbuf[CMSG_SPACE(sizeof(struct in_pktinfo))];
  memset(cbuf, 0, sizeof(cbuf));
  struct msghdr mh = {.msg_name = (void *)to, .msg_namelen = sizeof(*to), .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
  struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
  c->cmsg_level = IPPROTO_IP;
  c->cmsg_type = IP_PKTINFO;
  c->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
  ((struct in_pktinfo *)CMSG_DATA(c))->ipi_spec_dst = src;
  sendmsg(fd, &mh, 0);
}

static void on_udp_listen(int s) {
  char buf[512];
  union sa from;
  struct in_addr dst;
  int n = recv_with_dst(slots[s].fd, buf, sizeof(buf), &from.v4, &dst);
  if (n < 0) return;
  char tok[48];
  token_of(buf, n, tok, sizeof(tok));
  log_seen(tok, &from);
  char msg[96];
  int m = snprintf(msg, sizeof(msg), "seen %s %d\n", inet_ntoa(from.v4.sin_addr), ntohs(from.v4.sin_port));
  send_from(slots[s].fd, msg, m, &from.v4, dst);
}

/* The listener's first line: "seen IP PORT" → "connected seen=IP:PORT". */
static int report_seen_line(struct slot *sl) {
  char *nl = memchr(sl->buf, '\n', sl->blen);
  if (!nl) return 0;
  *nl = 0;
  char ip[64];
  int port;
  if (sscanf(sl->buf, "seen %63s %d", ip, &port) == 2) outcome(sl, "connected seen=%s:%d", ip, port);
  else outcome(sl, "connected seen=-");
  return 1;
}

static void on_tcp_connect(int s, short revents) {
  struct slot *sl = &slots[s];
  if (sl->state == 0) {
    int err = 0;
    socklen_t el = sizeof(err);
    getsockopt(sl->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
      report_errno(sl, err);
      return free_slot(s);
    }
    if (!(revents & POLLOUT)) return;
    sl->state = 1;
    sl->deadline = now_ms() + sl->seen_wait;
    char msg[96];
    int n = snprintf(msg, sizeof(msg), "probe %s\n", sl->token[0] ? sl->token : "-");
    send(sl->fd, msg, n, MSG_NOSIGNAL);
    return;
  }
  int n = recv(sl->fd, sl->buf + sl->blen, sizeof(sl->buf) - 1 - sl->blen, 0);
  if (n > 0) sl->blen += n;
  if ((n > 0 && report_seen_line(sl)) || n == 0 || (n < 0 && errno != EAGAIN)) {
    if (n <= 0) outcome(sl, "connected seen=-");
    free_slot(s);
  }
}

static void on_udp_probe(int s) {
  struct slot *sl = &slots[s];
  int n = recv(sl->fd, sl->buf, sizeof(sl->buf) - 1, 0);
  if (n < 0) {
    if (errno == EAGAIN) return;
    report_errno(sl, errno);
    return free_slot(s);
  }
  sl->blen = n;
  if (!report_seen_line(sl)) outcome(sl, "connected seen=-");
  free_slot(s);
}

static void on_icmp(int s) {
  struct slot *sl = &slots[s];
  unsigned char buf[1500];
  int n;
  while ((n = recv(sl->fd, buf, sizeof(buf), 0)) > 0) {
    struct iphdr *ip = (struct iphdr *)buf;
    int hl = ip->ihl * 4;
    if (n < hl + (int)sizeof(struct icmphdr)) continue;
    struct icmphdr *h = (struct icmphdr *)(buf + hl);
    if (h->type == ICMP_ECHOREPLY && h->un.echo.id == sl->echo_id && h->un.echo.sequence == sl->echo_seq && ip->saddr == sl->addr.v4.sin_addr.s_addr) {
      outcome(sl, "connected");
      return free_slot(s);
    }
    if (h->type == ICMP_DEST_UNREACH || h->type == ICMP_TIME_EXCEEDED) {
      /* the error quotes our IP header and the first 8 bytes of our echo request */
      int off = hl + 8;
      if (n < off + 20) continue;
      struct iphdr *inner = (struct iphdr *)(buf + off);
      int ihl = inner->ihl * 4;
      if (n < off + ihl + 8) continue;
      struct icmphdr *ih = (struct icmphdr *)(buf + off + ihl);
      if (ih->type == ICMP_ECHO && ih->un.echo.id == sl->echo_id && ih->un.echo.sequence == sl->echo_seq) {
        outcome(sl, "unreachable icmp-%d/%d", h->type, h->code);
        return free_slot(s);
      }
    }
  }
}

static void on_px_listen(int s) {
  union sa from;
  socklen_t fl = sizeof(from);
  int cfd = accept4(slots[s].fd, &from.s, &fl, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (cfd < 0) return;
  union sa target = slots[s].addr;
  int ufd = socket(target.s.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (ufd < 0 || (connect(ufd, &target.s, sa_len(&target)) < 0 && errno != EINPROGRESS)) {
    close(cfd);
    if (ufd >= 0) close(ufd);
    return;
  }
  int c = new_slot(cfd, K_PX_CLIENT, NULL);
  int u = new_slot(ufd, K_PX_UP, NULL);
  slots[c].peer = u;
  slots[u].peer = c;
  slots[u].deadline = now_ms() + 30000; /* connect timeout */
}

static void close_pair(int s) {
  int p = slots[s].peer;
  free_slot(s);
  if (p >= 0) free_slot(p);
}

static void on_px_data(int s, short revents) {
  struct slot *sl = &slots[s];
  if (sl->kind == K_PX_UP && sl->state == 0) {
    int err = 0;
    socklen_t el = sizeof(err);
    getsockopt(sl->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) return close_pair(s);
    if (!(revents & POLLOUT)) return;
    sl->state = 1;
    sl->deadline = 0;
    return;
  }
  char buf[4096];
  int n = recv(sl->fd, buf, sizeof(buf), 0);
  if (n <= 0) {
    if (n < 0 && errno == EAGAIN) return;
    return close_pair(s);
  }
  /* probes carry a few bytes: a blocking-free send of them succeeds or the pair is dropped */
  if (send(slots[sl->peer].fd, buf, n, MSG_NOSIGNAL) != n) close_pair(s);
}

static void on_pxu_listen(int s) {
  char buf[2048];
  struct sockaddr_in from;
  struct in_addr dst;
  int n = recv_with_dst(slots[s].fd, buf, sizeof(buf), &from, &dst);
  if (n < 0) return;
  int u = -1;
  for (int i = 0; i < nslots; i++) {
    if (slots[i].kind == K_PXU_UP && slots[i].peer == s && slots[i].addr.v4.sin_addr.s_addr == from.sin_addr.s_addr && slots[i].addr.v4.sin_port == from.sin_port) u = i;
  }
  if (u < 0) {
    struct sockaddr_in target = slots[s].addr.v4;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&target, sizeof(target)) < 0) {
      if (fd >= 0) close(fd);
      return;
    }
    u = new_slot(fd, K_PXU_UP, NULL);
    slots[u].peer = s;
    slots[u].addr.v4 = from;
    slots[u].local = dst;
  }
  slots[u].deadline = now_ms() + 30000;
  send(slots[u].fd, buf, n, 0);
}

static void on_pxu_up(int s) {
  char buf[2048];
  int n = recv(slots[s].fd, buf, sizeof(buf), 0);
  if (n < 0) return;
  int l = slots[s].peer;
  if (slots[l].kind != K_PXU_LISTEN) return free_slot(s);
  send_from(slots[l].fd, buf, n, &slots[s].addr.v4, slots[s].local);
}

static void on_deadline(int s) {
  struct slot *sl = &slots[s];
  switch (sl->kind) {
  case K_TCP_CONNECT:
    if (sl->state == 1) outcome(sl, "connected seen=-");
    else outcome(sl, "timeout");
    return free_slot(s);
  case K_UDP_PROBE:
  case K_ICMP:
    outcome(sl, "timeout");
    return free_slot(s);
  case K_DNS:
    reply(sl->id, "none timeout");
    return free_slot(s);
  case K_SEEN_WAIT:
    reply(sl->id, "none");
    return free_slot(s);
  case K_PX_UP:
    return close_pair(s);
  default:
    return free_slot(s);
  }
}

static int open_ns(const char *path) { return open(path, O_RDONLY | O_CLOEXEC); }

int main(int argc, char **argv) {
  const char *netns = NULL, *mntns = NULL;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--netns") == 0) netns = argv[i + 1];
    else if (strcmp(argv[i], "--mntns") == 0) mntns = argv[i + 1];
  }
  /* Open both namespace files first: after entering a mount namespace the path may be gone. */
  int nfd = netns ? open_ns(netns) : -1;
  int mfd = mntns ? open_ns(mntns) : -1;
  if ((netns && nfd < 0) || (mntns && mfd < 0)) {
    fprintf(stderr, "probe-agent: cannot open namespace: %s\n", strerror(errno));
    return 2;
  }
  if (nfd >= 0 && setns(nfd, CLONE_NEWNET) < 0) {
    fprintf(stderr, "probe-agent: setns net %s: %s\n", netns, strerror(errno));
    return 2;
  }
  proc_net_fd = open("/proc/self/net", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (mfd >= 0 && setns(mfd, CLONE_NEWNS) < 0) {
    fprintf(stderr, "probe-agent: setns mnt %s: %s\n", mntns, strerror(errno));
    return 2;
  }
  if (nfd >= 0) close(nfd);
  if (mfd >= 0) close(mfd);
  signal(SIGPIPE, SIG_IGN);
  set_nonblock(0);
  new_slot(0, K_STDIN, NULL);
  printf("ready\n");
  fflush(stdout);

  struct pollfd *pfds = NULL;
  int *map = NULL, cap = 0;
  for (;;) {
    if (cap < nslots) {
      cap = nslots;
      pfds = realloc(pfds, sizeof(*pfds) * cap);
      map = realloc(map, sizeof(*map) * cap);
    }
    int n = 0;
    long long now = now_ms(), next = -1;
    for (int i = 0; i < nslots; i++) {
      struct slot *sl = &slots[i];
      if (sl->kind == K_FREE) continue;
      if (sl->deadline && (next < 0 || sl->deadline < next)) next = sl->deadline;
      short ev = POLLIN;
      if ((sl->kind == K_TCP_CONNECT && sl->state == 0) || (sl->kind == K_PX_UP && sl->state == 0)) ev = POLLOUT;
      /* hold a proxy client's bytes until its upstream connection is up */
      if (sl->kind == K_PX_CLIENT && sl->peer >= 0 && slots[sl->peer].state == 0) ev = 0;
      pfds[n].fd = sl->fd;
      pfds[n].events = ev;
      pfds[n].revents = 0;
      map[n++] = i;
    }
    int timeout = next < 0 ? -1 : (int)(next - now > 0 ? next - now : 0);
    int r = poll(pfds, n, timeout);
    if (r < 0 && errno != EINTR) return 1;
    for (int i = 0; i < nslots; i++) slots[i].moved = 0;
    for (int j = 0; j < n && r > 0; j++) {
      if (!pfds[j].revents) continue;
      int i = map[j];
      slots[i].moved = 1;
      if (slots[i].kind == K_FREE || slots[i].fd != pfds[j].fd) continue;
      short re = pfds[j].revents;
      switch (slots[i].kind) {
      case K_STDIN: on_stdin(i); break;
      case K_TCP_LISTEN: on_tcp_listen(i); break;
      case K_UDP_LISTEN: on_udp_listen(i); break;
      case K_ACCEPTED: on_accepted(i); break;
      case K_TCP_CONNECT: on_tcp_connect(i, re); break;
      case K_UDP_PROBE: on_udp_probe(i); break;
      case K_ICMP: on_icmp(i); break;
      case K_PX_LISTEN: on_px_listen(i); break;
      case K_PX_CLIENT:
      case K_PX_UP: on_px_data(i, re); break;
      case K_PXU_LISTEN: on_pxu_listen(i); break;
      case K_PXU_UP: on_pxu_up(i); break;
      case K_DNS: on_dns(i); break;
      case K_CAPTURE: on_capture(i); break;
      default: break;
      }
    }
    /* Deadlines are judged after a look at the sockets, never before: on a busy machine this
       process may get the CPU only after a deadline, with the answer long in its socket (a
       probe that had connected was reported a timeout). A slot that just moved (connected,
       its listener's report of the source may be in the socket too) gets one more look. */
    now = now_ms();
    for (int i = 0; i < nslots; i++)
      if (slots[i].kind != K_FREE && !slots[i].moved && slots[i].deadline && slots[i].deadline <= now) on_deadline(i);
  }
}
