/*
 * refd: the reference engine's helper process, one per Docker host of a lab. It does the two
 * things of a container runtime that need a process holding kernel objects:
 *
 *  - container mount namespaces: for each container a child unshares its mount namespace,
 *    bind-mounts the engine's generated hosts, resolv.conf and hostname files over /etc, and
 *    exits; refd keeps the namespace alive by holding an fd to it, so no mount is ever made in
 *    the namespace the suite started in. Others enter it through /proc/<refd>/fd/<n>.
 *  - the embedded DNS server: a UDP socket on 127.0.0.11:<random port> inside each container's
 *    network namespace (as dockerd's resolver does; the engine's NAT rules in the container
 *    send 127.0.0.11:53 there), answering A queries from a name table per container.
 *
 * usage: refd [--netns PATH]      (the lab host's namespace, so teardown finds this process)
 * Commands on stdin, one per line; one reply per command on stdout, "<id> ...".
 *   M id hosts resolv hostname     new mount namespace with those files over /etc/… → "ok PATH"
 *   F id PATH                      release a mount namespace
 *   D id NETNS_PATH                open a resolver socket in that network namespace → "ok SOCK PORT"
 *   T id SOCK BASE64               name table of that socket: lines "name ip ip …" (replaces the old one)
 *   C id SOCK                      close a resolver socket
 *   Q                              quit (also on end of stdin)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_SOCKS 4096

struct entry {
  char *name;
  struct in_addr *ips;
  int nips;
};

struct resolver {
  int fd; /* -1 when free */
  struct entry *table;
  int nentries;
};

static struct resolver socks[MAX_SOCKS];
static int host_netns = -1;

static void reply(const char *id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#include <stdarg.h>
static void reply(const char *id, const char *fmt, ...) {
  va_list ap;
  printf("%s ", id);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

/* ---- mount namespaces ---- */

static int bind_file(const char *src, const char *dst) {
  if (!src || strcmp(src, "-") == 0) return 0;
  return mount(src, dst, NULL, MS_BIND, NULL);
}

static void cmd_mntns(const char *id, const char *hosts, const char *resolv, const char *hostname) {
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) < 0) return reply(id, "error pipe %s", strerror(errno));
  pid_t pid = fork();
  if (pid < 0) return reply(id, "error fork %s", strerror(errno));
  if (pid == 0) {
    char status = 'x';
    close(ready[0]);
    if (unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 && bind_file(hosts, "/etc/hosts") == 0 &&
        bind_file(resolv, "/etc/resolv.conf") == 0 && bind_file(hostname, "/etc/hostname") == 0)
      status = 'k';
    else
      dprintf(2, "refd: mount namespace: %s\n", strerror(errno));
    if (write(ready[1], &status, 1) != 1) _exit(1);
    pause(); /* the parent takes the namespace, then kills us */
    _exit(0);
  }
  close(ready[1]);
  char status = 0;
  ssize_t n = read(ready[0], &status, 1);
  close(ready[0]);
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/ns/mnt", pid);
  int fd = (n == 1 && status == 'k') ? open(path, O_RDONLY | O_CLOEXEC) : -1;
  int e = errno;
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
  if (fd < 0) return reply(id, "error mount-namespace %s", n == 1 && status == 'k' ? strerror(e) : "bind mounts failed");
  /* the fd must survive exec-less use by others through /proc/<refd>/fd/<fd>: keep it, no CLOEXEC needed */
  reply(id, "ok /proc/%d/fd/%d", getpid(), fd);
}

static void cmd_free(const char *id, const char *path) {
  const char *slash = strrchr(path, '/');
  int fd = slash ? atoi(slash + 1) : -1;
  if (fd > 2) close(fd);
  reply(id, "ok");
}

/* ---- embedded DNS ---- */

static void free_table(struct resolver *r) {
  for (int i = 0; i < r->nentries; i++) {
    free(r->table[i].name);
    free(r->table[i].ips);
  }
  free(r->table);
  r->table = NULL;
  r->nentries = 0;
}

static void cmd_dns_open(const char *id, const char *netns) {
  int s = -1;
  for (int i = 0; i < MAX_SOCKS; i++)
    if (socks[i].fd < 0) {
      s = i;
      break;
    }
  if (s < 0) return reply(id, "error too-many-resolvers");
  int nfd = open(netns, O_RDONLY | O_CLOEXEC);
  if (nfd < 0) return reply(id, "error open %s", strerror(errno));
  if (setns(nfd, CLONE_NEWNET) < 0) {
    close(nfd);
    return reply(id, "error setns %s", strerror(errno));
  }
  close(nfd);
  /* the socket belongs to the namespace it was made in, whatever we join afterwards */
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int e = errno;
  struct sockaddr_in sa = {.sin_family = AF_INET};
  inet_pton(AF_INET, "127.0.0.11", &sa.sin_addr);
  socklen_t sl = sizeof(sa);
  int ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && getsockname(fd, (struct sockaddr *)&sa, &sl) == 0;
  if (!ok) e = errno;
  if (setns(host_netns, CLONE_NEWNET) < 0) {
    fprintf(stderr, "refd: cannot return to the host namespace: %s\n", strerror(errno));
    exit(2);
  }
  if (!ok) {
    if (fd >= 0) close(fd);
    return reply(id, "error socket %s", strerror(e));
  }
  socks[s].fd = fd;
  reply(id, "ok %d %d", s, ntohs(sa.sin_port));
}

static int b64val(int c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

static char *b64decode(const char *in) {
  size_t len = strlen(in);
  char *out = malloc(len + 1);
  size_t o = 0;
  unsigned v = 0;
  int bits = 0;
  for (size_t i = 0; i < len; i++) {
    int d = b64val(in[i]);
    if (d < 0) continue;
    v = (v << 6) | d;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (v >> bits) & 0xff;
    }
  }
  out[o] = 0;
  return out;
}

static void cmd_table(const char *id, int s, const char *b64) {
  if (s < 0 || s >= MAX_SOCKS || socks[s].fd < 0) return reply(id, "error no-such-resolver");
  struct resolver *r = &socks[s];
  free_table(r);
  char *text = b64decode(b64);
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    char *save;
    char *name = strtok_r(line, " ", &save);
    if (!name) continue;
    r->table = realloc(r->table, sizeof(*r->table) * (r->nentries + 1));
    struct entry *e = &r->table[r->nentries++];
    e->name = strdup(name);
    e->ips = NULL;
    e->nips = 0;
    for (char *ip = strtok_r(NULL, " ", &save); ip; ip = strtok_r(NULL, " ", &save)) {
      e->ips = realloc(e->ips, sizeof(*e->ips) * (e->nips + 1));
      if (inet_pton(AF_INET, ip, &e->ips[e->nips]) == 1) e->nips++;
    }
  }
  free(text);
  reply(id, "ok");
}

static void cmd_dns_close(const char *id, int s) {
  if (s >= 0 && s < MAX_SOCKS && socks[s].fd >= 0) {
    close(socks[s].fd);
    socks[s].fd = -1;
    free_table(&socks[s]);
  }
  reply(id, "ok");
}

/* Read a DNS name at off into out (lower case, dotted); returns the offset after it or -1. */
static int read_qname(const unsigned char *m, int len, int off, char *out, int outlen) {
  int o = 0;
  while (off < len) {
    int l = m[off++];
    if (l == 0) {
      out[o] = 0;
      return off;
    }
    if (l > 63 || off + l > len || o + l + 2 > outlen) return -1;
    if (o) out[o++] = '.';
    for (int i = 0; i < l; i++) out[o++] = (char)((m[off + i] >= 'A' && m[off + i] <= 'Z') ? m[off + i] + 32 : m[off + i]);
    off += l;
  }
  return -1;
}

static void on_query(struct resolver *r) {
  unsigned char m[512];
  struct sockaddr_in from;
  socklen_t fl = sizeof(from);
  int n = recvfrom(r->fd, m, sizeof(m), 0, (struct sockaddr *)&from, &fl);
  if (n < 12) return;
  if (m[2] & 0x80) return; /* a response, not a query */
  int qd = m[4] << 8 | m[5];
  char name[256];
  int end = qd == 1 ? read_qname(m, n, 12, name, sizeof(name)) : -1;
  if (end < 0 || end + 4 > n) return;
  int qtype = m[end] << 8 | m[end + 1];
  int qclass = m[end + 2] << 8 | m[end + 3];
  end += 4;
  size_t nl = strlen(name);
  if (nl && name[nl - 1] == '.') name[--nl] = 0;

  struct entry *hit = NULL;
  for (int i = 0; i < r->nentries; i++)
    if (strcasecmp(r->table[i].name, name) == 0) hit = &r->table[i];

  unsigned char out[512];
  memcpy(out, m, end); /* header and question */
  out[2] = 0x80 | (m[2] & 0x01) | 0x04; /* response, recursion desired copied, authoritative */
  out[3] = 0x80;                         /* recursion available */
  out[6] = out[7] = out[8] = out[9] = out[10] = out[11] = 0;
  int len = end, answers = 0;
  if (!hit) {
    /* dockerd would forward to the host's resolvers; a lab has no route to any, and Docker
     * answers SERVFAIL when forwarding fails. */
    out[3] |= 2;
  } else if (qtype == 1 && qclass == 1) {
    for (int i = 0; i < hit->nips && len + 16 <= (int)sizeof(out); i++) {
      unsigned char rr[16] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x02, 0x58, 0, 4}; /* ptr to qname, A, IN, TTL 600, len 4 */
      memcpy(rr + 12, &hit->ips[i].s_addr, 4);
      memcpy(out + len, rr, 16);
      len += 16;
      answers++;
    }
  }
  out[6] = answers >> 8;
  out[7] = answers & 0xff;
  sendto(r->fd, out, len, 0, (struct sockaddr *)&from, fl);
}

int main(int argc, char **argv) {
  const char *netns = NULL;
  for (int i = 1; i + 1 < argc; i += 2)
    if (strcmp(argv[i], "--netns") == 0) netns = argv[i + 1];
  if (netns) {
    int fd = open(netns, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
      fprintf(stderr, "refd: cannot enter %s: %s\n", netns, strerror(errno));
      return 2;
    }
    close(fd);
  }
  host_netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  for (int i = 0; i < MAX_SOCKS; i++) socks[i].fd = -1;
  signal(SIGPIPE, SIG_IGN);
  printf("ready\n");
  fflush(stdout);

  char buf[65536];
  int blen = 0;
  struct pollfd *pfds = calloc(MAX_SOCKS + 1, sizeof(*pfds));
  int *map = calloc(MAX_SOCKS + 1, sizeof(*map));
  for (;;) {
    int n = 0;
    pfds[n].fd = 0;
    pfds[n].events = POLLIN;
    map[n++] = -1;
    for (int i = 0; i < MAX_SOCKS; i++) {
      if (socks[i].fd < 0) continue;
      pfds[n].fd = socks[i].fd;
      pfds[n].events = POLLIN;
      map[n++] = i;
    }
    if (poll(pfds, n, -1) < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    for (int j = 1; j < n; j++)
      if (pfds[j].revents & POLLIN) on_query(&socks[map[j]]);
    if (!(pfds[0].revents & (POLLIN | POLLHUP))) continue;
    int r = read(0, buf + blen, sizeof(buf) - 1 - blen);
    if (r <= 0) return 0; /* the engine is gone: so are we */
    blen += r;
    buf[blen] = 0;
    char *start = buf, *nl;
    while ((nl = strchr(start, '\n'))) {
      *nl = 0;
      char *argv2[6];
      int ac = 0;
      for (char *t = strtok(start, " "); t && ac < 6; t = strtok(NULL, " ")) argv2[ac++] = t;
      start = nl + 1;
      if (ac == 0) continue;
      const char *c = argv2[0], *id = ac > 1 ? argv2[1] : "-";
      if (strcmp(c, "Q") == 0) return 0;
      else if (strcmp(c, "M") == 0 && ac >= 5) cmd_mntns(id, argv2[2], argv2[3], argv2[4]);
      else if (strcmp(c, "F") == 0 && ac >= 3) cmd_free(id, argv2[2]);
      else if (strcmp(c, "D") == 0 && ac >= 3) cmd_dns_open(id, argv2[2]);
      else if (strcmp(c, "T") == 0 && ac >= 3) cmd_table(id, atoi(argv2[2]), ac >= 4 ? argv2[3] : "");
      else if (strcmp(c, "C") == 0 && ac >= 3) cmd_dns_close(id, atoi(argv2[2]));
      else reply(id, "error bad-command");
    }
    blen = strlen(start);
    memmove(buf, start, blen + 1);
  }
}
