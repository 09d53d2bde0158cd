/*
 * tracemon: nftables trace events of the network namespace it runs in, one short line each.
 * What `nft monitor trace` shows, without what costs it most (decoding every header into nft
 * expressions, printing every rule): on a 1,000-probe matrix it fell seconds behind the
 * probes; this keeps up. Rule texts come from a rule dump, by handle (trace/ruledump.ts).
 *
 * usage: tracemon [--netns PATH] [--skip-table NAME]
 * Prints "ready" once subscribed, then per event of a traced packet:
 *   P <id> <family> <table> <chain> <iif> <oif> <src> <dst> <ttl> <ipid> <proto> <sport> <dport> <icmptype> <icmpid> <icmpseq>
 *       (the packet's headers where this base chain saw it; "-" for what it has not)
 *   E <id> <family> <table> <chain> rule|policy|return <handle|-> <verdict> [<target chain>]
 *       (verdict: accept drop continue return jump goto queue stolen repeat break)
 *   LOST  (the socket overflowed: events are missing from here on)
 * Events of --skip-table (the lab's own marking table) are printed only when they carry the
 * packet: the rest of them says nothing about the engine's rules; nor are the ends of chains
 * where no rule decided (the packet goes on, as the next event shows).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

struct event {
  uint32_t id, type, iif, oif;
  int has_id, has_type, has_iif, has_oif, has_handle, has_verdict, has_policy;
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

static uint32_t u32(const struct nlattr *a) {
  uint32_t v;
  memcpy(&v, (const char *)a + NLA_HDRLEN, sizeof(v));
  return ntohl(v);
}

#define NLA_DATA(a) ((const void *)((const char *)(a) + NLA_HDRLEN))
#define NLA_LEN(a) ((int)(a)->nla_len - NLA_HDRLEN)

static void parse_verdict(const struct nlattr *nest, struct event *ev) {
  int len = NLA_LEN(nest);
  for (const struct nlattr *a = NLA_DATA(nest); len >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= len;
       len -= NLA_ALIGN(a->nla_len), a = (const struct nlattr *)((const char *)a + NLA_ALIGN(a->nla_len))) {
    int type = a->nla_type & NLA_TYPE_MASK;
    if (type == NFTA_VERDICT_CODE) {
      ev->verdict = (int32_t)u32(a);
      ev->has_verdict = 1;
    } else if (type == NFTA_VERDICT_CHAIN) ev->target = NLA_DATA(a);
  }
}

static void print_packet(const struct event *ev, const char *family) {
  const unsigned char *ip = ev->net;
  if (!ip || ev->net_len < 20 || (ip[0] >> 4) != 4) return; /* IPv4 probes only */
  char src[INET_ADDRSTRLEN], dst[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, ip + 12, src, sizeof(src));
  inet_ntop(AF_INET, ip + 16, dst, sizeof(dst));
  int proto = ip[9];
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
  if ((proto == IPPROTO_TCP || proto == IPPROTO_UDP) && th && tl >= 4)
    printf("%s %u %u - - -\n", proto == IPPROTO_TCP ? "tcp" : "udp", (unsigned)(th[0] << 8 | th[1]), (unsigned)(th[2] << 8 | th[3]));
  else if (proto == IPPROTO_ICMP && th && tl >= 8)
    printf("icmp - - %u %u %u\n", th[0], (unsigned)(th[4] << 8 | th[5]), (unsigned)(th[6] << 8 | th[7]));
  else
    printf("%d - - - - -\n", proto);
}

static void on_trace(const struct nlmsghdr *nh, const char *skip) {
  const struct nfgenmsg *g = NLMSG_DATA(nh);
  struct event ev;
  memset(&ev, 0, sizeof(ev));
  int len = (int)nh->nlmsg_len - NLMSG_SPACE(sizeof(*g));
  for (const struct nlattr *a = (const struct nlattr *)((const char *)g + NLMSG_ALIGN(sizeof(*g)));
       len >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= len;
       len -= NLA_ALIGN(a->nla_len), a = (const struct nlattr *)((const char *)a + NLA_ALIGN(a->nla_len))) {
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
    case NFTA_TRACE_TYPE: ev.type = u32(a), ev.has_type = 1; break;
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
  if (ev.net) print_packet(&ev, family);
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

int main(int argc, char **argv) {
  const char *netns = NULL, *skip = NULL;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--netns") == 0) netns = argv[i + 1];
    else if (strcmp(argv[i], "--skip-table") == 0) skip = argv[i + 1];
  }
  /* it never reads stdin: without this, a harness killed outright would leave it behind */
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 0;
  if (netns) {
    int fd = open(netns, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) {
      fprintf(stderr, "tracemon: cannot enter %s: %s\n", netns, strerror(errno));
      return 2;
    }
    close(fd);
  }
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (s < 0) {
    fprintf(stderr, "tracemon: netlink socket: %s\n", strerror(errno));
    return 2;
  }
  /* a burst of probes makes thousands of events at once: room for them while we print */
  int size = 32 << 20;
  if (setsockopt(s, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0) setsockopt(s, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
  int group = NFNLGRP_NFTRACE;
  if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || setsockopt(s, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) < 0) {
    fprintf(stderr, "tracemon: cannot listen to nftables trace events: %s\n", strerror(errno));
    return 2;
  }
  static char out[1 << 16];
  setvbuf(stdout, out, _IOFBF, sizeof(out));
  printf("ready\n");
  fflush(stdout);
  static char buf[1 << 17];
  for (;;) {
    ssize_t n = recv(s, buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {
        printf("LOST\n");
        fflush(stdout);
        continue;
      }
      fprintf(stderr, "tracemon: recv: %s\n", strerror(errno));
      return 1;
    }
    int len = (int)n;
    for (const struct nlmsghdr *nh = (const struct nlmsghdr *)buf; NLMSG_OK(nh, len); nh = NLMSG_NEXT(nh, len)) {
      if (NFNL_SUBSYS_ID(nh->nlmsg_type) == NFNL_SUBSYS_NFTABLES && NFNL_MSG_TYPE(nh->nlmsg_type) == NFT_MSG_TRACE) on_trace(nh, skip);
    }
    fflush(stdout); /* after each read: the harness waits on lines, never on a full buffer */
  }
}
