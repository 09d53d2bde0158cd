/*
 * tracemon: the tracing of one Docker host namespace, in one small process. It loads the
 * lab's tracing table, prints the kernel's nftables trace events one short line each, and on
 * command sends a marker packet, waits for its event (so every event before it has been
 * printed) and prints the rule set by handle. What `nft monitor trace` does, without what
 * costs it most (decoding every header into nft expressions, printing every rule, a process
 * per rule dump): on a 1,000-probe matrix nft fell seconds behind the probes; this keeps up.
 * The table and the dumps go through libnftables (Debian's nftables), loaded at run time.
 *
 * usage: tracemon --netns PATH --skip-table NAME [--setup SCRIPT] [--cleanup SCRIPT] [--libnftables SONAME]
 *        tracemon --check [--libnftables SONAME]      (is libnftables there?)
 * Prints "ready" once listening and the table is loaded ("error TEXT" and exit 2 otherwise), then:
 *   P <id> <family> <table> <chain> <iif> <oif> <src> <dst> <ttl> <ipid> <proto> <sport> <dport> <icmptype> <icmpid> <icmpseq>
 *       the packet's headers where this base chain saw it ("-" for what it has not)
 *   E <id> <family> <table> <chain> rule|policy|return <handle|-> <verdict> [<target chain>]
 *       verdict: accept drop continue return jump goto queue stolen repeat break
 *   LOST   the socket overflowed: events are missing from here on
 * Events of --skip-table (the lab's own marking table) are printed only when they carry the
 * packet, and the ends of chains where no rule decided not at all: they say nothing of the
 * engine's rules. Commands on stdin:
 *   M <token> <bound-ms>  marker: "L <line>" per line of `list ruleset` with handles, then
 *                         "M <token> done <ms> <legacy tables, comma-separated, or ->", or
 *                         "M <token> nomarker <ms>" when its event did not come within the bound
 *   Q                     run --cleanup and exit (so does the end of stdin)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

/* libnftables' API (nftables/libnftables.h), resolved with dlsym */
#define NFT_CTX_OUTPUT_STATELESS (1 << 2)
#define NFT_CTX_OUTPUT_HANDLE (1 << 3)
struct nft_ctx;
static struct nft_ctx *(*ctx_new)(uint32_t);
static void (*set_output_flags)(struct nft_ctx *, unsigned int);
static int (*buffer_output)(struct nft_ctx *);
static int (*buffer_error)(struct nft_ctx *);
static const char *(*output_buffer)(struct nft_ctx *);
static const char *(*error_buffer)(struct nft_ctx *);
static int (*run_cmd)(struct nft_ctx *, const char *);
static struct nft_ctx *nft;

static const char *load_libnftables(const char *soname) {
  void *h = dlopen(soname, RTLD_NOW);
  if (!h) return "libnftables is not installed";
  if (!(ctx_new = dlsym(h, "nft_ctx_new")) || !(set_output_flags = dlsym(h, "nft_ctx_output_set_flags")) || !(buffer_output = dlsym(h, "nft_ctx_buffer_output")) ||
      !(buffer_error = dlsym(h, "nft_ctx_buffer_error")) || !(output_buffer = dlsym(h, "nft_ctx_get_output_buffer")) || !(error_buffer = dlsym(h, "nft_ctx_get_error_buffer")) ||
      !(run_cmd = dlsym(h, "nft_run_cmd_from_buffer")))
    return "libnftables lacks its API (nft_ctx_new …)";
  return NULL;
}

/* one line of nft's error output, for an "error" line */
static void first_line(const char *s, char *out, size_t n) {
  snprintf(out, n, "%s", s && *s ? s : "(no message)");
  out[strcspn(out, "\n")] = 0;
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- trace events ---- */

struct event {
  uint32_t id, type, iif, oif;
  int has_id, has_iif, has_oif, has_handle, has_verdict, has_policy;
  uint64_t handle;
  int32_t verdict, policy;
  const char *table, *chain, *target;
  const unsigned char *net, *transport;
  int net_len, transport_len;
};

static const char *family_name(int f) {
  switch (f) {
  case NFPROTO_INET: return "inet";
  case NFPROTO_IPV4: return "ip";
  case NFPROTO_IPV6: return "ip6";
  case NFPROTO_ARP: return "arp";
  case NFPROTO_BRIDGE: return "bridge";
  case NFPROTO_NETDEV: return "netdev";
  default: return "unknown";
  }
}

static const char *verdict_name(int32_t v) {
  switch (v) {
  case NF_ACCEPT: return "accept";
  case NF_DROP: return "drop";
  case NF_STOLEN: return "stolen";
  case NF_QUEUE: return "queue";
  case NF_REPEAT: return "repeat";
  case NFT_CONTINUE: return "continue";
  case NFT_BREAK: return "break";
  case NFT_JUMP: return "jump";
  case NFT_GOTO: return "goto";
  case NFT_RETURN: return "return";
  default: return "unknown";
  }
}

/* a name as one word: nft allows spaces in quoted names */
static void word(const char *s) {
  if (!s || !*s) {
    fputs("-", stdout);
    return;
  }
  for (; *s; s++) putchar(*s == ' ' ? '_' : *s);
}

static void ifname(int has, uint32_t index) {
  char name[IF_NAMESIZE];
  if (!has) fputs("-", stdout);
  else if (if_indextoname(index, name)) word(name);
  else printf("ifindex_%u", index);
}

#define NLA_DATA(a) ((const void *)((const char *)(a) + NLA_HDRLEN))
#define NLA_LEN(a) ((int)(a)->nla_len - NLA_HDRLEN)
#define FOR_ATTRS(a, start, len) \
  for (const struct nlattr *a = (start); (len) >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= (len); \
       (len) -= NLA_ALIGN(a->nla_len), a = (const struct nlattr *)((const char *)a + NLA_ALIGN(a->nla_len)))

static uint32_t u32(const struct nlattr *a) {
  uint32_t v;
  memcpy(&v, NLA_DATA(a), sizeof(v));
  return ntohl(v);
}

static void parse_verdict(const struct nlattr *nest, struct event *ev) {
  int len = NLA_LEN(nest);
  FOR_ATTRS(a, (const struct nlattr *)NLA_DATA(nest), len) {
    int type = a->nla_type & NLA_TYPE_MASK;
    if (type == NFTA_VERDICT_CODE) {
      ev->verdict = (int32_t)u32(a);
      ev->has_verdict = 1;
    } else if (type == NFTA_VERDICT_CHAIN) ev->target = NLA_DATA(a);
  }
}

/* a pending marker: the source port of the packet whose event ends the wait */
static struct {
  int active, port;
  long long sent_at, deadline;
  char token[64];
} marker;

static void finish_marker(void);

/* Prints the packet line; returns whether it is the pending marker's. */
static int print_packet(const struct event *ev, const char *family, const char *skip) {
  const unsigned char *ip = ev->net;
  if (!ip || ev->net_len < 20 || (ip[0] >> 4) != 4) return 0; /* IPv4 probes only */
  char src[INET_ADDRSTRLEN], dst[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, ip + 12, src, sizeof(src));
  inet_ntop(AF_INET, ip + 16, dst, sizeof(dst));
  int proto = ip[9], sport = -1;
  printf("P %08x %s ", ev->id, family);
  word(ev->table);
  putchar(' ');
  word(ev->chain);
  putchar(' ');
  ifname(ev->has_iif, ev->iif);
  putchar(' ');
  ifname(ev->has_oif, ev->oif);
  printf(" %s %s %u %u ", src, dst, ip[8], (unsigned)(ip[4] << 8 | ip[5]));
  const unsigned char *th = ev->transport;
  int tl = ev->transport_len;
  if ((proto == IPPROTO_TCP || proto == IPPROTO_UDP) && th && tl >= 4) {
    sport = th[0] << 8 | th[1];
    printf("%s %d %u - - -\n", proto == IPPROTO_TCP ? "tcp" : "udp", sport, (unsigned)(th[2] << 8 | th[3]));
  } else if (proto == IPPROTO_ICMP && th && tl >= 8)
    printf("icmp - - %u %u %u\n", th[0], (unsigned)(th[4] << 8 | th[5]), (unsigned)(th[6] << 8 | th[7]));
  else
    printf("%d - - - - -\n", proto);
  return marker.active && proto == IPPROTO_UDP && sport == marker.port && strcmp(dst, "127.0.0.1") == 0 && skip && strcmp(ev->table, skip) == 0;
}

static void on_trace(const struct nlmsghdr *nh, const char *skip) {
  const struct nfgenmsg *g = NLMSG_DATA(nh);
  struct event ev;
  memset(&ev, 0, sizeof(ev));
  int len = (int)nh->nlmsg_len - NLMSG_SPACE(sizeof(*g));
  FOR_ATTRS(a, (const struct nlattr *)((const char *)g + NLMSG_ALIGN(sizeof(*g))), len) {
    switch (a->nla_type & NLA_TYPE_MASK) {
    case NFTA_TRACE_TABLE: ev.table = NLA_DATA(a); break;
    case NFTA_TRACE_CHAIN: ev.chain = NLA_DATA(a); break;
    case NFTA_TRACE_RULE_HANDLE: {
      uint64_t v;
      memcpy(&v, NLA_DATA(a), sizeof(v));
      ev.handle = be64toh(v);
      ev.has_handle = 1;
      break;
    }
    case NFTA_TRACE_TYPE: ev.type = u32(a); break;
    case NFTA_TRACE_VERDICT: parse_verdict(a, &ev); break;
    case NFTA_TRACE_ID: ev.id = u32(a), ev.has_id = 1; break;
    case NFTA_TRACE_NETWORK_HEADER: ev.net = NLA_DATA(a), ev.net_len = NLA_LEN(a); break;
    case NFTA_TRACE_TRANSPORT_HEADER: ev.transport = NLA_DATA(a), ev.transport_len = NLA_LEN(a); break;
    case NFTA_TRACE_IIF: ev.iif = u32(a), ev.has_iif = 1; break;
    case NFTA_TRACE_OIF: ev.oif = u32(a), ev.has_oif = 1; break;
    case NFTA_TRACE_POLICY: ev.policy = (int32_t)u32(a), ev.has_policy = 1; break;
    default: break;
    }
  }
  if (!ev.has_id || !ev.table || !ev.chain) return;
  const char *family = family_name(g->nfgen_family);
  if (ev.net && print_packet(&ev, family, skip)) finish_marker();
  if (skip && strcmp(ev.table, skip) == 0) return;
  /* the end of a chain where no rule decided: the next event shows where the packet went on */
  if (ev.type != NFT_TRACETYPE_POLICY && !ev.has_handle && ev.has_verdict && ev.verdict == NFT_CONTINUE) return;
  const char *kind = ev.type == NFT_TRACETYPE_POLICY ? "policy" : ev.type == NFT_TRACETYPE_RETURN ? "return" : "rule";
  int32_t v = ev.type == NFT_TRACETYPE_POLICY && ev.has_policy ? ev.policy : ev.verdict;
  printf("E %08x %s ", ev.id, family);
  word(ev.table);
  putchar(' ');
  word(ev.chain);
  printf(" %s ", kind);
  if (ev.has_handle) printf("%llu", (unsigned long long)ev.handle);
  else fputs("-", stdout);
  printf(" %s", ev.has_verdict || ev.has_policy ? verdict_name(v) : "-");
  if (ev.target && (v == NFT_JUMP || v == NFT_GOTO)) {
    putchar(' ');
    word(ev.target);
  }
  putchar('\n');
}

/* ---- markers and rule dumps ---- */

static void send_marker(const char *token, long long bound) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  struct sockaddr_in me;
  socklen_t ml = sizeof(me);
  /* the probe agent's payload: the tracing table marks it like a probe */
  static const char payload[] = "probe marker\n";
  if (s < 0 || connect(s, (struct sockaddr *)&to, sizeof(to)) < 0 || getsockname(s, (struct sockaddr *)&me, &ml) < 0 || send(s, payload, sizeof(payload) - 1, 0) < 0) {
    printf("M %s nomarker 0 cannot-send:%s\n", token, strerror(errno));
    if (s >= 0) close(s);
    return;
  }
  close(s); /* traced while send() ran: its events are queued already */
  marker.active = 1;
  marker.port = ntohs(me.sin_port);
  marker.sent_at = now_ms();
  marker.deadline = marker.sent_at + bound;
  snprintf(marker.token, sizeof(marker.token), "%s", token);
}

static void finish_marker(void) {
  long long took = now_ms() - marker.sent_at;
  marker.active = 0;
  if (run_cmd(nft, "list ruleset") != 0) {
    char err[256];
    first_line(error_buffer(nft), err, sizeof(err));
    printf("M %s listfailed %lld %s\n", marker.token, took, err);
    return;
  }
  const char *text = output_buffer(nft);
  for (const char *l = text; l && *l;) {
    const char *nl = strchr(l, '\n');
    int n = nl ? (int)(nl - l) : (int)strlen(l);
    printf("L %.*s\n", n, l);
    l = nl ? nl + 1 : l + n;
  }
  /* x_tables' tables of this namespace (iptables-legacy): nftables tracing cannot see them */
  char legacy[512] = "";
  FILE *f = fopen("/proc/self/net/ip_tables_names", "r");
  char name[64];
  while (f && fscanf(f, "%63s", name) == 1) {
    if (*legacy) strncat(legacy, ",", sizeof(legacy) - strlen(legacy) - 1);
    strncat(legacy, name, sizeof(legacy) - strlen(legacy) - 1);
  }
  if (f) fclose(f);
  printf("M %s done %lld %s\n", marker.token, took, *legacy ? legacy : "-");
}

static void quit(const char *cleanup) {
  fflush(stdout);
  if (cleanup && run_cmd(nft, cleanup) != 0) {
    char err[256];
    first_line(error_buffer(nft), err, sizeof(err));
    fprintf(stderr, "tracemon: cleanup failed: %s\n", err);
    exit(1);
  }
  exit(0);
}

static void on_command(char *line, const char *cleanup) {
  char token[64];
  long long bound;
  if (sscanf(line, "M %63s %lld", token, &bound) == 2) {
    if (marker.active) printf("M %s busy\n", token);
    else send_marker(token, bound);
  } else if (line[0] == 'Q') quit(cleanup);
}

int main(int argc, char **argv) {
  const char *netns = NULL, *skip = NULL, *setup = NULL, *cleanup = NULL, *soname = "libnftables.so.1";
  int check = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--check") == 0) check = 1;
    else if (i + 1 < argc && strcmp(argv[i], "--netns") == 0) netns = argv[++i];
    else if (i + 1 < argc && strcmp(argv[i], "--skip-table") == 0) skip = argv[++i];
    else if (i + 1 < argc && strcmp(argv[i], "--setup") == 0) setup = argv[++i];
    else if (i + 1 < argc && strcmp(argv[i], "--cleanup") == 0) cleanup = argv[++i];
    else if (i + 1 < argc && strcmp(argv[i], "--libnftables") == 0) soname = argv[++i];
  }
  /* it dies with the harness, which may be killed outright; a parent already gone by then left
     it to a reaper: compared with the parent it started with (in a microVM guest the parent,
     the guest's agent, is PID 1 itself) */
  pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) return 0;
  static char out[1 << 16];
  setvbuf(stdout, out, _IOFBF, sizeof(out));
  const char *missing = load_libnftables(soname);
  if (check) {
    printf(missing ? "error %s (%s)\n" : "ok %s\n", missing ? missing : soname, soname);
    return missing ? 2 : 0;
  }
  if (missing) {
    printf("error %s (%s)\n", missing, soname);
    return 2;
  }
  if (netns) {
    int fd = open(netns, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
      printf("error cannot enter %s: %s\n", netns, strerror(errno));
      return 2;
    }
    close(fd);
  }
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_NETFILTER);
  struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
  int group = NFNLGRP_NFTRACE;
  if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || setsockopt(s, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) < 0) {
    printf("error cannot listen to nftables trace events: %s\n", strerror(errno));
    return 2;
  }
  /* a burst of probes makes thousands of events at once: room for them while we print */
  int size = 32 << 20;
  if (setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0) setsockopt(s, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  /* listening before the table exists: no traced packet can come before we do */
  nft = ctx_new(0);
  if (!nft) {
    printf("error libnftables: no context\n");
    return 2;
  }
  set_output_flags(nft, NFT_CTX_OUTPUT_HANDLE | NFT_CTX_OUTPUT_STATELESS);
  buffer_output(nft);
  buffer_error(nft);
  if (setup && run_cmd(nft, setup) != 0) {
    char err[256];
    first_line(error_buffer(nft), err, sizeof(err));
    printf("error loading the tracing table: %s\n", err);
    return 2;
  }
  printf("ready\n");
  fflush(stdout);

  static char buf[1 << 17], cmd[512];
  int clen = 0;
  for (;;) {
    struct pollfd p[2] = { { .fd = s, .events = POLLIN }, { .fd = 0, .events = POLLIN } };
    int timeout = marker.active ? (int)(marker.deadline - now_ms() > 0 ? marker.deadline - now_ms() : 0) : -1;
    int r = poll(p, 2, timeout);
    if (r < 0 && errno != EINTR) return 1;
    if (marker.active && now_ms() >= marker.deadline) {
      printf("M %s nomarker %lld\n", marker.token, now_ms() - marker.sent_at);
      marker.active = 0;
    }
    if (p[0].revents & POLLIN) {
      for (;;) {
        ssize_t n = recv(s, buf, sizeof(buf), 0);
        if (n < 0) {
          if (errno == ENOBUFS) {
            printf("LOST\n");
            continue;
          }
          break; /* EAGAIN: all read */
        }
        int len = (int)n;
        for (const struct nlmsghdr *nh = (const struct nlmsghdr *)buf; NLMSG_OK(nh, len); nh = NLMSG_NEXT(nh, len)) {
          if (NFNL_SUBSYS_ID(nh->nlmsg_type) == NFNL_SUBSYS_NFTABLES && NFNL_MSG_TYPE(nh->nlmsg_type) == NFT_MSG_TRACE) on_trace(nh, skip);
        }
      }
    }
    if (p[1].revents & (POLLIN | POLLHUP)) {
      ssize_t n = read(0, cmd + clen, sizeof(cmd) - 1 - clen);
      if (n <= 0) quit(cleanup);
      clen += (int)n;
      cmd[clen] = 0;
      char *start = cmd, *nl;
      while ((nl = strchr(start, '\n'))) {
        *nl = 0;
        on_command(start, cleanup);
        start = nl + 1;
      }
      clen = (int)strlen(start);
      memmove(cmd, start, clen + 1);
      if (clen >= (int)sizeof(cmd) - 1) clen = 0;
    }
    fflush(stdout); /* the harness waits on lines, never on a full buffer */
  }
}
