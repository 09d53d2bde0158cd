/*
 * ncf-agent: the microVM guest's PID 1 once its kernel modules are loaded. The harness runs
 * on the host (Node under software emulation costs seconds per start and per scenario); this
 * small static program is all of the harness the guest holds. It serves the host over one
 * virtio-serial port: starts processes (in a network or mount namespace of the guest, with
 * their output streamed back), does file operations, and relays unix-socket connections (a
 * dockerd's API). It is in the initramfs, so a guest booted up to here can be saved by qemu
 * (no 9p share mounted yet) and restored in a second; the shared root is mounted on `hello`.
 *
 * Frames, both ways: u32 payload length, u32 channel, u8 type, payload (little-endian).
 * Fields in payloads are "key=value" strings separated by NUL; a `data=` field is last and
 * runs to the end of the payload.
 *   host → guest                              guest → host
 *   H 0 hello (time, seed, shares, hostname)  B 0 booted (ready to be saved)   H 0 ready (release)
 *   X c exec (arg=… env=… netns= mntns=       S c started "PID" (or "0" for a connection)
 *       detached=1 log= clearenv=1)           E c error text
 *   I c stdin bytes; empty: close stdin       O c stdout bytes   R c stderr bytes
 *   K c signal number                         Z c exit "code N" | "signal N" (after its output)
 *   F c file op (op= path= …, see fileop)     F c result bytes
 *   C c connect to unix socket path           D c bytes   Q c closed (either way; also cancels)
 *   D c bytes   Q c close
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PORT_NAME "org.netconform.agent"
#define MAXCH 1024
#define CHUNK 65536

enum kind { FREE, PROC, SOCK, WATCH };

struct buf {
  char *p;
  size_t len, cap;
};

struct chan {
  enum kind kind;
  uint32_t id;
  pid_t pid;
  int in, out, err; /* PROC: pipes (-1 when closed); SOCK: in = the socket */
  int status_known, status;
  int close_in_when_drained;
  struct buf pending; /* bytes for `in` that did not fit yet */
  int wd;             /* WATCH: inotify watch */
  char *watch_path;
};

static struct chan chans[MAXCH];
static int port = -1, sigfd = -1, inofd = -1;
static struct buf rx;

static void die(const char *what) {
  fprintf(stderr, "ncf-agent: %s: %s\n", what, strerror(errno));
  sync();
  reboot(RB_POWER_OFF);
  _exit(1);
}

static void buf_add(struct buf *b, const void *p, size_t n) {
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2;
    b->p = realloc(b->p, b->cap);
    if (!b->p) die("out of memory");
  }
  memcpy(b->p + b->len, p, n);
  b->len += n;
}

static void buf_drop(struct buf *b, size_t n) {
  memmove(b->p, b->p + n, b->len - n);
  b->len -= n;
}

static void write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) {
      struct pollfd pf = {fd, POLLOUT, 0};
      poll(&pf, 1, -1);
      continue;
    }
    if (w <= 0) die("writing to the host");
    p += w;
    n -= (size_t)w;
  }
}

static void send_frame(uint32_t ch, char type, const void *data, size_t n) {
  char head[9];
  uint32_t len = (uint32_t)n;
  memcpy(head, &len, 4);
  memcpy(head + 4, &ch, 4);
  head[8] = type;
  write_all(port, head, 9);
  if (n) write_all(port, data, n);
}

static void sendf(uint32_t ch, char type, const char *fmt, ...) {
  char text[4096];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  send_frame(ch, type, text, n < 0 ? 0 : (size_t)n >= sizeof text ? sizeof text - 1 : (size_t)n);
}

/* ---- fields of a payload ---- */

struct fields {
  const char *p;
  size_t n;
};

/* The next "key=value" field at *off, or NULL at the end; `data=` takes the rest. */
static const char *next_field(struct fields f, size_t *off, size_t *vlen, char *key, size_t keycap) {
  if (*off >= f.n) return NULL;
  const char *start = f.p + *off;
  const char *eq = memchr(start, '=', f.n - *off);
  if (!eq) return NULL;
  size_t klen = (size_t)(eq - start);
  if (klen >= keycap) klen = keycap - 1;
  memcpy(key, start, klen);
  key[klen] = 0;
  const char *v = eq + 1;
  if (strcmp(key, "data") == 0) {
    *vlen = f.n - (size_t)(v - f.p);
    *off = f.n;
    return v;
  }
  const char *end = memchr(v, 0, f.n - (size_t)(v - f.p));
  *vlen = end ? (size_t)(end - v) : f.n - (size_t)(v - f.p);
  *off = (size_t)(v - f.p) + *vlen + 1;
  return v;
}

static char *field(struct fields f, const char *want) {
  size_t off = 0, vlen;
  char key[64];
  const char *v;
  while ((v = next_field(f, &off, &vlen, key, sizeof key))) {
    if (strcmp(key, want) == 0) return strndup(v, vlen);
  }
  return NULL;
}

/* ---- channels ---- */

static struct chan *chan_of(uint32_t id) {
  for (int i = 0; i < MAXCH; i++)
    if (chans[i].kind != FREE && chans[i].id == id) return &chans[i];
  return NULL;
}

static struct chan *chan_new(uint32_t id, enum kind kind) {
  for (int i = 0; i < MAXCH; i++) {
    if (chans[i].kind == FREE) {
      memset(&chans[i], 0, sizeof chans[i]);
      chans[i].kind = kind;
      chans[i].id = id;
      chans[i].in = chans[i].out = chans[i].err = -1;
      chans[i].wd = -1;
      return &chans[i];
    }
  }
  return NULL;
}

static void closefd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

static void chan_free(struct chan *c) {
  closefd(&c->in);
  closefd(&c->out);
  closefd(&c->err);
  free(c->pending.p);
  if (c->wd >= 0) inotify_rm_watch(inofd, c->wd);
  free(c->watch_path);
  memset(c, 0, sizeof *c);
  c->kind = FREE;
}

/* A process is done for the host once it exited and its output pipes reached their end. */
static void proc_maybe_done(struct chan *c) {
  if (c->kind != PROC || !c->status_known || c->out >= 0 || c->err >= 0) return;
  if (WIFSIGNALED(c->status)) sendf(c->id, 'Z', "signal %d", WTERMSIG(c->status));
  else sendf(c->id, 'Z', "code %d", WEXITSTATUS(c->status));
  chan_free(c);
}

/* Bytes for a process's stdin or a socket: written now, or kept until it can take them. */
static void feed(struct chan *c, const char *p, size_t n) {
  if (c->in < 0) return;
  if (c->pending.len == 0) {
    ssize_t w = write(c->in, p, n);
    if (w < 0 && errno != EAGAIN) w = 0, n = 0; /* the reader is gone: drop what it cannot take */
    if (w > 0) p += w, n -= (size_t)w;
  }
  if (n) buf_add(&c->pending, p, n);
}

static void flush_pending(struct chan *c) {
  if (c->in < 0 || c->pending.len == 0) return;
  ssize_t w = write(c->in, c->pending.p, c->pending.len);
  if (w < 0 && errno != EAGAIN) c->pending.len = 0;
  else if (w > 0) buf_drop(&c->pending, (size_t)w);
  if (c->pending.len == 0 && c->close_in_when_drained && c->kind == PROC) closefd(&c->in);
}

/* ---- exec ---- */

/* Close every descriptor from `low` up, except `keep`; fds can pass 1024 when the limit allows. */
static void close_from(int low, int keep) {
  if (keep >= low && syscall(SYS_close_range, low, keep - 1, 0) == 0 && syscall(SYS_close_range, keep + 1, ~0U, 0) == 0) return;
  long max = sysconf(_SC_OPEN_MAX);
  for (int fd = low; fd < (max > 0 ? max : 1024); fd++)
    if (fd != keep) close(fd);
}

static void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

static void do_exec(uint32_t id, struct fields f) {
  char *argv[256], *envp[512];
  int argc = 0, envc = 0;
  int clear = 0, detached = 0;
  char *netns = NULL, *mntns = NULL, *log = NULL;
  size_t off = 0, vlen;
  char key[64];
  const char *v;
  while ((v = next_field(f, &off, &vlen, key, sizeof key))) {
    if (!strcmp(key, "arg") && argc < 255) argv[argc++] = strndup(v, vlen);
    else if (!strcmp(key, "env") && envc < 500) envp[envc++] = strndup(v, vlen);
    else if (!strcmp(key, "netns")) netns = strndup(v, vlen);
    else if (!strcmp(key, "mntns")) mntns = strndup(v, vlen);
    else if (!strcmp(key, "log")) log = strndup(v, vlen);
    else if (!strcmp(key, "clearenv")) clear = 1;
    else if (!strcmp(key, "detached")) detached = 1;
  }
  argv[argc] = NULL;
  struct chan *c = argc ? chan_new(id, PROC) : NULL;
  int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1}, report[2];
  if (!c) {
    sendf(id, 'E', argc ? "too many channels" : "no command");
    goto out;
  }
  if (pipe2(report, O_CLOEXEC) < 0 || (!detached && (pipe(pin) < 0 || pipe(pout) < 0 || pipe(perr) < 0))) {
    sendf(id, 'E', "pipe: %s", strerror(errno));
    chan_free(c);
    goto out;
  }
  pid_t pid = fork();
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();
    const char *what = log ? log : "/dev/null";
    int in = -1, outfd = -1;
    if (detached) {
      in = open("/dev/null", O_RDONLY);
      outfd = open(what, O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (in < 0 || outfd < 0) goto fail;
      dup2(in, 0), dup2(outfd, 1), dup2(outfd, 2);
    } else {
      dup2(pin[0], 0), dup2(pout[1], 1), dup2(perr[1], 2);
    }
    /* every descriptor but the report pipe: one left open (a relay, another process's stdin)
       would keep that pipe open as long as this process lives */
    close_from(3, report[1]);
    what = netns;
    if (netns) {
      int fd = open(netns, O_RDONLY | O_CLOEXEC);
      if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) goto fail;
    }
    what = mntns;
    if (mntns) {
      int fd = open(mntns, O_RDONLY | O_CLOEXEC);
      if (fd < 0 || setns(fd, CLONE_NEWNS) < 0) goto fail;
    }
    if (clear) clearenv();
    for (int i = 0; i < envc; i++) putenv(envp[i]);
    what = argv[0];
    execvp(argv[0], argv);
  fail:;
    char msg[512];
    int n = snprintf(msg, sizeof msg, "%s: %s", what, strerror(errno));
    if (write(report[1], msg, (size_t)n) < 0) _exit(127);
    _exit(127);
  }
  close(report[1]);
  closefd(&pin[0]), closefd(&pout[1]), closefd(&perr[1]);
  if (pid < 0) {
    sendf(id, 'E', "fork: %s", strerror(errno));
    closefd(&pin[1]), closefd(&pout[0]), closefd(&perr[0]);
    chan_free(c);
    close(report[0]);
    goto out;
  }
  char msg[512];
  ssize_t n = read(report[0], msg, sizeof msg - 1); /* EOF: exec succeeded (close-on-exec) */
  close(report[0]);
  c->pid = pid;
  if (n > 0) {
    msg[n] = 0;
    waitpid(pid, NULL, 0);
    closefd(&pin[1]), closefd(&pout[0]), closefd(&perr[0]);
    sendf(id, 'E', "%s", msg);
    chan_free(c);
    goto out;
  }
  c->in = pin[1], c->out = pout[0], c->err = perr[0];
  if (c->in >= 0) set_nonblock(c->in);
  sendf(id, 'S', "%d", pid);
out:
  for (int i = 0; i < argc; i++) free(argv[i]);
  /* envp strings stay: putenv in the child used them, the parent never did */
  for (int i = 0; i < envc; i++) free(envp[i]);
  free(netns), free(mntns), free(log);
}

static void reap(void) {
  struct signalfd_siginfo si;
  while (read(sigfd, &si, sizeof si) == sizeof si) {
  }
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    for (int i = 0; i < MAXCH; i++) {
      if (chans[i].kind == PROC && chans[i].pid == pid) {
        chans[i].status_known = 1;
        chans[i].status = status;
        proc_maybe_done(&chans[i]);
      }
    }
  }
}

/* ---- file operations ---- */

static void reply_errno(uint32_t id, const char *what, const char *path) { sendf(id, 'E', "%s %s: %s", what, path, strerror(errno)); }

static int mkdir_p(const char *path, mode_t mode) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s", path);
  for (char *s = tmp + 1; *s; s++) {
    if (*s != '/') continue;
    *s = 0;
    if (mkdir(tmp, mode) < 0 && errno != EEXIST) return -1;
    *s = '/';
  }
  return mkdir(tmp, mode) < 0 && errno != EEXIST ? -1 : 0;
}

static int rm_rf(const char *path) {
  struct stat st;
  if (lstat(path, &st) < 0) return errno == ENOENT ? 0 : -1;
  if (!S_ISDIR(st.st_mode)) return unlink(path);
  DIR *d = opendir(path);
  if (!d) return -1;
  struct dirent *e;
  char sub[4096];
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
    rm_rf(sub);
  }
  closedir(d);
  return rmdir(path);
}

static void read_file(uint32_t id, const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return reply_errno(id, "open", path);
  struct buf b = {0};
  char chunk[CHUNK];
  ssize_t n;
  while ((n = read(fd, chunk, sizeof chunk)) > 0) buf_add(&b, chunk, (size_t)n);
  int err = n < 0 ? errno : 0;
  close(fd);
  if (err) {
    errno = err;
    reply_errno(id, "read", path);
  } else {
    send_frame(id, 'F', b.p, b.len);
  }
  free(b.p);
}

/* Pids whose network namespace is one of the given files (`path=` fields). */
static void netns_pids(uint32_t id, struct fields f) {
  ino_t inodes[512];
  int k = 0;
  size_t off = 0, vlen;
  char key[64], path[4096];
  const char *v;
  while ((v = next_field(f, &off, &vlen, key, sizeof key)) && k < 512) {
    struct stat st;
    snprintf(path, sizeof path, "%.*s", (int)vlen, v);
    if (!strcmp(key, "path") && stat(path, &st) == 0) inodes[k++] = st.st_ino;
  }
  struct buf b = {0};
  DIR *d = opendir("/proc");
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9' || atoi(e->d_name) == 1) continue;
    struct stat st;
    snprintf(path, sizeof path, "/proc/%s/ns/net", e->d_name);
    if (stat(path, &st) < 0) continue;
    for (int i = 0; i < k; i++) {
      if (inodes[i] == st.st_ino) {
        buf_add(&b, e->d_name, strlen(e->d_name));
        buf_add(&b, " ", 1);
        break;
      }
    }
  }
  if (d) closedir(d);
  send_frame(id, 'F', b.p, b.len);
  free(b.p);
}

/*
 * Sysctls of a network namespace: /proc/sys/net is the namespace of the process that opens it,
 * so the agent enters it, writes (`set=PATH=VALUE`), reads (`get=PATH`, one line each) and comes
 * back; it is single-threaded, so nothing else sees the switch.
 */
static void sysctls(uint32_t id, struct fields f, const char *netns) {
  int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  int there = open(netns, O_RDONLY | O_CLOEXEC);
  if (home < 0 || there < 0 || setns(there, CLONE_NEWNET) < 0) {
    reply_errno(id, "setns", netns);
    goto out;
  }
  struct buf b = {0};
  size_t off = 0, vlen;
  char key[64], path[4096];
  const char *v;
  int failed = 0;
  while (!failed && (v = next_field(f, &off, &vlen, key, sizeof key))) {
    snprintf(path, sizeof path, "%.*s", (int)vlen, v);
    if (!strcmp(key, "set")) {
      char *eq = strchr(path, '=');
      if (!eq) continue;
      *eq = 0;
      int fd = open(path, O_WRONLY | O_CLOEXEC);
      if (fd < 0 || write(fd, eq + 1, strlen(eq + 1)) < 0) {
        reply_errno(id, "write", path);
        failed = 1;
      }
      if (fd >= 0) close(fd);
    } else if (!strcmp(key, "get")) {
      char value[256];
      int fd = open(path, O_RDONLY | O_CLOEXEC);
      ssize_t n = fd >= 0 ? read(fd, value, sizeof value - 1) : -1;
      if (fd >= 0) close(fd);
      if (n < 0) n = 0;
      while (n > 0 && value[n - 1] == '\n') n--;
      buf_add(&b, value, (size_t)n);
      buf_add(&b, "\n", 1);
    }
  }
  if (setns(home, CLONE_NEWNET) < 0) die("setns back home");
  if (!failed) send_frame(id, 'F', b.p, b.len);
  free(b.p);
out:
  if (home >= 0) close(home);
  if (there >= 0) close(there);
}

/*
 * The nftables generation of a network namespace, and how many tables it holds: the harness
 * reads rules again (iptables-nft-save, nft list ruleset: a few emulated process starts each)
 * only when the generation moved, since every change to nftables, iptables-nft's included,
 * commits a new one; and a family without tables has an empty iptables-nft dump. Two netlink
 * requests, no process.
 */
static int nft_request(int s, uint16_t type, uint16_t flags, uint32_t seq) {
  struct {
    struct nlmsghdr nh;
    struct nfgenmsg nfg;
  } req = {{.nlmsg_len = sizeof req, .nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | type, .nlmsg_flags = NLM_F_REQUEST | flags, .nlmsg_seq = seq}, {.nfgen_family = AF_UNSPEC, .version = NFNETLINK_V0}};
  return send(s, &req, sizeof req, 0) == (ssize_t)sizeof req ? 0 : -1;
}

/* Tables counted: all of them, and those of the families iptables-nft and ip6tables-nft use. */
struct table_count {
  long all, ip, ip6;
};

/* Replies to request `seq` until it is done: the generation's id, or the tables counted. */
static int nft_replies(int s, uint32_t seq, uint32_t *gen, struct table_count *tables) {
  char rb[65536];
  for (;;) {
    ssize_t n = recv(s, rb, sizeof rb, 0);
    if (n < 0) return -1;
    for (struct nlmsghdr *nh = (struct nlmsghdr *)rb; NLMSG_OK(nh, (size_t)n); nh = NLMSG_NEXT(nh, n)) {
      if (nh->nlmsg_seq != seq) continue;
      if (nh->nlmsg_type == NLMSG_DONE) return 0;
      if (nh->nlmsg_type == NLMSG_ERROR) {
        int err = ((struct nlmsgerr *)NLMSG_DATA(nh))->error;
        if (err) return errno = -err, -1;
        continue;
      }
      if ((nh->nlmsg_type & 0xff) == NFT_MSG_NEWTABLE && tables) {
        uint8_t family = ((struct nfgenmsg *)NLMSG_DATA(nh))->nfgen_family;
        tables->all++;
        if (family == NFPROTO_IPV4) tables->ip++;
        if (family == NFPROTO_IPV6) tables->ip6++;
      }
      if ((nh->nlmsg_type & 0xff) == NFT_MSG_NEWGEN && gen) {
        struct nlattr *a = (struct nlattr *)((char *)NLMSG_DATA(nh) + NLMSG_ALIGN(sizeof(struct nfgenmsg)));
        int left = (int)nh->nlmsg_len - NLMSG_LENGTH(sizeof(struct nfgenmsg));
        for (; left >= (int)sizeof *a && a->nla_len >= sizeof *a; left -= NLA_ALIGN(a->nla_len), a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len)))
          if ((a->nla_type & NLA_TYPE_MASK) == NFTA_GEN_ID) *gen = ntohl(*(uint32_t *)((char *)a + NLA_HDRLEN));
        return 0; /* a single reply, no DONE after it */
      }
    }
  }
}

static void nft_state(uint32_t id, const char *netns) {
  int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  int there = open(netns, O_RDONLY | O_CLOEXEC);
  if (home < 0 || there < 0 || setns(there, CLONE_NEWNET) < 0) {
    reply_errno(id, "setns", netns);
    goto out;
  }
  /* a netlink socket belongs to the namespace it was made in */
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (setns(home, CLONE_NEWNET) < 0) die("setns back home");
  struct timeval tv = {2, 0}; /* the kernel answers at once: never hang the agent */
  uint32_t gen = 0;
  struct table_count tables = {0, 0, 0};
  if (s < 0 || setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 || nft_request(s, NFT_MSG_GETGEN, 0, 1) < 0 || nft_replies(s, 1, &gen, NULL) < 0 ||
      nft_request(s, NFT_MSG_GETTABLE, NLM_F_DUMP, 2) < 0 || nft_replies(s, 2, NULL, &tables) < 0)
    reply_errno(id, "nftables netlink", netns);
  else
    sendf(id, 'F', "gen=%u tables=%ld ip=%ld ip6=%ld", gen, tables.all, tables.ip, tables.ip6);
  if (s >= 0) close(s);
out:
  if (home >= 0) close(home);
  if (there >= 0) close(there);
}

static int watch_check(struct chan *c) {
  if (access(c->watch_path, F_OK) != 0) return 0;
  send_frame(c->id, 'F', "", 0);
  chan_free(c);
  return 1;
}

static void watch_path(uint32_t id, const char *path) {
  struct chan *c = chan_new(id, WATCH);
  if (!c) return sendf(id, 'E', "too many channels");
  c->watch_path = strdup(path);
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) *slash = 0;
  else snprintf(dir, sizeof dir, "/");
  /* watch first, then look: a creation in between is not missed */
  c->wd = inotify_add_watch(inofd, dir, IN_CREATE | IN_MOVED_TO | IN_ATTRIB);
  if (watch_check(c)) return;
  if (c->wd < 0) {
    reply_errno(id, "watch", dir);
    chan_free(c);
  }
}

static void inotify_event(void) {
  char ev[8192];
  ssize_t n = read(inofd, ev, sizeof ev);
  if (n <= 0) return;
  for (int i = 0; i < MAXCH; i++)
    if (chans[i].kind == WATCH) watch_check(&chans[i]);
}

static void do_fileop(uint32_t id, struct fields f) {
  char *op = field(f, "op"), *path = field(f, "path");
  if (!op) op = strdup("");
  if (!path) path = strdup("");
  if (!strcmp(op, "read")) {
    read_file(id, path);
  } else if (!strcmp(op, "write")) {
    char *mode = field(f, "mode");
    size_t off = 0, vlen = 0, dlen = 0;
    char key[64];
    const char *v, *data = NULL;
    while ((v = next_field(f, &off, &vlen, key, sizeof key)))
      if (!strcmp(key, "data")) data = v, dlen = vlen;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode ? (mode_t)strtol(mode, NULL, 8) : 0644);
    if (fd < 0) reply_errno(id, "open", path);
    else {
      ssize_t w = data && dlen ? write(fd, data, dlen) : 0;
      if (w < 0 || (size_t)w != dlen) reply_errno(id, "write", path);
      else send_frame(id, 'F', "", 0);
      close(fd);
    }
    free(mode);
  } else if (!strcmp(op, "mkdir")) {
    if (mkdir_p(path, 0755) < 0) reply_errno(id, "mkdir", path);
    else send_frame(id, 'F', "", 0);
  } else if (!strcmp(op, "rm")) {
    if (rm_rf(path) < 0) reply_errno(id, "rm", path);
    else send_frame(id, 'F', "", 0);
  } else if (!strcmp(op, "rmdir")) {
    if (rmdir(path) < 0) reply_errno(id, "rmdir", path);
    else send_frame(id, 'F', "", 0);
  } else if (!strcmp(op, "readdir")) {
    DIR *d = opendir(path);
    if (!d) reply_errno(id, "opendir", path);
    else {
      struct buf b = {0};
      struct dirent *e;
      while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        buf_add(&b, e->d_type == DT_DIR ? "d " : "f ", 2);
        buf_add(&b, e->d_name, strlen(e->d_name));
        buf_add(&b, "\n", 1);
      }
      closedir(d);
      send_frame(id, 'F', b.p, b.len);
      free(b.p);
    }
  } else if (!strcmp(op, "readlink")) {
    char target[4096];
    ssize_t n = readlink(path, target, sizeof target);
    if (n < 0) reply_errno(id, "readlink", path);
    else send_frame(id, 'F', target, (size_t)n);
  } else if (!strcmp(op, "kill")) {
    char *pid = field(f, "pid"), *sig = field(f, "sig");
    if (kill(pid ? atoi(pid) : 0, sig ? atoi(sig) : SIGKILL) < 0) reply_errno(id, "kill", pid ? pid : "?");
    else send_frame(id, 'F', "", 0);
    free(pid), free(sig);
  } else if (!strcmp(op, "sysctl")) {
    sysctls(id, f, path);
  } else if (!strcmp(op, "nftstate")) {
    nft_state(id, path);
  } else if (!strcmp(op, "exists")) {
    send_frame(id, 'F', access(path, F_OK) == 0 ? "1" : "0", 1);
  } else if (!strcmp(op, "netnspids")) {
    netns_pids(id, f);
  } else if (!strcmp(op, "waitpath")) {
    watch_path(id, path);
  } else {
    sendf(id, 'E', "unknown file operation %s", op);
  }
  free(op), free(path);
}

/* ---- unix socket connections ---- */

static void do_connect(uint32_t id, const char *path) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
    reply_errno(id, "connect", path);
    if (s >= 0) close(s);
    return;
  }
  struct chan *c = chan_new(id, SOCK);
  if (!c) {
    close(s);
    return sendf(id, 'E', "too many channels");
  }
  set_nonblock(s);
  c->in = s;
  send_frame(id, 'S', "0", 1);
}

/* ---- the shared root, on hello ---- */

static const char *step;

static int mnt(const char *src, const char *dst, const char *type, unsigned long flags, const char *opts) {
  step = dst;
  mkdir_p(dst, 0755);
  return mount(src, dst, type, flags, opts);
}

/*
 * Mount the machine's root (read-only 9p) under a tmpfs overlay, the job share at the host's
 * own path of it (the harness writes labs' files there, the guest's processes read them), the
 * guest kernel's modules from the unpacked package, and move the new root over "/".
 */
static int setup_root(struct fields f) {
  char *moddir = field(f, "moddir"), *share = field(f, "share"), *release = field(f, "release");
  char *autoload = field(f, "autoload"), *host = field(f, "hostname");
  char p[4096], q[4096];
  int rc = -1;
  if (!moddir || !share || !release) {
    step = "hello fields";
    errno = EINVAL;
    goto out;
  }
  if (mnt("hostroot", "/host", "9p", MS_RDONLY, "trans=virtio,version=9p2000.L,msize=262144,cache=loose")) goto out;
  if (mnt("ncfjob", "/job", "9p", 0, "trans=virtio,version=9p2000.L,msize=262144")) goto out;
  snprintf(p, sizeof p, "/host%s", moddir);
  snprintf(q, sizeof q, "/lib/modules/%s", release);
  if (mnt(p, q, NULL, MS_BIND, NULL)) goto out;
  step = "/proc/sys/kernel/modprobe";
  int fd = open(step, O_WRONLY);
  if (fd >= 0) {
    const char *helper = autoload && !strcmp(autoload, "0") ? "\n" : "/sbin/modprobe\n";
    if (write(fd, helper, strlen(helper)) < 0) { /* on-demand loading stays as it was */
    }
    close(fd);
  }
  if (mnt("rw", "/rw", "tmpfs", 0, "mode=755")) goto out;
  mkdir_p("/rw/upper", 0755), mkdir_p("/rw/work", 0755);
  if (mnt("overlay", "/newroot", "overlay", 0, "lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work")) goto out;
  if (mnt("proc", "/newroot/proc", "proc", 0, NULL) || mnt("sysfs", "/newroot/sys", "sysfs", 0, NULL) || mnt("devtmpfs", "/newroot/dev", "devtmpfs", 0, NULL) ||
      mnt("devpts", "/newroot/dev/pts", "devpts", 0, NULL) || mnt("tmpfs", "/newroot/dev/shm", "tmpfs", 0, NULL) ||
      mnt("tmpfs", "/newroot/run", "tmpfs", 0, "mode=755"))
    goto out;
  mnt("cgroup2", "/newroot/sys/fs/cgroup", "cgroup2", 0, NULL); /* dockerd wants it; nothing else does */
  snprintf(p, sizeof p, "/newroot/lib/modules/%s", release);
  if (mnt(q, p, NULL, MS_BIND, NULL)) goto out;
  snprintf(p, sizeof p, "/newroot%s", share);
  if (mnt("/job", p, NULL, MS_BIND, NULL)) goto out;
  /* the loopback of the guest's own namespace, as any machine has it */
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr = {0};
  snprintf(ifr.ifr_name, IFNAMSIZ, "lo");
  if (s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
    ifr.ifr_flags |= IFF_UP;
    ioctl(s, SIOCSIFFLAGS, &ifr);
  }
  if (s >= 0) close(s);
  if (host) sethostname(host, strlen(host));
  /* switch_root's way rather than a plain chroot: a process that joins a mount namespace (the
     probe agent, in a container's) gets that namespace's root, which would otherwise be the initramfs */
  step = "move root";
  if (chdir("/newroot") < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 || chdir("/") < 0) goto out;
  setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
  setenv("HOME", "/root", 1);
  setenv("TERM", "dumb", 1);
  rc = 0;
out:
  free(moddir), free(share), free(release), free(autoload), free(host);
  return rc;
}

static void do_hello(struct fields f) {
  char *now = field(f, "time"), *seed = field(f, "seed");
  if (now) {
    struct timespec ts = {.tv_sec = atoll(now) / 1000, .tv_nsec = (atoll(now) % 1000) * 1000000};
    clock_settime(CLOCK_REALTIME, &ts);
  }
  if (seed) {
    /* a restored guest would otherwise repeat the saved one's random numbers */
    int fd = open("/dev/urandom", O_WRONLY);
    if (fd >= 0 && write(fd, seed, strlen(seed)) < 0) {
    }
    if (fd >= 0) close(fd);
  }
  free(now), free(seed);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  if (setup_root(f) < 0) return sendf(0, 'E', "mount-failed %s: %s", step, strerror(errno));
  clock_gettime(CLOCK_MONOTONIC, &t1);
  sendf(0, 'H', "mounted-ms=%ld", (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
}

/* ---- frames from the host ---- */

static void handle(uint32_t id, char type, const char *p, size_t n) {
  struct fields f = {p, n};
  struct chan *c = chan_of(id);
  switch (type) {
  case 'H':
    do_hello(f);
    break;
  case 'X':
    do_exec(id, f);
    break;
  case 'I':
    if (!c || c->kind != PROC) break;
    if (n) feed(c, p, n);
    else if (c->pending.len) c->close_in_when_drained = 1;
    else closefd(&c->in);
    break;
  case 'K':
    if (c && c->kind == PROC) kill(c->pid, atoi(strndupa(p, n)));
    break;
  case 'F': {
    do_fileop(id, f);
    break;
  }
  case 'C':
    do_connect(id, strndupa(p, n));
    break;
  case 'D':
    if (c && c->kind == SOCK) feed(c, p, n);
    break;
  case 'Q':
    if (c && (c->kind == SOCK || c->kind == WATCH)) chan_free(c);
    break;
  }
}

static void read_port(void) {
  char chunk[CHUNK];
  ssize_t n = read(port, chunk, sizeof chunk);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) {
    /* no host on the other end (between save and restore): wait for one */
    struct timespec ts = {0, 5000000};
    nanosleep(&ts, NULL);
    return;
  }
  buf_add(&rx, chunk, (size_t)n);
  while (rx.len >= 9) {
    uint32_t len, id;
    memcpy(&len, rx.p, 4);
    memcpy(&id, rx.p + 4, 4);
    if (rx.len < 9 + (size_t)len) break;
    handle(id, rx.p[8], rx.p + 9, len);
    buf_drop(&rx, 9 + (size_t)len);
  }
}

/* Output of a process, or bytes from a socket, to the host; false at its end. */
static int pump(struct chan *c, int *fd, char type) {
  char chunk[CHUNK];
  ssize_t n = read(*fd, chunk, sizeof chunk);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 1;
  if (n > 0) {
    send_frame(c->id, type, chunk, (size_t)n);
    return 1;
  }
  if (c->kind == SOCK) {
    send_frame(c->id, 'Q', "", 0);
    chan_free(c);
    return 0;
  }
  closefd(fd);
  proc_maybe_done(c);
  return 0;
}

/* A poll entry still stands for what it was made for: the same channel (not a new one in its
   slot), and the same descriptor, still open. */
static int still(const struct chan *c, uint32_t id, enum kind kind, const int *fd, int polled) {
  return c->kind == kind && c->id == id && *fd == polled;
}

static int open_port(void) {
  DIR *d = opendir("/sys/class/virtio-ports");
  struct dirent *e;
  char path[512], name[128];
  while (d && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "/sys/class/virtio-ports/%s/name", e->d_name);
    FILE *fp = fopen(path, "r");
    if (!fp) continue;
    int match = fgets(name, sizeof name, fp) && !strncmp(name, PORT_NAME, strlen(PORT_NAME));
    fclose(fp);
    if (match) {
      snprintf(path, sizeof path, "/dev/%s", e->d_name);
      closedir(d);
      return open(path, O_RDWR | O_CLOEXEC);
    }
  }
  if (d) closedir(d);
  errno = ENOENT;
  return -1;
}

int main(void) {
  /* a test on the host hands the agent one end of a socket pair instead of the guest's port */
  const char *given = getenv("NCF_AGENT_PORT_FD");
  port = given ? atoi(given) : open_port();
  if (port < 0) die("virtio port " PORT_NAME);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGPIPE);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  inofd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (sigfd < 0 || inofd < 0) die("signalfd/inotify");
  send_frame(0, 'B', "", 0);
  struct pollfd pf[3 + 3 * MAXCH];
  /* what each poll entry was for: a frame handled before the pumps below can free a channel
     and give its slot, and even its fd numbers, to a new one; an entry whose channel id or kind
     changed is stale (pumping it read the new process's stdin pipe, and closed it) */
  struct {
    struct chan *c;
    uint32_t id;
    enum kind kind;
    int *fd;
    char type;
  } who[3 + 3 * MAXCH];
  for (;;) {
    int n = 0;
    pf[n++] = (struct pollfd){port, POLLIN, 0};
    pf[n++] = (struct pollfd){sigfd, POLLIN, 0};
    pf[n++] = (struct pollfd){inofd, POLLIN, 0};
    for (int i = 0; i < MAXCH; i++) {
      struct chan *c = &chans[i];
#define WATCH_FD(field, t, events) (who[n].c = c, who[n].id = c->id, who[n].kind = c->kind, who[n].fd = &c->field, who[n].type = (t), pf[n++] = (struct pollfd){c->field, (events), 0})
      if (c->kind == PROC) {
        if (c->out >= 0) WATCH_FD(out, 'O', POLLIN);
        if (c->err >= 0) WATCH_FD(err, 'R', POLLIN);
        if (c->in >= 0 && c->pending.len) WATCH_FD(in, 'W', POLLOUT);
      } else if (c->kind == SOCK && c->in >= 0) {
        WATCH_FD(in, 'D', POLLIN | (c->pending.len ? POLLOUT : 0));
      }
    }
    if (poll(pf, (nfds_t)n, -1) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    if (pf[0].revents) read_port();
    if (pf[1].revents) reap();
    if (pf[2].revents) inotify_event();
    for (int i = 3; i < n; i++) {
      struct chan *c = who[i].c;
      if (!pf[i].revents || !still(who[i].c, who[i].id, who[i].kind, who[i].fd, pf[i].fd)) continue;
      if (pf[i].revents & POLLOUT) flush_pending(c);
      if (still(who[i].c, who[i].id, who[i].kind, who[i].fd, pf[i].fd) && (pf[i].revents & (POLLIN | POLLHUP | POLLERR)) && who[i].type != 'W') pump(c, who[i].fd, who[i].type);
    }
  }
}
