/*
 * floor-proxy: the smallest TCP proxy we could write, as a floor for the benchmark's CPU per
 * request. One thread, one epoll loop, IPv4 only, no timeouts, no config, no stats: it accepts,
 * connects to the next backend (round robin) and copies bytes both ways through a 16 KiB buffer
 * per direction, with half-close. What it costs per request is almost all kernel TCP work.
 *
 *   gcc -O2 -o floor-proxy floor-proxy.c
 *   floor-proxy LISTEN_IP:PORT BACKEND_IP:PORT [BACKEND_IP:PORT...]
 *
 * Connections are edge-triggered and registered once for IN|OUT|RDHUP, so no epoll_ctl is made
 * after the two ADDs of a connection. A read shorter than the buffer means the socket was
 * drained (as nginx assumes too); the next EPOLLIN edge says when there is more.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE (16 * 1024)

struct side {                /* one socket, and the bytes read from it not yet written to its peer */
  struct pair *pair;
  int fd;
  int off, len;              /* pending bytes: buf[off, off + len) */
  char eof;                  /* read returned 0 (or a short read after EPOLLRDHUP) */
  char rdhup;                /* the peer's FIN has arrived: a short read reached it */
  char drained;              /* nothing to read until the next EPOLLIN edge */
  char blocked;              /* not writable until the next EPOLLOUT edge (or still connecting) */
  char shut;                 /* shutdown(SHUT_WR) sent */
  char buf[BUF_SIZE];
};

struct pair {                /* s[0]: client, s[1]: backend */
  struct side s[2];
  int dead;
  struct pair *next;         /* on the dead or the free list */
};

static int ep;
static struct pair *dead_list, *free_list;

static struct side *peer(struct side *s) { return &s->pair->s[s == &s->pair->s[0]]; }

/* Close both sockets. The pair is freed only after the current batch of events, which may
 * still point to it. */
static void kill_pair(struct pair *p) {
  close(p->s[0].fd);
  close(p->s[1].fd);
  p->dead = 1;
  p->next = dead_list;
  dead_list = p;
}

/* Move bytes from s to its peer d until s is drained, d is full, or s reached EOF. */
static void pump(struct side *s) {
  struct side *d = peer(s);
  for (;;) {
    if (s->len > 0) {
      if (d->blocked) return;                    /* EPOLLOUT on d calls us again */
      ssize_t n = write(d->fd, s->buf + s->off, s->len);
      if (n < 0 && errno != EAGAIN) { kill_pair(s->pair); return; }
      if (n > 0) { s->off += n; s->len -= n; }
      if (s->len > 0) { d->blocked = 1; return; } /* stop reading s until this is flushed */
      s->off = 0;
    }
    if (s->eof) {
      /* both ways done: close() sends what is left and the FINs, no shutdown() needed */
      if (d->eof && d->len == 0) { kill_pair(s->pair); return; }
      if (!d->shut && !d->blocked) { shutdown(d->fd, SHUT_WR); d->shut = 1; }
      return;                                    /* a blocked d retries on its EPOLLOUT */
    }
    if (s->drained) return;
    ssize_t n = read(s->fd, s->buf, BUF_SIZE);
    if (n == 0) s->eof = 1;
    else if (n < 0 && errno == EAGAIN) s->drained = 1;
    else if (n < 0) { kill_pair(s->pair); return; }
    else {
      s->len = n;
      /* Short read: drained; if the FIN had already arrived it is right behind these bytes,
       * so we know EOF without another read that returns 0. */
      if (n < BUF_SIZE) { s->drained = 1; s->eof = s->rdhup; }
    }
  }
}

static void init_side(struct pair *p, int i, int fd, int blocked) {
  struct side *s = &p->s[i];
  s->pair = p;
  s->fd = fd;
  s->off = s->len = 0;
  s->eof = s->rdhup = s->shut = 0;
  s->drained = 1;            /* wait for EPOLLIN: reading right after accept mostly finds nothing */
  s->blocked = blocked;
  struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = s };
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static int parse_addr(const char *arg, struct sockaddr_in *a) {
  char host[64];
  const char *colon = strrchr(arg, ':');
  if (!colon || colon - arg >= (long)sizeof host) return -1;
  memcpy(host, arg, colon - arg);
  host[colon - arg] = 0;
  memset(a, 0, sizeof *a);
  a->sin_family = AF_INET;
  a->sin_port = htons(atoi(colon + 1));
  return inet_pton(AF_INET, host, &a->sin_addr) == 1 && a->sin_port ? 0 : -1;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s LISTEN_IP:PORT BACKEND_IP:PORT [BACKEND_IP:PORT...]\n", argv[0]);
    return 2;
  }
  struct sockaddr_in listen_addr, *backends = calloc(argc - 2, sizeof *backends);
  int nbackends = argc - 2, next_backend = 0, one = 1;
  for (int i = 1; i < argc; i++)
    if (parse_addr(argv[i], i == 1 ? &listen_addr : &backends[i - 2]) < 0) {
      fprintf(stderr, "bad address %s (want IPv4:port)\n", argv[i]);
      return 2;
    }
  signal(SIGPIPE, SIG_IGN);  /* a write to a reset socket returns EPIPE instead */

  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  /* Linux copies TCP_NODELAY to accepted sockets: one setsockopt less per connection */
  setsockopt(lfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (bind(lfd, (struct sockaddr *)&listen_addr, sizeof listen_addr) < 0 || listen(lfd, 4096) < 0) {
    perror(argv[1]);
    return 1;
  }
  ep = epoll_create1(0);
  /* The listener is level-triggered: accepting a bounded batch per wake-up is enough, what is
   * left is reported again. Its data.ptr is NULL, the connections' are their sides. */
  struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);

  struct epoll_event events[256];
  for (;;) {
    int n = epoll_wait(ep, events, 256, -1);
    if (n < 0 && errno != EINTR) { perror("epoll_wait"); return 1; }
    for (int i = 0; i < n; i++) {
      struct side *s = events[i].data.ptr;
      uint32_t ev = events[i].events;
      if (!s) {              /* new connections (at EMFILE this spins until fds are free again) */
        for (int k = 0; k < 64; k++) {
          int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
          if (c < 0) break;
          int b = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
          if (b >= 0) setsockopt(b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct sockaddr_in *to = &backends[next_backend];
          next_backend = (next_backend + 1) % nbackends;
          if (b < 0 || (connect(b, (struct sockaddr *)to, sizeof *to) < 0 && errno != EINPROGRESS)) {
            close(c);
            if (b >= 0) close(b);
            continue;
          }
          struct pair *p = free_list;
          if (p) free_list = p->next;
          else if (!(p = malloc(sizeof *p))) { close(c); close(b); continue; } /* not calloc: 32 KiB of zeroes */
          p->dead = 0;
          init_side(p, 0, c, 0);
          /* The backend counts as blocked until its EPOLLOUT edge says the connect completed:
           * what the client sends first waits in the buffer, and a failed connect is EPOLLERR. */
          init_side(p, 1, b, 1);
        }
        continue;
      }
      if (s->pair->dead) continue;
      if (ev & EPOLLERR) { kill_pair(s->pair); continue; }
      if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) {
        if (ev & (EPOLLRDHUP | EPOLLHUP)) s->rdhup = 1;
        s->drained = 0;
        pump(s);             /* s -> peer */
      }
      if ((ev & (EPOLLOUT | EPOLLHUP)) && !s->pair->dead) {
        s->blocked = 0;
        pump(peer(s));       /* peer -> s: flush what waited for s, or pass on an EOF */
      }
    }
    /* nothing of this batch points to the dead pairs any more: recycle them */
    while (dead_list) {
      struct pair *p = dead_list;
      dead_list = p->next;
      p->next = free_list;
      free_list = p;
    }
  }
}
